"""The shop's order webhook: POST /v1/orders (bearer token), recorded by commerce.orders.

The HTTP front door only: authentication, size limits and the JSON shape; validation, idempotency,
coupon redemption and referral rewards are commerce.orders.record_orders, shared with file imports.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from typing import Any

from aiohttp import web

from commerce.orders import MAX_WEBHOOK_ORDERS, SHOP_ZONE, OrderImportReport, record_orders
from core.logging import log_event
from core.store import Store
from web.ingest import DEFAULT_MAX_BYTES, _error, read_authorized_json, run_safely

log = logging.getLogger(__name__)


class _OrderWorker:
    """One thread owns the SQLite connection, so the event loop never blocks on the database."""

    def __init__(self, store_factory: Callable[[], Store], zone: tzinfo):
        self.store_factory = store_factory
        self.zone = zone
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orders-http")
        self._store: Store | None = None

    def _record(self, items: list[Any]) -> OrderImportReport:
        if self._store is None:
            self._store = self.store_factory()
        return record_orders(self._store, [((n,), item) for n, item in enumerate(items, start=1)],
                             zone=self.zone, default_source="webhook")

    async def record(self, items: list[Any]) -> OrderImportReport:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._record, items)

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._close)
        self.executor.shutdown(wait=True)


def make_order_webhook_app(
    store_factory: Callable[[], Store],
    token: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    zone: tzinfo = SHOP_ZONE,
    max_orders: int = MAX_WEBHOOK_ORDERS,
) -> web.Application:
    """POST /v1/orders with `Authorization: Bearer <token>`; body: an order, a list, or {"orders": [...]}.

    200 all stored (or already known) · 422 some rejected, the good ones stored anyway, `rejected`
    lists {"index", "external_id", "reasons"} · 401 missing/wrong token · 413 too large · 400 not JSON.
    """
    if not token:
        raise ValueError("an order webhook token is required (set XIANKE_ORDERS_TOKEN)")
    expected = token.encode("utf-8")
    worker = _OrderWorker(store_factory, zone)
    app = web.Application(client_max_size=max_bytes)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def orders(request: web.Request) -> web.Response:
        payload, refusal = await read_authorized_json(request, expected, realm="orders", max_bytes=max_bytes)
        if refusal is not None:
            return refusal
        if isinstance(payload, Mapping):
            payload = payload["orders"] if isinstance(payload.get("orders"), list) else [payload]
        if not isinstance(payload, list):
            return _error(422, 'body must be an order, a JSON array of orders or {"orders": [...]}')
        if len(payload) > max_orders:
            return _error(413, f"{len(payload)} orders in one batch; the limit is {max_orders}")
        report = await run_safely(worker.record(payload), "order webhook")
        if isinstance(report, web.Response):
            return report
        status = 422 if report.rejected else 200
        log_event(log, "order webhook", status=status, **report.counts())
        return web.json_response(
            {
                **report.counts(),
                "rejected": [p.to_dict() for p in report.rejected],
                "warnings": [p.to_dict() for p in report.warnings],
                "coupons_issued": report.coupons_issued,
            },
            status=status,
            dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
        )

    async def close_worker(app: web.Application) -> None:
        await worker.close()

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/orders", orders)
    app.on_cleanup.append(close_worker)
    return app
