"""人工客服 without a staff chat: /consult and the handoff button record the request.

With XIANKE_STAFF_CHAT_ID set, bot.support (included before the customer router) handles both and
opens a real consultation in the staff forum; these handlers then never see them.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import HandoffCB
from bot.customer.send import answer_press, reply_to
from bot.dialogue import Customer, DialogueService
from bot.replies import Answer


async def on_consult(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, await dialogue.consult(customer, "command"))


async def on_handoff(
    query: CallbackQuery, callback_data: HandoffCB, bot: Bot, dialogue: DialogueService, customer: Customer
) -> None:
    await answer_press(query, bot, Answer(replies=await dialogue.consult(customer, callback_data.reason)))


def get_router() -> Router:
    router = Router(name="customer.support")
    router.message.register(on_consult, Command("consult"))
    router.callback_query.register(on_handoff, HandoffCB.filter())
    return router
