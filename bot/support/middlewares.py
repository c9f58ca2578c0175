"""Consultation middlewares: ticket lookup (so handlers get `ticket`) and the staff-membership gate.

Both are outer middlewares, so they run before the handlers' filters; the filters then only check
what was injected (`in_ticket`). They guard themselves by chat, because a router's outer middleware
sees every event that reaches the router, before the router's own chat filter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.dispatcher.middlewares.base import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot.support.service import SupportService
from core.logging import log_event
from core.repos.tickets import Ticket

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class TicketMiddleware(BaseMiddleware):
    """Injects `ticket`: a private chat's open ticket, or the ticket of a staff forum topic.

    The database is the only source: what a restart or a second worker sees is what this sees.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        support: SupportService | None = data.get("support")
        if support is None or not isinstance(event, Message):
            return await handler(event, data)
        ticket: Ticket | None = None
        if event.chat.type == "private" and event.from_user is not None:
            ticket = await support.open_ticket(event.from_user.id)
        elif event.chat.id == support.staff_chat_id and event.is_topic_message and event.message_thread_id:
            ticket = await support.ticket_of_thread(event.message_thread_id)
        data["ticket"] = ticket
        return await handler(event, data)


class StaffOnlyMiddleware(BaseMiddleware):
    """In the staff chat only members (or configured admins) act; others' commands are refused politely
    and their other messages are never relayed to a customer."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        support: SupportService | None = data.get("support")
        bot: Bot | None = data.get("bot")
        if support is None or bot is None or not isinstance(event, Message) or event.chat.id != support.staff_chat_id:
            return await handler(event, data)
        user = event.from_user
        if user is not None and not user.is_bot and await support.is_staff(bot, user.id):
            return await handler(event, data)
        log_event(log, "non-staff message in the staff chat", user_id=user.id if user else None)
        if (event.text or "").startswith("/"):
            await support.hint(bot, event, "sup_t_refused")
        return None


async def in_ticket(_: TelegramObject, ticket: Ticket | None = None) -> bool:
    """Filter: the message belongs to a ticket (async, so aiogram does not hop to a thread for it)."""
    return ticket is not None


async def not_command(message: Message) -> bool:
    return not (message.text or "").startswith("/")
