"""HTTP ingest endpoint (aiohttp): POST JSON batches of posts with a bearer token.

    POST /v1/posts   Authorization: Bearer <XIANKE_INGEST_TOKEN>
    body: [{"source": "weibo", "external_id": "123", "text": "…", "created_at": "2026-11-28T10:00:00+08:00"}, …]
          (or {"posts": [...]})
    200 {"added": n, "duplicates": n, "near_duplicates": n, "spam": [...], "rejected": []}
    422 same body, `rejected` lists {"index", "reasons"} — the good items of the batch are stored anyway
    401 missing/wrong token · 413 body over the size limit or too many items · 400 not JSON
    415 Content-Type is not application/json · 422 JSON nested too deep · 503 store busy, retry
    GET /healthz → {"ok": true}

Writes run on one worker thread that owns the SQLite connection and the ingestor (so its
near-duplicate index stays warm); the event loop never blocks on the database.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from core.logging import log_event
from core.metrics import INGEST_POSTS, metrics_view
from core.store import Store
from core.validation import InputRejected, loads_json
from listening.ingest import IngestReport, PostIngestor

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_ITEMS = 1000


class _Worker:
    """One thread, one store, one ingestor."""

    def __init__(self, store_factory: Callable[[], Store], salt: bytes, zone: tzinfo):
        self.store_factory = store_factory
        self.salt = salt
        self.zone = zone
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-http")
        self._store: Store | None = None
        self._ingestor: PostIngestor | None = None

    def _ingest(self, items: list[Any]) -> IngestReport:
        if self._ingestor is None:
            self._store = self.store_factory()
            self._ingestor = PostIngestor(self._store, self.salt, zone=self.zone)
        return self._ingestor.ingest_records(items, lines=list(range(len(items))))

    async def ingest(self, items: list[Any]) -> IngestReport:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._ingest, items)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._ingestor = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._close)
        self.executor.shutdown(wait=True)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def bearer_matches(request: web.Request, expected: bytes) -> bool:
    """Constant-time check of `Authorization: Bearer <token>`: the time taken must not reveal how
    much of a guessed token was right."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8"), expected)


async def read_authorized_json(
    request: web.Request, expected: bytes, *, realm: str, max_bytes: int
) -> tuple[Any, web.Response | None]:
    """The request's JSON body, or the 401/413/400 response to send instead (shared by every webhook)."""
    if not bearer_matches(request, expected):
        return None, _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": f'Bearer realm="{realm}"'})
    too_big = _error(413, f"body larger than {max_bytes} bytes; split the batch")
    if request.content_length is not None and request.content_length > max_bytes:
        return None, too_big
    if request.content_type != "application/json":
        return None, _error(415, f"Content-Type must be application/json (got {request.content_type or 'none'})")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return None, too_big
    try:
        return loads_json(body), None
    except InputRejected as exc:
        status = 422 if "nests" in str(exc) else 400  # well-formed but unprocessable vs not JSON at all
        return None, _error(status, f"body is not usable UTF-8 JSON: {exc}")


async def run_safely(work: Awaitable[T], what: str) -> T | web.Response:
    """The worker's result, or a 503 (retry later) instead of a 500 when the store fails under it.

    Bad input never gets here (it is reported per item); what remains is a locked or full database
    or a bug, and the client's batch is safe to resend because every write is idempotent."""
    try:
        return await work
    except Exception:
        log.exception("%s failed", what)
        return _error(503, "temporarily unable to store the batch; nothing was lost, please retry", **{"Retry-After": "5"})


def make_ingest_app(
    store_factory: Callable[[], Store],
    token: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    salt: bytes,
    zone: tzinfo = ZoneInfo("Asia/Shanghai"),
    max_items: int = DEFAULT_MAX_ITEMS,
) -> web.Application:
    if not token:
        raise ValueError("an ingest token is required (set XIANKE_INGEST_TOKEN)")
    expected = token.encode("utf-8")
    worker = _Worker(store_factory, salt, zone)
    app = web.Application(client_max_size=max_bytes)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def ingest(request: web.Request) -> web.Response:
        payload, refusal = await read_authorized_json(request, expected, realm="ingest", max_bytes=max_bytes)
        if refusal is not None:
            return refusal
        items = payload.get("posts") if isinstance(payload, dict) else payload
        if not isinstance(items, list):
            return _error(422, 'body must be a JSON array of posts or {"posts": [...]}')
        if len(items) > max_items:
            return _error(413, f"{len(items)} items in one batch; the limit is {max_items}")
        report = await run_safely(worker.ingest(items), "http ingest")
        if isinstance(report, web.Response):
            return report
        status = 422 if report.rejected else 200
        log_event(log, "http ingest", status=status, **report.counts())
        for outcome, n in report.counts().items():
            if n:
                INGEST_POSTS.labels(outcome=outcome).inc(n)
        return web.json_response(
            {
                "added": report.added,
                "duplicates": report.duplicates,
                "near_duplicates": report.near_duplicates,
                "spam": [{"index": r.line, "reasons": r.reasons} for r in report.spam],
                "rejected": [{"index": r.line, "reasons": r.reasons} for r in report.rejected],
            },
            status=status,
            dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
        )

    async def close_worker(app: web.Application) -> None:
        await worker.close()

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_post("/v1/posts", ingest)
    app.on_cleanup.append(close_worker)
    return app
