"""邀请好友得券: /invite and the welcome's 🎁 button give a customer their personal share link, a
ready-to-forward card (with a QR code of the link) and a Telegram share button.

Joining through a link (`/start ref_<code>`), onboarding and the reward itself are handled by the
dialogue and the order import; this router only hands out links. Include it before the customer
router, whose fallback answers unknown commands.
"""

from __future__ import annotations

import io
import logging
from urllib.parse import urlencode

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot.callbacks import InviteCB
from bot.dialogue import Customer, DialogueService
from commerce.referrals import share_link
from core.domain import format_price
from core.logging import log_event

log = logging.getLogger(__name__)

SHARE_URL = "https://t.me/share/url"


def qr_png(url: str, *, scale: int = 8) -> bytes | None:
    """The link as a QR code (error correction M, standard quiet zone), or None if segno is missing."""
    try:
        import segno
    except ImportError:  # the card still works without a picture
        return None
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


async def send_invite(bot: Bot, dialogue: DialogueService, customer: Customer, chat_id: int, channel: str) -> str:
    """Two messages: the explanation with a share button, then the card to forward. Returns the link."""
    program = dialogue.referrals
    code = await dialogue.run(program.record_share, customer.id, channel)
    me = await bot.me()  # cached by aiogram after the first call; the running bot's name is authoritative
    username = me.username or program.rules.bot_username
    if not username:
        raise RuntimeError("the bot has no username, so t.me links cannot be built")
    link = share_link(username, code)
    t, lang, rules = dialogue.t, customer.lang, program.rules
    welcome = format_price(rules.welcome_cents)
    text = t(lang, "invite", link=link, reward=format_price(rules.reward_cents), welcome=welcome, cap=rules.daily_cap)
    card = t(lang, "invite_card", link=link, welcome=welcome)
    # Telegram's share sheet puts `url` first and `text` under it, so the text is the card minus the link.
    share = f"{SHARE_URL}?{urlencode({'url': link, 'text': card.replace(link, '').strip()})}"
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t(lang, "btn_share"), url=share)]])
    await bot.send_message(chat_id, text, reply_markup=markup)
    png = qr_png(link)
    if png is not None:
        await bot.send_photo(chat_id, BufferedInputFile(png, filename="xianke-invite.png"), caption=card)
    else:
        await bot.send_message(chat_id, card)
    log_event(log, "invite link shared", user_id=customer.id, channel=channel)
    return link


async def on_invite(message: Message, bot: Bot, dialogue: DialogueService, customer: Customer) -> None:
    await send_invite(bot, dialogue, customer, message.chat.id, "command")


async def on_invite_button(query: CallbackQuery, bot: Bot, dialogue: DialogueService, customer: Customer) -> None:
    await query.answer()
    chat_id = query.message.chat.id if query.message else customer.id
    await send_invite(bot, dialogue, customer, chat_id, "button")


def get_router() -> Router:
    router = Router(name="referral")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(on_invite, Command("invite"))
    router.callback_query.register(on_invite_button, InviteCB.filter())
    return router
