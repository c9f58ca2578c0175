"""The staff side: messages in a customer's forum topic go to the customer; commands act on the ticket.

Only members of the staff chat get here (StaffOnlyMiddleware). Messages outside a ticket topic
(the General topic, service messages, other chatter) are ignored; a known command there gets a hint.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.support.from_customer import STAFF_COMMANDS
from bot.support.middlewares import StaffOnlyMiddleware, in_ticket
from bot.support.service import SupportService
from core.logging import log_event
from core.repos.tickets import Ticket

log = logging.getLogger(__name__)


async def on_assign(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    assert message.from_user is not None  # StaffOnlyMiddleware let only real members through
    await support.assign(bot, ticket, message.from_user)


async def on_close(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    assert message.from_user is not None
    await support.close(bot, ticket, message.from_user)


async def on_reopen(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.reopen(bot, ticket)


async def on_canned(
    message: Message, command: CommandObject, bot: Bot, support: SupportService, ticket: Ticket
) -> None:
    assert message.from_user is not None
    await support.canned_command(bot, ticket, message.from_user, command.args)


async def on_history(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.history(bot, ticket)


async def on_ban(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.ban(bot, ticket)


async def on_unban(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.unban(bot, ticket)


async def on_unknown_command(message: Message, bot: Bot, support: SupportService) -> None:
    """A typo like /clsoe must never reach the customer."""
    await support.hint(bot, message, "sup_t_unknown_command")


async def on_relay(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.relay_from_staff(bot, message, ticket)


async def on_edit(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.edit_from_staff(bot, message, ticket)


async def on_not_ticket(message: Message, bot: Bot, support: SupportService) -> None:
    await support.hint(bot, message, "sup_t_not_ticket")


async def on_ignored(message: Message) -> None:
    log_event(log, "staff chat message outside a ticket ignored", chat_id=message.chat.id, message_id=message.message_id)


def get_router(staff_chat_id: int) -> Router:
    router = Router(name="support.forum")
    router.message.filter(F.chat.id == staff_chat_id)
    router.edited_message.filter(F.chat.id == staff_chat_id)
    staff = Router(name="support.forum.staff")
    # On the inner router, so the membership check only ever sees the staff chat.
    staff.message.outer_middleware(StaffOnlyMiddleware())
    staff.edited_message.outer_middleware(StaffOnlyMiddleware())
    commands = {
        "assign": on_assign, "close": on_close, "reopen": on_reopen, "canned": on_canned,
        "history": on_history, "ban": on_ban, "unban": on_unban,
    }
    assert set(commands) == set(STAFF_COMMANDS)
    for name, handler in commands.items():
        staff.message.register(handler, Command(name), in_ticket)
    staff.message.register(on_unknown_command, in_ticket, F.text.startswith("/"))
    staff.message.register(on_relay, in_ticket)
    staff.message.register(on_not_ticket, Command(*STAFF_COMMANDS))
    staff.message.register(on_ignored)
    staff.edited_message.register(on_edit, in_ticket)
    staff.edited_message.register(on_ignored)
    router.include_router(staff)
    return router
