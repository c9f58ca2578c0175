"""/mydata (everything we store, as a JSON file) and /forget (asks once, then deletes or anonymises).

The confirmation button carries a one-time nonce that /forget keeps in FSM data, so a forged or old
"yes" cannot erase anyone's data without the question having just been asked. After forgetting,
nothing about the customer is written again in this update: no event, no FSM state.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any, Literal

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.customer.send import answer_press
from bot.dialogue import Customer, DialogueService
from bot.keyboards import to_markup
from bot.replies import Answer, Button, Reply
from core.logging import log_event
from core.privacy import export_user, forget_user

log = logging.getLogger(__name__)

NONCE_KEY = "forget_nonce"
# Salted author hash of a Telegram user as the listening ingest stores it (wired by xianke: the bot
# cannot import jobs); None when listening is not configured in this process.
AuthorHasher = Callable[[int], list[str]]


class ForgetCB(CallbackData, prefix="fg"):
    action: Literal["yes", "no"]
    nonce: str


def _author_hashes(author_hasher: AuthorHasher | None, user_id: int) -> list[str]:
    return list(author_hasher(user_id)) if author_hasher is not None else []


def _drop_in_memory(dialogue: DialogueService, user_id: int) -> None:
    """Live personalisation signals are kept in memory between refits: drop this customer's."""
    personal = getattr(getattr(dialogue, "recsys", None), "personal", None)
    forget = getattr(personal, "forget", None)
    if callable(forget):
        forget(user_id)
        return
    for name in ("_live", "_live_disliked", "_user_index"):
        mapping = getattr(personal, name, None)
        if isinstance(mapping, dict):
            mapping.pop(user_id, None)


async def on_mydata(
    message: Message, bot: Bot, dialogue: DialogueService, customer: Customer,
    author_hasher: AuthorHasher | None = None,
) -> None:
    t = dialogue.t
    hashes = _author_hashes(author_hasher, customer.id)
    try:
        document = await dialogue.run(export_user, dialogue.users.store, customer.id, author_hashes=hashes)
    except Exception as exc:  # a failed export must still get an answer; the trace goes to the log
        log_event(log, "data export failed", logging.ERROR, user_id=customer.id, error=repr(exc)[:300])
        await message.answer(t(customer.lang, "mydata_failed"))
        return
    payload = json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    await bot.send_document(
        message.chat.id,
        BufferedInputFile(payload, filename=f"xianke-mydata-{customer.id}.json"),
        caption=t(customer.lang, "mydata_caption"),
    )
    log_event(log, "data exported", user_id=customer.id, bytes=len(payload))


async def on_forget(message: Message, dialogue: DialogueService, customer: Customer, state: FSMContext) -> None:
    t = dialogue.t
    nonce = secrets.token_hex(6)
    await state.update_data({NONCE_KEY: nonce})
    buttons = [[
        Button(t(customer.lang, "btn_forget_yes"), ForgetCB(action="yes", nonce=nonce).pack()),
        Button(t(customer.lang, "btn_forget_no"), ForgetCB(action="no", nonce=nonce).pack()),
    ]]
    await message.answer(t(customer.lang, "forget_confirm"), reply_markup=to_markup(buttons))


async def on_forget_button(
    query: CallbackQuery, callback_data: ForgetCB, bot: Bot, dialogue: DialogueService, customer: Customer,
    state: FSMContext, author_hasher: AuthorHasher | None = None,
) -> None:
    t = dialogue.t
    data: dict[str, Any] = await state.get_data()
    expected = data.get(NONCE_KEY)
    if not expected or not secrets.compare_digest(str(expected), callback_data.nonce):
        await query.answer(t(customer.lang, "forget_stale"), show_alert=True)
        return
    if callback_data.action == "no":
        await state.update_data({NONCE_KEY: None})
        await answer_press(query, bot, Answer(edit=Reply(t(customer.lang, "forget_cancelled"))))
        return
    hashes = _author_hashes(author_hasher, customer.id)

    def forget() -> dict[str, int]:
        report = forget_user(dialogue.users.store, customer.id, author_hashes=hashes)
        _drop_in_memory(dialogue, customer.id)
        return report.counts

    counts = await dialogue.run(forget)
    # Counts only: the log must not become the place where the forgotten person lives on.
    log_event(log, "customer forgotten", **{k: v for k, v in counts.items() if v})
    await answer_press(query, bot, Answer(edit=Reply(t(customer.lang, "forget_done"))))


def get_router() -> Router:
    router = Router(name="customer.privacy")
    router.message.register(on_mydata, Command("mydata"))
    router.message.register(on_forget, Command("forget"))
    router.callback_query.register(on_forget_button, ForgetCB.filter())
    return router
