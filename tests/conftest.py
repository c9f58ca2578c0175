"""Shared fixtures: a real SQLite file per test, the real encoder once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = Path(os.environ.get("XIANKE_DATA_DIR", REPO_ROOT / "var")) / "models"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "test.db")
    yield store
    store.close()


@pytest.fixture(scope="session")
def embedder():
    from nlp.embedder import Embedder

    return Embedder(models_dir=MODELS_DIR)


def pytest_addoption(parser: pytest.Parser) -> None:
    # Issue 8: the fuzz tests run a small CI count by default; --full runs 10,000 examples each.
    parser.addoption(
        "--full", action="store_true", default=False,
        help="Full-size hardening runs (10,000 fuzzed updates / ingest payloads); same as XIANKE_FUZZ_EXAMPLES=10000.",
    )
