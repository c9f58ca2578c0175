"""/start (with campaign deep links), /help, /privacy, /lang, /coupons."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.callbacks import LangCB
from bot.customer.send import answer_press, reply_to
from bot.dialogue import Customer, DialogueService
from bot.replies import Answer


async def on_start(
    message: Message, command: CommandObject, dialogue: DialogueService, customer: Customer, state: FSMContext
) -> None:
    await reply_to(message, await dialogue.start(customer, command.args, state))


async def on_help(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, dialogue.help(customer))


async def on_privacy(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, dialogue.privacy(customer))


async def on_lang(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    _, replies = await dialogue.set_language(customer)
    await reply_to(message, replies)


async def on_lang_button(
    query: CallbackQuery, callback_data: LangCB, bot: Bot, dialogue: DialogueService, customer: Customer
) -> None:
    _, replies = await dialogue.set_language(customer, callback_data.lang)
    await answer_press(query, bot, Answer(replies=replies))


async def on_coupons(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, await dialogue.coupons_list(customer))


def get_router() -> Router:
    router = Router(name="customer.start")
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    router.message.register(on_privacy, Command("privacy"))
    router.message.register(on_lang, Command("lang"))
    router.message.register(on_coupons, Command("coupons"))
    router.callback_query.register(on_lang_button, LangCB.filter())
    return router
