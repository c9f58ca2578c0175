"""The marketer desk: /campaigns, /campaign <slug> and the /campaign creation wizard.

Only configured marketers get in (see `access.MarketerConfig`, injected as workflow data
`marketer_config`); everyone else who tries a marketer command is refused politely. Effect estimates
come from an optional workflow-data callable `campaign_report(campaign_id) -> str | None` that the
composition root wires to jobs (the bot never imports jobs); without it the stored report is shown.

Include this router before the customer router: the wizard's free-text answers would otherwise be
read as shopping questions.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.dialogue import Customer
from bot.marketer import campaigns, wizard
from bot.marketer.access import MarketerConfig, is_marketer
from bot.marketer.callbacks import WizCB
from bot.texts import Texts

__all__ = ["MarketerConfig", "get_router"]


async def on_refused(message: Message, texts: Texts, customer: Customer | None = None) -> None:
    lang = customer.lang if customer is not None else "zh"
    user_id = message.from_user.id if message.from_user else 0
    await message.answer(texts(lang, "mk_refused", user_id=user_id))


async def on_refused_button(query: CallbackQuery, texts: Texts, customer: Customer | None = None) -> None:
    await query.answer(texts(customer.lang if customer is not None else "zh", "mk_refused_short"))


def get_router() -> Router:
    router = Router(name="marketer")
    desk = Router(name="marketer.desk")
    # Filters on the desk router: an update that fails them moves on to the refusal router below.
    desk.message.filter(is_marketer)
    desk.callback_query.filter(is_marketer)
    desk.include_router(wizard.get_router())  # first: /cancel and typed answers while in the wizard
    desk.include_router(campaigns.get_router())
    router.include_router(desk)
    refusal = Router(name="marketer.refusal")
    refusal.message.register(on_refused, Command("campaign", "campaigns"))
    refusal.callback_query.register(on_refused_button, WizCB.filter())
    router.include_router(refusal)
    return router
