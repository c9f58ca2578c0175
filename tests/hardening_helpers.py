"""Helpers for the hardening tests (issue 8): a fast stand-in encoder, an event loop on a thread, the
fuzz example count, and log capture.

- `HashEmbedder` is the real `Embedder` class (same LRU cache, same API) whose `_encode` hashes
  character n-grams into 384 dimensions instead of running the transformer: similar texts still get
  similar vectors, and ten thousand fuzzed updates take minutes instead of hours. The fuzz is about
  *our* code paths (routing, middlewares, store, rendering); the real encoder gets its own, smaller
  share of the weird inputs.
- `LoopThread` runs one asyncio loop on a background thread, so a hypothesis test (synchronous, one
  call per example) can feed updates into one long-lived dispatcher and fake Bot API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from bot.runners import make_bot, run_polling
from core.logging import JsonLineFormatter
from nlp.embedder import Embedder
from tests.fakebot import FakeBotAPI
from xianke.bot_wiring import BotRuntime, build_runtime

T = TypeVar("T")
FULL_EXAMPLES = 10_000


def hash_app(folder: Path, **overrides: Any) -> Any:
    """An xianke App over `folder` (settings from `overrides`) whose encoder is the HashEmbedder."""
    from core.settings import load_settings
    from xianke.app import App

    settings = load_settings(data_dir=folder, db_path=folder / "bot.db", **overrides)
    app = App(settings)
    app.__dict__["embedder"] = HashEmbedder()  # the cached_property's slot: no transformer is loaded
    return app


def fuzz_examples(config: pytest.Config, ci_default: int) -> int:
    """XIANKE_FUZZ_EXAMPLES wins; `pytest --full` means 10,000; otherwise the small CI count."""
    env = os.environ.get("XIANKE_FUZZ_EXAMPLES")
    if env:
        return max(1, int(env))
    try:
        full = bool(config.getoption("--full"))
    except ValueError:  # the option is registered by tests/conftest.py; absent in a bare run
        full = False
    return FULL_EXAMPLES if full else ci_default


class HashEmbedder(Embedder):
    DIM = 384

    def __init__(self) -> None:
        super().__init__("test:hash-ngrams", Path("unused"))
        self.query_prefix = "query: "
        self.passage_prefix = "passage: "

    @property
    def dim(self) -> int:
        return self.DIM

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            body = text[:512]
            grams = [body[i : i + n] for n in (1, 2) for i in range(len(body) - n + 1)] or [""]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode("utf-8", "surrogatepass"), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.DIM] += 1.0
            out[row, 0] += 0.01  # never the zero vector (cosine of an empty text is still defined)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


class LoopThread:
    """An asyncio loop on a daemon thread; `run(coro)` blocks until the coroutine is done there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        async def wrapper() -> Any:
            return fn(*args)

        return self.run(wrapper())

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_rest(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class RecordList(logging.Handler):
    """Keeps every record (formatted as the production JSON line) for assertions."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(JsonLineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # a record that cannot be formatted is itself worth seeing
            self.lines.append(f"<unformattable record {record.getMessage()!r}: {exc!r}>")

    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def captured_logs(level: int = logging.DEBUG) -> Iterator[RecordList]:
    """Every log record of every logger (root at `level`) while the block runs."""
    handler = RecordList()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@contextlib.asynccontextmanager
async def polling(folder: Path) -> AsyncIterator[tuple[FakeBotAPI, BotRuntime]]:
    """The production runtime and Bot (make_bot) on long polling against the fake server."""
    runtime = build_runtime(hash_app(folder), index_dir=folder / "index", throttle_rate=1000,
                            throttle_callback_rate=1000)
    async with FakeBotAPI() as api:
        bot = make_bot(api.token, api.base_url)
        task = asyncio.create_task(run_polling(bot, runtime.dispatcher, handle_signals=False, polling_timeout=1))
        try:
            await api.wait_for_poll(timeout=30)
            yield api, runtime
        finally:
            await runtime.dispatcher.stop_polling()
            await task
            await bot.session.close()
            runtime.close()
