"""Exposing the Prometheus metrics (objects in core.metrics, update middleware in bot.metrics).

Webhook mode and the ingest endpoint serve GET /metrics on their own aiohttp apps. Long polling has no
HTTP server, so `XIANKE_METRICS_PORT` starts prometheus_client's small one when the dispatcher starts.
Every process that serves metrics also exposes the scheduler's job runs (read from `job_runs`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiogram import Dispatcher

from core.logging import log_event
from core.metrics import watch_job_runs
from core.settings import Settings

log = logging.getLogger(__name__)
_SERVED: dict[int, object] = {}


def serve_metrics_port(port: int, host: str = "0.0.0.0") -> None:
    """Start prometheus_client's HTTP server on `port` once per process (a daemon thread)."""
    if port in _SERVED:
        return
    from prometheus_client import start_http_server

    _SERVED[port] = start_http_server(port, addr=host)
    log_event(log, "metrics served", port=port)


def install_metrics(settings: Settings, dispatcher: Dispatcher, db_path: Path) -> None:
    """Job runs of `db_path` on /metrics; the metrics port (if set) opens when the dispatcher starts."""
    watch_job_runs(db_path)
    port = settings.metrics_port
    if port:

        async def open_port() -> None:
            serve_metrics_port(port)

        dispatcher.startup.register(open_port)
