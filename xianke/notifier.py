"""core.notify.Notifier over an aiogram Bot: how jobs reach Telegram without importing the bot."""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from core.notify import DeliveryError, Outgoing, RecipientBlocked, RetryLater

CAPTION_LIMIT = 1024


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    rows = [
        [InlineKeyboardButton(text=b.label, callback_data=b.callback_data, url=b.url) for b in row]
        for row in message.buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


class AiogramNotifier:
    def __init__(self, bot: Bot):
        self.bot = bot

    async def send(self, message: Outgoing) -> int:
        try:
            if message.photo is not None:
                photo = BufferedInputFile(message.photo.read_bytes(), filename=message.photo.name)
                sent = await self.bot.send_photo(
                    message.chat_id,
                    photo,
                    caption=message.text[:CAPTION_LIMIT],
                    parse_mode=message.parse_mode,
                    reply_markup=_markup(message),
                    message_thread_id=message.thread_id,
                )
            else:
                sent = await self.bot.send_message(
                    message.chat_id,
                    message.text,
                    parse_mode=message.parse_mode,
                    reply_markup=_markup(message),
                    message_thread_id=message.thread_id,
                )
        except TelegramRetryAfter as exc:
            raise RetryLater(float(exc.retry_after), exc.message) from exc
        except TelegramForbiddenError as exc:
            raise RecipientBlocked(exc.message) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise RetryLater(1.0, str(exc)) from exc
        except TelegramBadRequest as exc:
            raise DeliveryError(exc.message) from exc
        return sent.message_id
