"""Callback data of the marketer desk: one factory for every wizard button (a few ASCII bytes)."""

from __future__ import annotations

from typing import Literal

from aiogram.filters.callback_data import CallbackData

WizardStep = Literal["slug", "channel", "starts", "ends", "holdout", "coupon", "keywords", "confirm"]


class WizCB(CallbackData, prefix="mk"):
    """A button of the /campaign wizard. `step` must match the wizard's current step, so a button
    pressed on an older prompt (or by someone else in a group) is answered as stale, never applied."""

    step: WizardStep
    value: str
