"""core.notify.Notifier over an aiogram Bot: how jobs reach Telegram without importing the bot.

Waiting out 429s and retrying idempotent calls is the Bot session's job (bot/retry.py, installed
by bot.runners.make_bot); this adapter only translates what is left into the delivery contract.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile

from bot.keyboards import to_markup
from core.notify import DeliveryError, DeliveryUnknown, Outgoing, RecipientBlocked, RetryLater

CAPTION_LIMIT = 1024


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
                    reply_markup=to_markup(message.buttons),
                    message_thread_id=message.thread_id,
                )
            else:
                sent = await self.bot.send_message(
                    message.chat_id,
                    message.text,
                    parse_mode=message.parse_mode,
                    reply_markup=to_markup(message.buttons),
                    message_thread_id=message.thread_id,
                )
        except TelegramRetryAfter as exc:  # longer than the session waits: not sent
            raise RetryLater(float(exc.retry_after), exc.message) from exc
        except TelegramForbiddenError as exc:
            raise RecipientBlocked(exc.message) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            # The answer was lost or Telegram failed mid-request: it may have been delivered already.
            raise DeliveryUnknown(str(exc)) from exc
        except TelegramBadRequest as exc:
            raise DeliveryError(exc.message) from exc
        return sent.message_id
