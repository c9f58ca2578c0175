"""The customer's side of a consultation: open it, talk through the relay, see its status, end it.

While a ticket is open every non-command message goes to staff (recommendations pause); commands
such as /help keep working. The open ticket comes from the database via TicketMiddleware.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.callbacks import HandoffCB
from bot.customer.send import answer_press, reply_to
from bot.dialogue import Customer
from bot.replies import Answer
from bot.support import rating
from bot.support.callbacks import EndCB
from bot.support.middlewares import in_ticket, not_command
from bot.support.service import SupportService
from bot.texts import Texts
from core.repos.tickets import Ticket

STAFF_COMMANDS = ("close", "reopen", "assign", "canned", "history", "ban", "unban")


async def on_consult(
    message: Message, bot: Bot, support: SupportService, customer: Customer, state: FSMContext
) -> None:
    await rating.forget_comment(state)  # a new consultation supersedes a pending comment
    await reply_to(message, await support.open(bot, customer, "command"))


async def on_handoff(
    query: CallbackQuery, callback_data: HandoffCB, bot: Bot, support: SupportService, customer: Customer,
    state: FSMContext,
) -> None:
    await rating.forget_comment(state)
    await answer_press(query, bot, Answer(replies=await support.open(bot, customer, callback_data.reason)))


async def on_end_button(
    query: CallbackQuery, callback_data: EndCB, bot: Bot, support: SupportService, customer: Customer
) -> None:
    await answer_press(query, bot, await support.end_by_customer(bot, customer, callback_data.ticket))


async def on_end_command(message: Message, bot: Bot, support: SupportService, customer: Customer) -> None:
    await reply_to(message, (await support.end_by_customer(bot, customer, None)).replies)


async def on_staff_command(message: Message, customer: Customer, texts: Texts) -> None:
    """A customer typing /close (or any staff command) is refused, never relayed or obeyed."""
    await message.answer(texts(customer.lang, "sup_staff_only"))


async def on_relay(message: Message, bot: Bot, support: SupportService, customer: Customer, ticket: Ticket) -> None:
    await support.relay_from_customer(bot, customer, message, ticket)


async def on_edit(message: Message, bot: Bot, support: SupportService, ticket: Ticket) -> None:
    await support.edit_from_customer(bot, message, ticket)


def get_router() -> Router:
    router = Router(name="support.customer")
    router.message.filter(F.chat.type == "private")
    router.edited_message.filter(F.chat.type == "private")
    talk = Router(name="support.customer.talk")
    talk.message.register(on_consult, Command("consult"))
    talk.message.register(on_end_command, Command("end"))
    talk.message.register(on_staff_command, Command(*STAFF_COMMANDS))
    talk.message.register(on_relay, in_ticket, not_command)
    talk.edited_message.register(on_edit, in_ticket)
    talk.callback_query.register(on_handoff, HandoffCB.filter())
    talk.callback_query.register(on_end_button, EndCB.filter())
    router.include_routers(rating.get_router(), talk)  # a pending rating comment is answered first
    return router
