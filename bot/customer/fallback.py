"""Everything else, answered politely or ignored on purpose: unknown commands, media, edits, stale buttons."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.customer.send import reply_to
from bot.dialogue import Customer, DialogueService
from core.logging import log_event

log = logging.getLogger(__name__)


def media_kind(message: Message) -> str:
    if message.text is not None:
        return "empty"
    for kind in ("sticker", "voice", "photo", "video_note", "video", "animation", "audio", "document"):
        if getattr(message, kind, None):
            return kind
    return "other"


async def on_unknown_command(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, dialogue.unknown_command(customer))


async def on_non_text(message: Message, dialogue: DialogueService, customer: Customer) -> None:
    await reply_to(message, dialogue.non_text(customer, media_kind(message)))


async def on_edited(message: Message) -> None:
    """Edits are ignored on purpose: the original question was already answered."""
    log_event(log, "edited message ignored", chat_id=message.chat.id, message_id=message.message_id)


async def on_stale_button(query: CallbackQuery, dialogue: DialogueService, customer: Customer) -> None:
    log_event(log, "stale or forged callback", user_id=query.from_user.id, data=(query.data or "")[:70])
    answer = dialogue.stale(customer)
    await query.answer(answer.toast)


def get_router() -> Router:
    router = Router(name="customer.fallback")
    router.message.register(on_unknown_command, F.text.startswith("/"))
    router.message.register(on_non_text)
    router.edited_message.register(on_edited)
    router.callback_query.register(on_stale_button)
    return router
