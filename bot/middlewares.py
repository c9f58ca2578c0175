"""Cross-cutting concerns: at-most-once updates, per-user throttling, services injection, kind errors."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.dispatcher.middlewares.base import BaseMiddleware
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import CallbackQuery, ErrorEvent, TelegramObject, Update, User

from bot.dialogue import DialogueService
from bot.texts import Texts, language_from_telegram
from core.logging import log_event
from core.store import Store

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


@dataclass
class BotStats:
    """Counters the tests and the bench read (errors must stay empty on the bad-input corpus)."""

    handled: int = 0
    duplicates: int = 0
    throttled: int = 0
    processed: int = 0  # updates fully done (answered, ignored, skipped or failed)
    errors: list[int] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)  # users who blocked the bot (not our error)
    error_handler: bool = False  # set by make_error_handler: failed updates count as processed after it
    _changed: asyncio.Event | None = field(default=None, repr=False)

    def mark_processed(self) -> None:
        self.processed += 1
        if self._changed is not None:
            self._changed.set()

    async def wait_processed(self, count: int, timeout: float = 10.0) -> None:
        """Wait (event-driven) until `count` updates have been processed in total."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.processed < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.processed}/{count} updates processed after {timeout}s")
            self._changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue


class IdempotencyMiddleware(BaseMiddleware):
    """Outer, on Update: the first delivery of an update_id is processed, any replay is skipped.

    The id is claimed before handling (at-most-once): a webhook retry or a replay after a crash
    never sends a second answer or records a second event.
    """

    PRUNE_EVERY = 1_000
    KEEP_DAYS = 3

    def __init__(self, store: Store, stats: BotStats | None = None):
        self.store = store
        self.stats = stats or BotStats()
        self._claims = 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        try:
            result = await self._once(handler, event, data)
        except Exception:
            if not self.stats.error_handler:  # otherwise the error handler marks it once it has answered
                self.stats.mark_processed()
            raise
        except BaseException:
            self.stats.mark_processed()
            raise
        self.stats.mark_processed()
        return result

    async def _once(self, handler: Handler, event: Update, data: dict[str, Any]) -> Any:
        cursor = self.store.db.execute(
            "INSERT OR IGNORE INTO processed_updates (update_id) VALUES (?)", [event.update_id]
        )
        if cursor.rowcount == 0:
            self.stats.duplicates += 1
            log_event(log, "duplicate update skipped", update_id=event.update_id)
            return None
        self._claims += 1
        if self._claims % self.PRUNE_EVERY == 0:
            self.store.db.execute(
                "DELETE FROM processed_updates WHERE processed_at < strftime('%Y-%m-%dT%H:%M:%fZ','now', ?)",
                [f"-{self.KEEP_DAYS} days"],
            )
        self.stats.handled += 1
        return await handler(event, data)


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    notified_at: float = float("-inf")


class ThrottlingMiddleware(BaseMiddleware):
    """Outer, on Update: token buckets per user — messages `rate` per `per` seconds (bursts up to
    `rate`), button presses a roomier `callback_rate` per `callback_per` (tapping through onboarding
    is quick and legitimate). Over the limit the update is dropped; the user is told politely once
    per window.
    """

    def __init__(
        self,
        texts: Texts,
        *,
        rate: int = 5,
        per: float = 3.0,
        callback_rate: int = 12,
        callback_per: float = 6.0,
        stats: BotStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.texts = texts
        self.limits = {"message": (rate, per), "callback": (callback_rate, callback_per)}
        self.stats = stats or BotStats()
        self.clock = clock
        self._buckets: dict[tuple[int, str], _Bucket] = {}

    def allow(self, user_id: int, kind: str = "message") -> tuple[bool, bool]:
        """(allowed, should_notify) for one update of `user_id` now."""
        rate, per = self.limits[kind]
        now = self.clock()
        bucket = self._buckets.get((user_id, kind))
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._prune(now)
            bucket = self._buckets[(user_id, kind)] = _Bucket(float(rate), now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.stamp) * rate / per)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True, False
        notify = now - bucket.notified_at >= per
        if notify:
            bucket.notified_at = now
        return False, notify

    def _prune(self, now: float) -> None:
        longest = max(per for _, per in self.limits.values())
        idle = [key for key, b in self._buckets.items() if now - b.stamp > 10 * longest]
        for key in idle:
            del self._buckets[key]

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if not isinstance(event, Update) or user is None or event.edited_message is not None or _payment(event):
            return await handler(event, data)
        allowed, notify = self.allow(user.id, "callback" if event.callback_query is not None else "message")
        if allowed:
            return await handler(event, data)
        self.stats.throttled += 1
        if notify:
            text = self.texts(language_from_telegram(user.language_code), "throttled")
            if event.callback_query is not None:
                await event.callback_query.answer(text)
            elif event.message is not None:
                await event.message.answer(text)
        elif event.callback_query is not None:
            await event.callback_query.answer()  # stop the spinner, quietly
        return None


def _utc_seconds(stamp: str) -> int:
    """Whole seconds of a stored `created_at` (Telegram message dates have no fractions)."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


class StaleButtonMiddleware(BaseMiddleware):
    """Outer, on Update, before StoreMiddleware: a customer's button press is checked against who
    they are now, in one place for every button.

    A press in a private chat from someone we hold no record of (they used /forget, or never wrote),
    or on a message older than their current record (they were forgotten and came back), belongs to
    a previous life: it gets 「这条消息已过期」 and nothing else — no customer row, no event, no coupon.
    Marketers are exempt: their digest buttons reach chats that never had a customer record.
    """

    def __init__(self, dialogue: DialogueService):
        self.dialogue = dialogue

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        query = event.callback_query if isinstance(event, Update) else None
        user: User | None = data.get("event_from_user")
        if query is None or user is None or user.is_bot or not self._is_customer_button(query, data):
            return await handler(event, data)
        row = await self.dialogue.run(self.dialogue.users.get, user.id)
        pressed_on = query.message.date if query.message is not None else None
        # InaccessibleMessage carries date 0 (an int); a normal message a datetime.
        stamp = int(pressed_on.timestamp()) if hasattr(pressed_on, "timestamp") else int(pressed_on or 0)
        born = _utc_seconds(row["created_at"]) if row is not None else None
        if born is not None and (stamp == 0 or stamp >= born):  # 0: too old for Telegram to show us
            return await handler(event, data)
        lang = row["language"] if row is not None else language_from_telegram(user.language_code)
        log_event(log, "stale button refused", update_id=event.update_id, known=row is not None)
        await query.answer(self.dialogue.t(lang, "button_expired"), show_alert=True)
        return None

    @staticmethod
    def _is_customer_button(query: CallbackQuery, data: dict[str, Any]) -> bool:
        chat = query.message.chat if query.message is not None else None
        if chat is None or chat.type != "private":
            return False
        config = data.get("marketer_config")
        return not (config is not None and config.allows(chat, query.from_user))


class StoreMiddleware(BaseMiddleware):
    """Outer, on Update: injects `dialogue` and the `customer` (created on first contact).

    Banned users and other bots get no answer at all; updates without a user (channel posts) pass
    through without a customer.
    """

    def __init__(self, dialogue: DialogueService):
        self.dialogue = dialogue

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["dialogue"] = self.dialogue
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        if user.is_bot:
            return None
        customer = await self.dialogue.customer(
            user.id, first_name=user.first_name or "", username=user.username, language_code=user.language_code
        )
        if customer.banned:
            return None
        data["customer"] = customer
        return await handler(event, data)


def _payment(update: Update) -> bool:
    """Payment updates are never throttled: Telegram waits for the pre-checkout answer, and a
    successful_payment is money received that must be recorded."""
    return (update.pre_checkout_query is not None or update.shipping_query is not None
            or (update.message is not None and update.message.successful_payment is not None))


def _chat_of(update: Update) -> tuple[int | None, str | None]:
    if update.message is not None:
        user = update.message.from_user
        return update.message.chat.id, user.language_code if user else None
    if update.callback_query is not None:
        query = update.callback_query
        return query.from_user.id, query.from_user.language_code
    if update.edited_message is not None:
        return None, None  # never answer an edit, even when it failed
    return None, None


def make_error_handler(texts: Texts, stats: BotStats) -> Callable[[ErrorEvent, Bot], Awaitable[bool]]:
    """dp.errors handler: log update id + trace, answer the user kindly, never raise itself."""

    stats.error_handler = True

    async def on_error(event: ErrorEvent, bot: Bot, **data: Any) -> bool:
        try:
            return await _handle(event, bot, data)
        finally:
            stats.mark_processed()

    async def _handle(event: ErrorEvent, bot: Bot, data: dict[str, Any]) -> bool:
        update = event.update
        customer = data.get("customer")
        dialogue = data.get("dialogue")
        if isinstance(event.exception, TelegramForbiddenError) and customer is not None:
            # The user blocked the bot: remember it (campaign sends skip them), nothing to answer.
            stats.blocked.append(customer.id)
            log_event(log, "user blocked the bot", logging.WARNING, update_id=update.update_id, user_id=customer.id)
            if isinstance(dialogue, DialogueService):
                await dialogue.mark_blocked(customer.id)
            return True
        stats.errors.append(update.update_id)
        trace = "".join(traceback.format_exception(event.exception))
        log_event(
            log, "update failed", logging.ERROR, update_id=update.update_id,
            error=type(event.exception).__name__, trace=trace,
        )
        chat_id, language_code = _chat_of(update)
        text = texts(language_from_telegram(language_code), "error")
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif chat_id is not None:
                await bot.send_message(chat_id, text)
        except Exception as exc:  # the user may have blocked us; nothing more to do
            log_event(log, "error reply failed", logging.WARNING, update_id=update.update_id, error=repr(exc))
        return True

    return on_error
