"""Bot API session middlewares: the ONE place where Telegram calls are retried.

Nothing else in the project loops on a Telegram error (support relay, alerts, digests, reminders,
broadcasts all call once and act on the outcome: see core/notify.py for the contract).

aiogram raises `TelegramRetryAfter` on a 429 and never retries by itself, so without this a reply
that hits Telegram's flood control is simply lost (the customer sees nothing). A 429 means the
request was *not* executed, so sending it again after `retry_after` seconds delivers it exactly once.

- `RetryAfterMiddleware` waits the time Telegram names and retries, up to `max_retries` times. While
  a chat is in flood wait, other requests to the same chat wait too (Telegram counts per chat, and
  firing more requests into a flooded chat only extends the ban); other chats are not held up, so
  one noisy staff group cannot stall every customer. A wait longer than `max_wait` is not slept
  through: the error goes up to the caller (the broadcaster keeps such users pending and pauses
  itself; a handler's error handler answers kindly).
- Network errors, timeouts and 5xx answers are retried only for idempotent methods (reads and calls
  whose repetition changes nothing: `IDEMPOTENT_METHODS`, every get*). A send may already have been
  executed when its answer is lost, and a duplicate message is worse than a missing one, so those
  errors go up unchanged and the notifier reports them as DeliveryUnknown.
- `StaleCallbackMiddleware`: answering a button press more than ~15 s late (e.g. updates queued
  while the bot was down) fails with "query is too old". The user's spinner has stopped long ago;
  the rest of the handler (editing the card, sending the answer) must still run, so that one error
  is logged and swallowed instead of failing the whole update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import AnswerCallbackQuery, GetUpdates, TelegramMethod
from aiogram.methods.base import TelegramType

from core.logging import log_event
from core.metrics import TELEGRAM_RETRIES

log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_WAIT_S = 60.0
DEFAULT_TRANSPORT_RETRIES = 2
TRANSPORT_BACKOFF_S = 0.5  # doubled per attempt
_STALE_QUERY = ("query is too old", "query id is invalid")
# Calls that may safely run twice; every Get* method is idempotent as well (see is_idempotent).
IDEMPOTENT_METHODS = frozenset({
    "SetMyCommands", "DeleteMyCommands", "SetWebhook", "DeleteWebhook", "SendChatAction",
    "EditForumTopic", "CloseForumTopic", "ReopenForumTopic",
})


def is_idempotent(method: TelegramMethod[Any]) -> bool:
    """Whether repeating `method` after a lost answer cannot change what anyone sees twice.
    getUpdates is left to aiogram's polling loop, which has its own back-off."""
    name = type(method).__name__
    if isinstance(method, GetUpdates):
        return False
    return name.startswith("Get") or name in IDEMPOTENT_METHODS


def _chat_key(method: TelegramMethod[Any]) -> str | None:
    chat_id = getattr(method, "chat_id", None)
    return None if chat_id is None else str(chat_id)


class RetryAfterMiddleware(BaseRequestMiddleware):
    def __init__(
        self,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_wait: float = DEFAULT_MAX_WAIT_S,
        *,
        transport_retries: int = DEFAULT_TRANSPORT_RETRIES,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.transport_retries = transport_retries
        self.sleep = sleep
        self.clock = clock
        self.retries = 0  # total retries made (tests and the bench read it)
        self._chat_until: dict[str, float] = {}

    async def _wait_for_chat(self, key: str | None) -> None:
        if key is None:
            return
        until = self._chat_until.get(key, 0.0)
        wait = until - self.clock()
        if wait > 0:
            await self.sleep(wait)
        elif until:
            self._chat_until.pop(key, None)

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Any:
        key = _chat_key(method)
        name = type(method).__name__
        transport_failures = 0
        for attempt in range(self.max_retries + self.transport_retries + 1):
            await self._wait_for_chat(key)
            try:
                return await make_request(bot, method)
            except (TelegramNetworkError, TelegramServerError) as exc:
                transport_failures += 1
                if not is_idempotent(method) or transport_failures > self.transport_retries:
                    raise  # the request may have been executed: the caller decides (DeliveryUnknown)
                self.retries += 1
                TELEGRAM_RETRIES.labels(method=name).inc()
                log_event(log, "transport error on an idempotent call, retrying", logging.WARNING,
                          method=name, error=type(exc).__name__, attempt=transport_failures)
                await self.sleep(TRANSPORT_BACKOFF_S * 2 ** (transport_failures - 1))
            except TelegramRetryAfter as exc:
                wait = float(exc.retry_after)
                if attempt - transport_failures >= self.max_retries or wait > self.max_wait:
                    log_event(
                        log, "flood control: giving up", logging.WARNING, method=name, chat_id=key,
                        retry_after=wait, attempts=attempt + 1,
                    )
                    raise
                if key is not None:
                    self._chat_until[key] = max(self._chat_until.get(key, 0.0), self.clock() + wait)
                self.retries += 1
                TELEGRAM_RETRIES.labels(method=name).inc()
                log_event(log, "flood control: waiting", method=name, chat_id=key, retry_after=wait, attempt=attempt + 1)
                if key is None:
                    await self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


class StaleCallbackMiddleware(BaseRequestMiddleware):
    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Any:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if not isinstance(method, AnswerCallbackQuery) or not any(s in exc.message.lower() for s in _STALE_QUERY):
                raise
            log_event(log, "late callback answer skipped", callback_query_id=method.callback_query_id)
            return True


def install_request_middlewares(bot: Bot, *, retry: RetryAfterMiddleware | None = None) -> RetryAfterMiddleware:
    """Add both middlewares to `bot`'s session (once); returns the retry middleware for inspection."""
    existing = [m for m in bot.session.middleware if isinstance(m, RetryAfterMiddleware)]
    if existing:
        return existing[0]
    retry = retry or RetryAfterMiddleware()
    # Order: the stale-answer check sits inside the retry loop, so a 429 on a late answer still waits.
    bot.session.middleware(retry)
    bot.session.middleware(StaleCallbackMiddleware())
    return retry
