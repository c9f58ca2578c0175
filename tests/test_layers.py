"""The dependency rule, checked on the source: a lower package never imports a higher one, neither at
module level nor hidden inside a function or under TYPE_CHECKING.

    core → nlp → recsys → commerce → analytics → listening → bot | jobs | web → xianke

bot, jobs and web are front doors on one level: none imports another. xianke (CLI and composition
root) may import everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ORDER = ["core", "nlp", "recsys", "commerce", "analytics", "listening", ("bot", "jobs", "web"), "xianke"]
RANK = {name: rank for rank, level in enumerate(ORDER) for name in (level if isinstance(level, tuple) else (level,))}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the file, wherever it is written."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(package: str) -> list[str]:
    own = RANK[package]
    out = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, target in imported_packages(path):
            if target == package or target not in RANK:
                continue
            if RANK[target] > own or (RANK[target] == own and target != package):
                out.append(f"{path.relative_to(REPO)}:{line} imports {target} (above {package})")
    return out


@pytest.mark.parametrize("package", sorted(RANK))
def test_no_package_imports_a_higher_one(package: str) -> None:
    assert (REPO / package).is_dir()
    assert violations(package) == []


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import core.store\n\ndef f():\n    from jobs.registry import JobContext\n", encoding="utf-8")
    assert imported_packages(sample) == [(1, "core"), (4, "jobs")]
