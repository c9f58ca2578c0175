"""Onboarding and /profile: diet, taste, level, allergens, budget (FSM state kept in SQLite)."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.callbacks import OnbCB, ProfileCB
from bot.customer.send import answer_press, reply_to
from bot.dialogue import Customer, DialogueService


async def on_profile(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, await dialogue.profile(customer))


async def on_profile_edit(
    query: CallbackQuery, callback_data: ProfileCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext,
) -> None:
    await answer_press(query, bot, await dialogue.profile_edit(customer, callback_data, state))


async def on_step(
    query: CallbackQuery, callback_data: OnbCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext,
) -> None:
    await answer_press(query, bot, await dialogue.onboarding_answer(customer, callback_data, state))


def get_router() -> Router:
    router = Router(name="customer.profile")
    router.message.register(on_profile, Command("profile"))
    router.callback_query.register(on_profile_edit, ProfileCB.filter())
    router.callback_query.register(on_step, OnbCB.filter())
    return router
