"""Callback data of the consultation buttons (a few ASCII bytes each, far below Telegram's 64)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class EndCB(CallbackData, prefix="se"):
    """结束咨询: the customer ends their consultation themselves."""

    ticket: int


class RateCB(CallbackData, prefix="sr"):
    """A CSAT rating 1-5 for a closed ticket."""

    ticket: int
    score: int


class SkipCommentCB(CallbackData, prefix="sk"):
    """跳过: no comment after the rating."""

    ticket: int
