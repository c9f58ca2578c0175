"""Callback-data factories. Every packed value is a few ASCII bytes, far below Telegram's 64.

Items are referenced by their catalog document id (store row id + kind base, e.g. 1000000012),
never by slug or query text; pagination state (query, shown items) lives in FSM data.
"""

from __future__ import annotations

from typing import Literal

from aiogram.filters.callback_data import CallbackData

MAX_CALLBACK_BYTES = 64

CardAction = Literal["like", "dis", "ni", "kit", "cpn", "buy"]
OnboardingStep = Literal["diet", "taste", "level", "allergens", "budget"]


class CardCB(CallbackData, prefix="c"):
    """A button under a recommendation card: 👍 👎 不感兴趣 看食材包 领券 买食材包."""

    action: CardAction
    item: int


class MoreCB(CallbackData, prefix="m"):
    """更多: the next page of the answer with this serial number (older serials are stale)."""

    qid: int


class OnbCB(CallbackData, prefix="o"):
    """An onboarding answer: option index, -1 skip, -2 done (multi-select steps)."""

    step: OnboardingStep
    value: int


class ProfileCB(CallbackData, prefix="p"):
    """/profile: edit one field ("all" restarts onboarding)."""

    field: Literal["all", "diet", "taste", "level", "allergens", "budget"]


class QuickCB(CallbackData, prefix="q"):
    """Quick replies to a clarifying question or the welcome's 先随便看看."""

    topic: Literal["course", "ingredient", "kit", "popular"]


class HandoffCB(CallbackData, prefix="h"):
    """人工客服. The support issue plugs the real consultation in behind this same callback."""

    reason: Literal["complaint", "refund", "delivery", "handoff", "unclear", "order"]


class SaveCB(CallbackData, prefix="sv"):
    """💾 记住: save the allergens/diets the last message stated (kept in FSM data) to the profile."""

    qid: int


class LangCB(CallbackData, prefix="l"):
    lang: Literal["zh", "en"]


CartAction = Literal["add", "inc", "dec", "rm", "view", "pay", "cpn", "use", "nocpn", "req", "demo"]


class CartCB(CallbackData, prefix="k"):
    """The cart (issue 14): `item` is a catalog document id for line actions, a coupon id for `use`,
    a checkout id for the console's `demo` payment, 0 otherwise."""

    action: CartAction
    item: int = 0


class OrderCB(CallbackData, prefix="od"):
    """/orders: ask support to cancel an unshipped order."""

    action: Literal["cancel"]
    order: int


class InviteCB(CallbackData, prefix="inv"):
    """邀请好友得券: the customer's personal referral link and share card (bot/referral.py)."""


FACTORIES: tuple[type[CallbackData], ...] = (
    CardCB, MoreCB, OnbCB, ProfileCB, QuickCB, HandoffCB, LangCB, SaveCB, CartCB, OrderCB,
)
_BY_PREFIX = {factory.__prefix__: factory for factory in FACTORIES}


def parse(data: str | None) -> CallbackData | None:
    """The callback object behind a packed string, or None for stale/forged/oversized data."""
    if not data or len(data.encode("utf-8", "surrogatepass")) > MAX_CALLBACK_BYTES:
        return None
    factory = _BY_PREFIX.get(data.split(":", 1)[0])
    if factory is None:
        return None
    try:
        return factory.unpack(data)
    except (TypeError, ValueError):
        return None
