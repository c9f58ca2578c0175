"""Live consultations: tickets, the forum-topic relay and staff actions, with Telegram failures handled.

Handlers stay a few lines long because everything with a rule in it lives here. The service is
framework-light: it calls the aiogram `Bot` it is handed and reads the store on the dialogue's
worker thread (one connection, serialised writes). What the customer is in the middle of (an open
ticket) always comes from the database, never from memory, so a restart changes nothing.

Failure policy ("nothing is silently dropped"):
- 429 → the Bot session (bot/retry.py, the one retry policy) waits and resends; a wait it does not
  accept reaches us as "rate_limited" and staff are told to resend later;
- a network error or 5xx after sending → "unknown": never resent (it may have arrived), and the
  sender is told it may not have gone through;
- 403 towards the customer → ticket.delivery_error, users.blocked_bot, and a notice in the topic;
- the topic was deleted ("message thread not found") → a new topic with the header, then resend;
- anything else towards the customer → ticket.delivery_error and a notice in the topic; towards
  staff → ticket.delivery_error and the customer is asked to send it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.enums import ContentType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import Message, ReplyParameters, User

from bot.dialogue import Customer, DialogueService
from bot.keyboards import to_markup
from bot.replies import Answer, Button, Reply
from bot.support import header, keyboards
from bot.support.header import STAFF_LANG
from bot.texts import Html
from core.domain import EventKind
from core.logging import log_event
from core.repos.tickets import CannedReplyRepository, Ticket, TicketRepository, parse_utc

log = logging.getLogger(__name__)
T = TypeVar("T")

# What copyMessage can carry; service messages (pins, topic edits …) and the like are not relayed.
RELAYABLE = frozenset(
    {
        ContentType.TEXT, ContentType.PHOTO, ContentType.VOICE, ContentType.DOCUMENT, ContentType.STICKER,
        ContentType.VIDEO, ContentType.AUDIO, ContentType.ANIMATION, ContentType.VIDEO_NOTE,
        ContentType.LOCATION, ContentType.CONTACT, ContentType.VENUE, ContentType.DICE,
    }
)
# Media whose caption can be edited (the rest of an edit, e.g. a new photo, is not mirrored).
CAPTIONED = frozenset(
    {ContentType.PHOTO, ContentType.VIDEO, ContentType.DOCUMENT, ContentType.AUDIO, ContentType.ANIMATION, ContentType.VOICE}
)
STAFF_STATUSES = frozenset({"creator", "administrator", "member"})
ADMIN_STATUSES = frozenset({"creator", "administrator"})
STATUS_REFRESH = timedelta(minutes=30)  # a customer who writes again after this sees the status line again
TOPIC_NAME_LIMIT = 128

FailureKind = Literal["blocked", "rate_limited", "unknown", "failed"]


class Undelivered(Exception):
    """A Bot API call failed for good; `kind` decides what staff and customer are told."""

    def __init__(self, kind: FailureKind, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def topic_gone(exc: TelegramAPIError) -> bool:
    """The forum topic was deleted (Telegram's wording varies between methods and versions)."""
    text = (exc.message or "").lower()
    return any(cue in text for cue in ("thread not found", "topic_deleted", "topic deleted", "topic_id_invalid"))


def message_kind(message: Message) -> str:
    return str(getattr(message.content_type, "value", message.content_type))


def message_text(message: Message) -> str | None:
    return message.text if message.text is not None else message.caption


def _reply(message_id: int | None) -> ReplyParameters | None:
    # A mapped message may have been deleted since; the relay must still go through.
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True) if message_id else None


class SupportService:
    def __init__(
        self,
        dialogue: DialogueService,
        staff_chat_id: int,
        *,
        tickets: TicketRepository | None = None,
        canned: CannedReplyRepository | None = None,
        admin_ids: Iterable[int] = (),
        zone: tzinfo | None = None,
        status_refresh: timedelta = STATUS_REFRESH,
        member_ttl: float = 60.0,
    ):
        self.dialogue = dialogue
        self.t = dialogue.t
        self.staff_chat_id = staff_chat_id
        store = dialogue.users.store  # the dialogue worker thread's connection
        self.tickets = tickets or TicketRepository(store)
        self.canned = canned or CannedReplyRepository(store)
        self.admin_ids = frozenset(admin_ids)
        self.zone = zone or ZoneInfo("Asia/Shanghai")
        self.status_refresh = status_refresh
        self.member_ttl = member_ttl
        self._members: dict[int, tuple[float, str]] = {}
        self._topic_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await self.dialogue.run(fn, *args, **kwargs)

    # -- lookups used by middlewares ---------------------------------------------------------
    async def open_ticket(self, user_id: int) -> Ticket | None:
        return await self.run(self.tickets.open_for, user_id)

    async def ticket_of_thread(self, thread_id: int) -> Ticket | None:
        return await self.run(self.tickets.get_by_thread, thread_id)

    async def member_status(self, bot: Bot, user_id: int) -> str:
        """The user's status in the staff chat, cached briefly (getChatMember is rate limited too)."""
        now = time.monotonic()
        cached = self._members.get(user_id)
        if cached is not None and now - cached[0] < self.member_ttl:
            return cached[1]
        try:
            member = await bot.get_chat_member(self.staff_chat_id, user_id)
            status = str(getattr(member.status, "value", member.status))
        except TelegramAPIError as exc:
            log_event(log, "staff membership check failed", logging.WARNING, user_id=user_id, error=exc.message)
            status = "unknown"
        self._members[user_id] = (now, status)
        return status

    async def is_staff(self, bot: Bot, user_id: int) -> bool:
        return user_id in self.admin_ids or await self.member_status(bot, user_id) in STAFF_STATUSES

    async def is_admin(self, bot: Bot, user_id: int) -> bool:
        return user_id in self.admin_ids or await self.member_status(bot, user_id) in ADMIN_STATUSES

    # -- Telegram calls with the failure policy ------------------------------------------------
    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One Bot API call, translated into the failure kinds. No retry loop here: the Bot session
        (bot/retry.py) already waited out short 429s and retried idempotent calls; what is left is
        final. A transport error after sending is "unknown": the message may have arrived."""
        try:
            return await make()
        except TelegramRetryAfter as exc:
            raise Undelivered("rate_limited", exc.message) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise Undelivered("unknown", exc.message) from exc
        except TelegramForbiddenError as exc:
            raise Undelivered("blocked", exc.message) from exc

    def _lock(self, user_id: int) -> asyncio.Lock:
        lock = self._topic_locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._topic_locks[user_id] = lock
        return lock

    def _topic_name(self, ticket: Ticket, name: str, username: str | None) -> str:
        label = f"{name or 'Customer'}{f' @{username}' if username else ''} · {ticket.user_id}"
        return label[:TOPIC_NAME_LIMIT]

    async def _header_text(self, ticket: Ticket, *, recreated: bool = False) -> str:
        data = await self.run(header.gather, self.dialogue, self.tickets, ticket, self.zone, recreated=recreated)
        return header.render(data, self.t)

    async def _new_topic(self, bot: Bot, ticket: Ticket, failed_thread: int | None) -> Ticket:
        """Create the customer's forum topic (or a replacement for a deleted one) and post the header.

        Serialised per customer: a second caller that finds a fresh topic already made uses it.
        """
        async with self._lock(ticket.user_id):
            fresh = await self.run(self.tickets.get, ticket.id) or ticket
            if fresh.thread_id is not None and fresh.thread_id != failed_thread:
                return fresh
            user = await self.run(self.dialogue.users.get, ticket.user_id) or {}
            name = self._topic_name(ticket, str(user.get("first_name") or ""), user.get("username"))
            try:
                topic = await self._call(lambda: bot.create_forum_topic(self.staff_chat_id, name))
            except TelegramAPIError as exc:
                raise Undelivered("failed", f"createForumTopic: {exc.message}") from exc
            thread = topic.message_thread_id
            await self.run(self.tickets.set_thread, ticket.id, thread)
            fresh = replace(fresh, thread_id=thread)
            log_event(log, "support topic created", ticket=ticket.id, thread_id=thread, replaced=failed_thread)
            text = await self._header_text(fresh, recreated=failed_thread is not None)
            try:
                await self._call(lambda: bot.send_message(self.staff_chat_id, text, message_thread_id=thread, parse_mode="HTML"))
            except (Undelivered, TelegramAPIError) as exc:  # the card is context; the relay matters more
                log_event(log, "support header not posted", logging.WARNING, ticket=ticket.id, error=str(exc))
            return fresh

    async def _in_topic(
        self, bot: Bot, ticket: Ticket, send: Callable[[int], Awaitable[T]], *, resend: bool = True
    ) -> tuple[Ticket, T | None]:
        """Run `send(thread_id)` in the ticket's topic, creating or replacing the topic as needed.

        Returns the (possibly updated) ticket and the result; None when the topic was replaced and
        `resend` is False (the replacement's header already said it). Raises Undelivered.
        """
        if ticket.thread_id is None:
            ticket = await self._new_topic(bot, ticket, None)
        thread = ticket.thread_id
        assert thread is not None
        try:
            return ticket, await self._call(lambda: send(thread))
        except TelegramAPIError as exc:
            if not (isinstance(exc, TelegramBadRequest) and topic_gone(exc)):
                raise Undelivered("failed", exc.message) from exc
            log_event(log, "support topic gone", logging.WARNING, ticket=ticket.id, thread_id=thread)
        ticket = await self._new_topic(bot, ticket, thread)
        if not resend:
            return ticket, None
        new_thread = ticket.thread_id
        assert new_thread is not None
        try:
            return ticket, await self._call(lambda: send(new_thread))
        except TelegramAPIError as exc:
            raise Undelivered("failed", exc.message) from exc

    async def say(self, bot: Bot, ticket: Ticket, text: str) -> Message | None:
        """A bot notice in the ticket's topic (HTML); failures are logged, never raised."""

        async def send(thread: int) -> Message:
            return await bot.send_message(self.staff_chat_id, text, message_thread_id=thread, parse_mode="HTML")

        try:
            _, sent = await self._in_topic(bot, ticket, send)
        except Undelivered as exc:
            log_event(log, "support notice not posted", logging.ERROR, ticket=ticket.id, error=str(exc))
            return None
        return sent

    async def _to_customer(self, bot: Bot, ticket: Ticket, make: Callable[[], Awaitable[T]]) -> T | None:
        """Deliver to the customer; on failure mark the ticket and tell staff in the topic."""
        try:
            try:
                result = await self._call(make)
            except TelegramAPIError as exc:
                raise Undelivered("failed", exc.message) from exc
        except Undelivered as exc:
            await self._delivery_failed(bot, ticket, exc)
            return None
        if ticket.delivery_error:
            await self.run(self.tickets.mark_delivery_error, ticket.id, None)
        return result

    async def _delivery_failed(self, bot: Bot, ticket: Ticket, exc: Undelivered) -> None:
        log_event(
            log, "support relay to customer failed", logging.WARNING, ticket=ticket.id, user_id=ticket.user_id,
            kind=exc.kind, error=exc.detail,
        )
        await self.run(self.tickets.mark_delivery_error, ticket.id, f"{exc.kind}: {exc.detail}")
        if exc.kind == "blocked":
            await self.run(self.dialogue.users.set_flag, ticket.user_id, "blocked_bot", True)
            text = self.t(STAFF_LANG, "sup_t_blocked", ticket=ticket.id)
        elif exc.kind == "rate_limited":
            text = self.t(STAFF_LANG, "sup_t_rate_limited")
        elif exc.kind == "unknown":
            text = self.t(STAFF_LANG, "sup_t_unknown", ticket=ticket.id)
        else:
            text = self.t(STAFF_LANG, "sup_t_failed", ticket=ticket.id, error=exc.detail[:300])
        await self.say(bot, ticket, text)

    async def _send_customer(
        self, bot: Bot, ticket: Ticket, text: str, rows: list[list[Button]] | None = None
    ) -> Message | None:
        return await self._to_customer(
            bot, ticket, lambda: bot.send_message(ticket.user_id, text, parse_mode="HTML", reply_markup=to_markup(rows or []))
        )

    async def _lang(self, user_id: int) -> str:
        user = await self.run(self.dialogue.users.get, user_id) or {}
        return "en" if user.get("language") == "en" else "zh"

    # -- customer side ------------------------------------------------------------------------
    def _status_key(self, ticket: Ticket) -> str:
        return f"{ticket.status}:{ticket.assignee_id or ''}"

    def _status_reply(self, lang: str, ticket: Ticket) -> Reply:
        if ticket.status == "assigned":
            text = self.t(lang, "sup_status_assigned", ticket=ticket.id, name=ticket.assignee_name or "")
        else:
            text = self.t(lang, "sup_status_open", ticket=ticket.id)
        return Reply(text, keyboards.end_chat(self.t, lang, ticket.id))

    async def open(self, bot: Bot, c: Customer, reason: str = "handoff") -> list[Reply]:
        """/consult or 人工客服: a ticket with its topic and header, or the status of the open one."""
        existing = await self.open_ticket(c.id)
        if existing is not None:
            await self.run(self.tickets.set_customer_status, existing.id, self._status_key(existing))
            return [self._status_reply(c.lang, existing)]
        ticket, created = await self.run(self._create, c.id, reason)
        if not created:
            return [self._status_reply(c.lang, ticket)]
        try:
            if ticket.thread_id is None:
                ticket = await self._new_topic(bot, ticket, None)
            else:  # the customer's topic from an earlier ticket: one topic per customer
                text = await self._header_text(ticket)
                ticket, _ = await self._in_topic(
                    bot, ticket,
                    lambda thread: bot.send_message(self.staff_chat_id, text, message_thread_id=thread, parse_mode="HTML"),
                    resend=False,
                )
        except Undelivered as exc:
            log_event(log, "consultation could not be opened", logging.ERROR, ticket=ticket.id, error=str(exc))
            await self.run(self.tickets.mark_delivery_error, ticket.id, f"open: {exc}")
            await self.run(self.tickets.close, ticket.id, "error")
            return [Reply(self.t(c.lang, "sup_open_failed"))]
        log_event(log, "consultation opened", ticket=ticket.id, user_id=c.id, reason=reason)
        return [Reply(self.t(c.lang, "sup_opened", ticket=ticket.id), keyboards.end_chat(self.t, c.lang, ticket.id))]

    def _create(self, user_id: int, reason: str) -> tuple[Ticket, bool]:
        # Blocking, on the worker thread: the handoff event and the ticket are written together.
        with self.tickets.store.transaction():
            ticket, created = self.tickets.create(user_id, reason, thread_id=self.tickets.topic_of(user_id))
            self.dialogue.events.record(
                user_id, EventKind.HANDOFF_REQUESTED, payload={"reason": reason, "ticket": ticket.id, "live": True}
            )
        return ticket, created

    async def relay_from_customer(self, bot: Bot, c: Customer, message: Message, ticket: Ticket) -> None:
        """Copy a customer message into their topic (threaded like the original) and map the ids."""
        if message.content_type not in RELAYABLE:
            await message.answer(self.t(c.lang, "sup_unsupported"))
            return
        reply_to = None
        if message.reply_to_message is not None:
            row = await self.run(self.tickets.find_by_customer_mid, c.id, message.reply_to_message.message_id)
            reply_to = row["staff_message_id"] if row else None

        async def send(thread: int) -> Any:
            return await bot.copy_message(
                self.staff_chat_id, message.chat.id, message.message_id,
                message_thread_id=thread, reply_parameters=_reply(reply_to),
            )

        try:
            ticket, sent = await self._in_topic(bot, ticket, send)
        except Undelivered as exc:
            log_event(log, "support relay to staff failed", logging.ERROR, ticket=ticket.id, error=str(exc))
            await self.run(self.tickets.mark_delivery_error, ticket.id, f"to staff: {exc}")
            await message.answer(self.t(c.lang, "sup_not_confirmed" if exc.kind == "unknown" else "sup_not_delivered"))
            return
        await self.run(
            self.tickets.map_message, ticket.id, "in", message.message_id, sent.message_id,
            message_kind(message), message_text(message),
        )
        await self._maybe_status(bot, c, ticket)

    async def _maybe_status(self, bot: Bot, c: Customer, ticket: Ticket) -> None:
        """The status line, when the customer writes again after a while or the status changed."""
        key = self._status_key(ticket)
        seen = ticket.customer_status_at
        fresh = seen is not None and datetime.now(UTC) - parse_utc(seen) < self.status_refresh
        if ticket.customer_status == key and fresh:
            return
        reply = self._status_reply(c.lang, ticket)
        sent = await self._to_customer(
            bot, ticket,
            lambda: bot.send_message(c.id, reply.text, parse_mode="HTML", reply_markup=to_markup(reply.buttons)),
        )
        if sent is not None:
            await self.run(self.tickets.set_customer_status, ticket.id, key)

    async def edit_from_customer(self, bot: Bot, message: Message, ticket: Ticket) -> None:
        row = await self.run(self.tickets.find_by_customer_mid, message.chat.id, message.message_id)
        if row is None or row["direction"] != "in" or row["staff_message_id"] is None:
            return
        try:
            await self._mirror_edit(bot, self.staff_chat_id, row["staff_message_id"], message)
        except Undelivered as exc:
            log_event(log, "customer edit not mirrored", logging.WARNING, ticket=ticket.id, error=str(exc))
            return
        await self.run(self.tickets.update_text, row["id"], message_text(message))

    async def _mirror_edit(self, bot: Bot, chat_id: int, message_id: int, source: Message) -> None:
        """Edit our copy like the original was edited: text and captions (media swaps are not mirrored)."""
        try:
            if source.text is not None:
                await self._call(
                    lambda: bot.edit_message_text(
                        text=source.text, chat_id=chat_id, message_id=message_id, entities=source.entities,
                        parse_mode=None,
                    )
                )
            elif source.content_type in CAPTIONED:
                await self._call(
                    lambda: bot.edit_message_caption(
                        chat_id=chat_id, message_id=message_id, caption=source.caption or "",
                        caption_entities=source.caption_entities, parse_mode=None,
                    )
                )
        except TelegramAPIError as exc:
            if "not modified" not in (exc.message or ""):
                raise Undelivered("failed", exc.message) from exc

    async def end_by_customer(self, bot: Bot, c: Customer, ticket_id: int | None) -> Answer:
        """结束咨询 or /end: close, tell staff, ask the customer for a rating."""
        ticket = await self.run(self.tickets.get, ticket_id) if ticket_id else await self.open_ticket(c.id)
        if ticket is None or ticket.user_id != c.id or not ticket.is_open:
            return Answer(toast=self.t(c.lang, "sup_no_ticket"), replies=[] if ticket_id else [Reply(self.t(c.lang, "sup_no_ticket"))])
        closed = await self.run(self.tickets.close, ticket.id, "customer")
        if closed is None:
            return Answer(toast=self.t(c.lang, "sup_no_ticket"))
        await self.say(bot, closed, self.t(STAFF_LANG, "sup_t_closed_by_customer", ticket=closed.id))
        return Answer(replies=[Reply(self.t(c.lang, "sup_closed_customer"), keyboards.rating(closed.id))])

    async def rate(self, bot: Bot, c: Customer, ticket_id: int, score: int) -> Answer:
        ticket = await self.run(self.tickets.get, ticket_id)
        if ticket is None or ticket.user_id != c.id or ticket.is_open or not 1 <= score <= 5:
            return Answer(toast=self.t(c.lang, "sup_rate_stale"))
        rated = await self.run(self.tickets.rate, ticket.id, score)
        if rated is None:
            return Answer(toast=self.t(c.lang, "sup_rate_stale"))
        log_event(log, "consultation rated", ticket=ticket.id, rating=score)
        await self.say(bot, rated, self.t(STAFF_LANG, "sup_t_rating", stars=keyboards.stars(score), rating=score))
        text = self.t(c.lang, "sup_rate_thanks", stars=keyboards.stars(score))
        return Answer(edit=Reply(text, keyboards.skip_comment(self.t, c.lang, ticket.id)))

    async def comment(self, bot: Bot, c: Customer, ticket_id: int, text: str) -> list[Reply]:
        ticket = await self.run(self.tickets.get, ticket_id)
        if ticket is None or ticket.user_id != c.id:
            return [Reply(self.t(c.lang, "sup_rate_stale"))]
        await self.run(self.tickets.comment, ticket.id, text)
        await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_comment", comment=text.strip()[:1000]))
        return [Reply(self.t(c.lang, "sup_comment_thanks"))]

    # -- staff side ---------------------------------------------------------------------------
    async def relay_from_staff(self, bot: Bot, message: Message, ticket: Ticket) -> None:
        """Copy a staff message from the topic to the customer, threaded like in the topic."""
        if not ticket.is_open:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_closed_no_relay", ticket=ticket.id))
            return
        if message.content_type not in RELAYABLE:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_unsupported"))
            return
        reply_to = None
        if message.reply_to_message is not None and ticket.thread_id is not None:
            row = await self.run(self.tickets.find_by_staff_mid, ticket.thread_id, message.reply_to_message.message_id)
            reply_to = row["customer_message_id"] if row else None
        sent = await self._to_customer(
            bot, ticket,
            lambda: bot.copy_message(
                ticket.user_id, self.staff_chat_id, message.message_id, reply_parameters=_reply(reply_to)
            ),
        )
        if sent is None:
            return
        await self.run(
            self.tickets.map_message, ticket.id, "out", sent.message_id, message.message_id,
            message_kind(message), message_text(message),
        )

    async def edit_from_staff(self, bot: Bot, message: Message, ticket: Ticket) -> None:
        if ticket.thread_id is None:
            return
        row = await self.run(self.tickets.find_by_staff_mid, ticket.thread_id, message.message_id)
        if row is None or row["direction"] != "out" or row["customer_message_id"] is None:
            return
        try:
            await self._mirror_edit(bot, ticket.user_id, row["customer_message_id"], message)
        except Undelivered as exc:
            await self._delivery_failed(bot, ticket, exc)
            return
        await self.run(self.tickets.update_text, row["id"], message_text(message))

    async def assign(self, bot: Bot, ticket: Ticket, staff: User) -> None:
        if not ticket.is_open:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_already_closed", ticket=ticket.id))
            return
        assigned = await self.run(self.tickets.assign, ticket.id, staff.id, staff.full_name)
        if assigned is None:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_already_closed", ticket=ticket.id))
            return
        await self.say(bot, assigned, self.t(STAFF_LANG, "sup_t_assigned", name=staff.full_name, ticket=ticket.id))
        lang = await self._lang(ticket.user_id)
        sent = await self._send_customer(bot, assigned, self.t(lang, "sup_assigned_customer", name=staff.first_name))
        if sent is not None:
            await self.run(self.tickets.set_customer_status, ticket.id, self._status_key(assigned))

    async def close(self, bot: Bot, ticket: Ticket, staff: User) -> None:
        closed = await self.run(self.tickets.close, ticket.id, "staff")
        if closed is None:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_already_closed", ticket=ticket.id))
            return
        log_event(log, "consultation closed", ticket=ticket.id, by=staff.id)
        await self.say(bot, closed, self.t(STAFF_LANG, "sup_t_closed", ticket=ticket.id, name=staff.full_name))
        lang = await self._lang(ticket.user_id)
        await self._send_customer(bot, closed, self.t(lang, "sup_closed_customer"), keyboards.rating(closed.id))

    async def reopen(self, bot: Bot, ticket: Ticket) -> None:
        if ticket.is_open:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_not_closed", ticket=ticket.id))
            return
        reopened = await self.run(self.tickets.reopen, ticket.id)
        if reopened is None:
            other = await self.open_ticket(ticket.user_id)
            text = self.t(STAFF_LANG, "sup_t_reopen_conflict", ticket=ticket.id, other=other.id if other else "?")
            await self.say(bot, ticket, text)
            return
        await self.say(bot, reopened, self.t(STAFF_LANG, "sup_t_reopened", ticket=ticket.id))
        lang = await self._lang(ticket.user_id)
        sent = await self._send_customer(
            bot, reopened, self.t(lang, "sup_reopened_customer", ticket=ticket.id),
            keyboards.end_chat(self.t, lang, ticket.id),
        )
        if sent is not None:
            await self.run(self.tickets.set_customer_status, ticket.id, self._status_key(reopened))

    async def canned_command(self, bot: Bot, ticket: Ticket, staff: User, args: str | None) -> None:
        """/canned (list), /canned <key> (send), /canned add <key> <text> and /canned del <key> (admins)."""
        words = (args or "").strip().split(maxsplit=2)
        if not words:
            await self._canned_list(bot, ticket)
        elif words[0].lower() in ("add", "set", "del", "delete", "rm"):
            await self._canned_manage(bot, ticket, staff, words)
        else:
            await self._canned_send(bot, ticket, words[0])

    async def _canned_list(self, bot: Bot, ticket: Ticket) -> None:
        rows = await self.run(self.canned.list)
        if not rows:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_empty"))
            return
        lines = "\n".join(f"• {row['key']} — {row['text'][:40]}" for row in rows[:50])
        await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_list", lines=lines))

    async def _canned_manage(self, bot: Bot, ticket: Ticket, staff: User, words: list[str]) -> None:
        if not await self.is_admin(bot, staff.id):
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_admin_only"))
            return
        action = words[0].lower()
        if action in ("add", "set") and len(words) == 3:
            try:
                row = await self.run(self.canned.set, words[1], words[2], staff.id)
            except ValueError as exc:
                await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_bad", error=str(exc)))
                return
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_saved", key=row["key"]))
        elif action in ("del", "delete", "rm") and len(words) >= 2:
            if await self.run(self.canned.delete, words[1]):
                await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_deleted", key=words[1].lower()))
            else:
                await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_unknown", key=words[1]))
        else:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_usage"))

    async def _canned_send(self, bot: Bot, ticket: Ticket, key: str) -> None:
        row = await self.run(self.canned.get, key)
        if row is None:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_unknown", key=key))
            return
        if not ticket.is_open:
            await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_closed_no_relay", ticket=ticket.id))
            return
        user = await self.run(self.dialogue.users.get, ticket.user_id) or {}
        text = str(row["text"]).replace("{name}", str(user.get("first_name") or ""))
        sent = await self._to_customer(bot, ticket, lambda: bot.send_message(ticket.user_id, text, parse_mode=None))
        if sent is None:
            return
        # The topic shows what the customer got; that notice is the staff side of the mapping.
        notice = await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_canned_sent", key=row["key"], text=text))
        await self.run(
            self.tickets.map_message, ticket.id, "out", sent.message_id, notice.message_id if notice else None,
            "canned", text,
        )

    async def history(self, bot: Bot, ticket: Ticket) -> None:
        rows = await self.run(self.tickets.history, ticket.user_id, 10)
        lines = []
        for row in rows:
            opened = parse_utc(row["opened_at"]).astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
            rating = f" · {keyboards.stars(int(row['rating']))}" if row["rating"] else ""
            lines.append(
                self.t(
                    STAFF_LANG, "sup_t_history_line", ticket=row["id"], opened=opened,
                    status=self.t(STAFF_LANG, f"sup_s_{row['status']}"), rating=rating, messages=row["messages"],
                )
            )
        await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_history", lines=_html_lines(lines)))

    async def ban(self, bot: Bot, ticket: Ticket) -> None:
        await self.run(self.dialogue.users.set_flag, ticket.user_id, "banned", True)
        if ticket.is_open:
            await self.run(self.tickets.close, ticket.id, "ban")
        log_event(log, "customer banned from support", logging.WARNING, user_id=ticket.user_id, ticket=ticket.id)
        await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_banned"))

    async def unban(self, bot: Bot, ticket: Ticket) -> None:
        await self.run(self.dialogue.users.set_flag, ticket.user_id, "banned", False)
        await self.say(bot, ticket, self.t(STAFF_LANG, "sup_t_unbanned"))

    async def hint(self, bot: Bot, message: Message, key: str) -> None:
        """A short staff-facing answer in the topic the command came from."""
        try:
            await self._call(
                lambda: bot.send_message(
                    self.staff_chat_id, self.t(STAFF_LANG, key), parse_mode="HTML",
                    message_thread_id=message.message_thread_id if message.is_topic_message else None,
                    reply_parameters=_reply(message.message_id),
                )
            )
        except (Undelivered, TelegramAPIError) as exc:
            log_event(log, "staff hint not sent", logging.WARNING, key=key, error=str(exc))

    # -- start-up ------------------------------------------------------------------------------
    async def check_staff_chat(self, bot: Bot) -> bool:
        """Warn early (not on the first customer) when the staff chat cannot hold topics."""
        try:
            chat = await bot.get_chat(self.staff_chat_id)
        except TelegramAPIError as exc:
            log_event(log, "staff chat not reachable", logging.ERROR, chat_id=self.staff_chat_id, error=exc.message)
            return False
        if not chat.is_forum:
            log_event(
                log, "staff chat has no topics: enable Topics in the group settings", logging.ERROR,
                chat_id=self.staff_chat_id,
            )
            return False
        return True


def _html_lines(lines: list[str]) -> Html:
    # Each line was rendered (and escaped) by Texts already.
    return Html("\n".join(lines))
