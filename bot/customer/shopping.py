"""Free text → recommendation cards or a pairing answer; the card buttons; 更多; quick replies."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CardCB, MoreCB, QuickCB, SaveCB
from bot.customer.send import answer_press, reply_to
from bot.dialogue import Customer, DialogueService


async def on_text(message: Message, dialogue: DialogueService, customer: Customer, state: FSMContext) -> None:
    await reply_to(message, await dialogue.message(customer, message.text, state))


async def on_card(
    query: CallbackQuery, callback_data: CardCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext,
) -> None:
    await answer_press(query, bot, await dialogue.card_action(customer, callback_data, state))


async def on_more(
    query: CallbackQuery, callback_data: MoreCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext,
) -> None:
    await answer_press(query, bot, await dialogue.more(customer, callback_data, state))


async def on_quick(
    query: CallbackQuery, callback_data: QuickCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext,
) -> None:
    await answer_press(query, bot, await dialogue.quick(customer, callback_data, state))


async def on_save(
    query: CallbackQuery, callback_data: SaveCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext,
) -> None:
    await answer_press(query, bot, await dialogue.save_constraints(customer, callback_data, state))


def get_router() -> Router:
    router = Router(name="customer.shopping")
    router.message.register(on_text, F.text, ~F.text.startswith("/"))
    router.callback_query.register(on_card, CardCB.filter())
    router.callback_query.register(on_more, MoreCB.filter())
    router.callback_query.register(on_quick, QuickCB.filter())
    router.callback_query.register(on_save, SaveCB.filter())
    return router
