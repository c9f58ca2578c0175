"""After a consultation: the 1-5 rating buttons, then an optional comment (FSM state kept in SQLite)."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.customer.send import answer_press, reply_to
from bot.dialogue import Customer
from bot.support.callbacks import RateCB, SkipCommentCB
from bot.support.middlewares import not_command
from bot.support.service import SupportService
from bot.texts import Texts

COMMENT_WINDOW_S = 30 * 60  # a message long after the rating is a new question, not a comment


class SupportStates(StatesGroup):
    comment = State()


async def awaiting_comment(message: Message, state: FSMContext | None = None) -> bool | dict[str, Any]:
    """Filter: the customer rated a ticket recently and has not commented yet; injects `rated_ticket`."""
    if state is None or await state.get_state() != SupportStates.comment.state:  # no sender, no state
        return False
    data = await state.get_data()
    ticket, until = data.get("support_rated"), float(data.get("support_comment_until") or 0)
    if not ticket or time.time() > until:
        await forget_comment(state)
        return False
    return {"rated_ticket": int(ticket)}


async def forget_comment(state: FSMContext) -> None:
    if await state.get_state() == SupportStates.comment.state:
        await state.set_state(None)
    await state.update_data(support_rated=None, support_comment_until=None)


async def on_rate(
    query: CallbackQuery, callback_data: RateCB, bot: Bot, support: SupportService, customer: Customer,
    state: FSMContext,
) -> None:
    answer = await support.rate(bot, customer, callback_data.ticket, callback_data.score)
    if answer.edit is not None:
        await state.set_state(SupportStates.comment)
        await state.update_data(support_rated=callback_data.ticket, support_comment_until=time.time() + COMMENT_WINDOW_S)
    await answer_press(query, bot, answer)


async def on_comment(
    message: Message, rated_ticket: int, bot: Bot, support: SupportService, customer: Customer, state: FSMContext
) -> None:
    await forget_comment(state)
    await reply_to(message, await support.comment(bot, customer, rated_ticket, message.text or ""))


async def on_skip(query: CallbackQuery, customer: Customer, state: FSMContext, texts: Texts) -> None:
    await forget_comment(state)
    await query.answer(texts(customer.lang, "sup_comment_skipped"))
    if isinstance(query.message, Message) and query.message.reply_markup is not None:
        # A double tap finds the buttons already gone; editing again would be "message is not modified".
        with suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)


def get_router() -> Router:
    router = Router(name="support.rating")
    router.message.register(on_comment, awaiting_comment, F.text, not_command)
    router.callback_query.register(on_rate, RateCB.filter())
    router.callback_query.register(on_skip, SkipCommentCB.filter())
    return router
