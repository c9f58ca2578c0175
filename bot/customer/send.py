"""Turning dialogue `Reply`/`Answer` objects into Bot API calls."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message

from bot.keyboards import to_markup
from bot.replies import Answer, Reply
from core.logging import log_event

log = logging.getLogger(__name__)


async def send(bot: Bot, chat_id: int, replies: Sequence[Reply]) -> None:
    for reply in replies:
        await bot.send_message(
            chat_id, reply.text, parse_mode=reply.parse_mode, reply_markup=to_markup(reply.buttons)
        )


async def reply_to(message: Message, replies: Sequence[Reply]) -> None:
    for reply in replies:
        await message.answer(reply.text, parse_mode=reply.parse_mode, reply_markup=to_markup(reply.buttons))


async def answer_press(query: CallbackQuery, bot: Bot, answer: Answer) -> None:
    """Toast first (stops the button spinner), then edit in place or send new messages."""
    await query.answer(answer.toast, show_alert=answer.alert)
    chat_id = query.message.chat.id if query.message else query.from_user.id
    if answer.edit is not None:
        edit = answer.edit
        message = query.message
        try:
            if isinstance(message, Message):
                await message.edit_text(edit.text, parse_mode=edit.parse_mode, reply_markup=to_markup(edit.buttons))
            else:
                raise LookupError("message no longer accessible")
        except (TelegramBadRequest, LookupError) as exc:
            if "not modified" in str(exc):
                return
            log_event(log, "edit failed, sending anew", chat_id=chat_id, error=str(exc)[:120])
            await send(bot, chat_id, [edit])
    await send(bot, chat_id, answer.replies)
