"""Outermost update middleware: count every update by type, time it, count handler errors.

Registered first in `build_dispatcher`, so the timing covers idempotency, throttling, the customer
lookup and the handler with its Bot API calls. It sits inside aiogram's own errors middleware, so it
sees a handler's exception before the error handler answers the user, counts it and re-raises.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.dispatcher.middlewares.base import BaseMiddleware
from aiogram.types import TelegramObject, Update

from core.metrics import UPDATE_ERRORS, UPDATE_SECONDS, UPDATES

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
_KNOWN = frozenset(Update.model_fields) - {"update_id"}


def update_type(update: Update) -> str:
    """The update's kind; 'unknown' for types newer than this aiogram (never raises)."""
    for name in ("message", "callback_query", "edited_message"):  # the common ones first
        if getattr(update, name, None) is not None:
            return name
    for name in sorted(_KNOWN):
        if getattr(update, name, None) is not None:
            return name
    return "unknown"


class UpdateMetricsMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        kind = update_type(event)
        UPDATES.labels(type=kind).inc()
        start = time.perf_counter()
        try:
            return await handler(event, data)
        except Exception as exc:
            UPDATE_ERRORS.labels(type=kind, error=type(exc).__name__).inc()
            raise
        finally:
            UPDATE_SECONDS.labels(type=kind).observe(time.perf_counter() - start)
