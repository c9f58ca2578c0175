"""判断有误: a marketer corrects a post's sentiment from a digest or an alert.

Digests and alerts (jobs) carry one `sfix:<post_id>` button per listed post. Pressing it shows the
post with 正面 / 中性 / 负面 / 取消; the choice is stored by `CorrectionRepository` (one label per
marketer and post; pressing again changes it) and later trains the sentiment model — never grades it.

Only marketers may correct: the workflow data `marketer_config` (bot.marketer.access.MarketerConfig,
built by the composition root from XIANKE_MARKETER_CHAT_IDS / XIANKE_ADMIN_USER_IDS) must allow the
chat and the person; without it everyone is refused (fail closed). Include this router before the
marketer desk and the customer router: the customer fallback answers every unknown button as stale.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery

from bot.customer.send import answer_press
from bot.dialogue import Customer, DialogueService
from bot.replies import Answer, Button, Reply
from bot.texts import Html, Texts
from core.logging import log_event
from core.repos.corrections import (
    CANCEL,
    FIX_PREFIX,
    CorrectionError,
    CorrectionRepository,
    fix_callback,
    parse_fix_callback,
)

log = logging.getLogger(__name__)

QUOTE_CHARS = 200


def _quote(text: str) -> str:
    flat = " ".join((text or "").split())
    flat = flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 1] + "…"
    return "「" + html.escape(flat, quote=False) + "」"


def _model_label(t: Texts, lang: str, post: dict[str, Any]) -> str:
    sentiment = post.get("sentiment")
    label = t(lang, f"sfix_{sentiment}") if sentiment in ("positive", "neutral", "negative") else t(lang, "sfix_unanalysed")
    score = post.get("sentiment_score")
    return f"{label}（{score:.2f}）" if isinstance(score, int | float) else label


def allowed(query: CallbackQuery, marketer_config: Any) -> bool:
    chat = query.message.chat if query.message is not None else None
    return marketer_config is not None and bool(marketer_config.allows(chat, query.from_user))


async def on_fix(
    query: CallbackQuery,
    bot: Bot,
    dialogue: DialogueService,
    texts: Texts,
    customer: Customer | None = None,
    marketer_config: Any = None,
) -> None:
    lang = customer.lang if customer is not None else "zh"
    parsed = parse_fix_callback(query.data)
    if parsed is None:
        await query.answer(texts(lang, "stale_button"))
        return
    if not allowed(query, marketer_config):
        log_event(log, "sentiment correction refused", user_id=query.from_user.id, data=(query.data or "")[:40])
        await query.answer(texts(lang, "sfix_denied"), show_alert=True)
        return
    post_id, label = parsed
    repo = CorrectionRepository(dialogue.users.store)
    if label == CANCEL:
        await answer_press(query, bot, Answer(edit=Reply(texts(lang, "sfix_cancelled"))))
        return
    post = await dialogue.run(repo.post, post_id)
    if post is None:
        await query.answer(texts(lang, "sfix_gone"), show_alert=True)
        return
    quote = Html(_quote(post["text"]))
    if label is None:  # 判断有误 under a digest or alert: ask for the right label in a new message
        rows = [
            [Button(texts(lang, f"sfix_{name}"), fix_callback(post_id, name)) for name in ("positive", "neutral", "negative")],
            [Button(texts(lang, "sfix_cancel"), fix_callback(post_id, CANCEL))],
        ]
        ask = texts(lang, "sfix_ask", quote=quote, model=_model_label(texts, lang, post))
        await answer_press(query, bot, Answer(replies=[Reply(ask, rows)]))
        return
    try:
        await dialogue.run(repo.add, post_id, label, query.from_user.id)
    except CorrectionError:
        await query.answer(texts(lang, "sfix_gone"), show_alert=True)
        return
    log_event(log, "sentiment corrected", post_id=post_id, label=label, marketer_id=query.from_user.id,
              model_label=post.get("sentiment"))
    done = texts(lang, "sfix_done", label=texts(lang, f"sfix_{label}"))
    await answer_press(query, bot, Answer(toast=texts(lang, "sfix_toast"), edit=Reply(f"{quote}\n{done}")))


def get_router() -> Router:
    router = Router(name="marketer.feedback")
    router.callback_query.register(on_fix, F.data.startswith(f"{FIX_PREFIX}:"))
    return router
