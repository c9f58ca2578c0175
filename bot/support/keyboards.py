"""Consultation buttons as framework-free rows (bot.keyboards.to_markup turns them into markup)."""

from __future__ import annotations

from bot.keyboards import Rows
from bot.replies import Button
from bot.support.callbacks import EndCB, RateCB, SkipCommentCB
from bot.texts import Texts

STAR = "⭐"


def stars(score: int) -> str:
    return STAR * max(0, min(score, 5))


def end_chat(t: Texts, lang: str, ticket: int) -> Rows:
    return [[Button(t(lang, "sup_btn_end"), EndCB(ticket=ticket).pack())]]


def rating(ticket: int) -> Rows:
    # One row of five: the number carries the meaning in both languages, the star makes it scannable.
    return [[Button(f"{score}{STAR}", RateCB(ticket=ticket, score=score).pack()) for score in range(1, 6)]]


def skip_comment(t: Texts, lang: str, ticket: int) -> Rows:
    return [[Button(t(lang, "sup_btn_skip"), SkipCommentCB(ticket=ticket).pack())]]
