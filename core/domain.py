"""Domain types shared by every room. Catalog records validate at the edge (imports, CLI)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

ALLERGENS = ("花生", "坚果", "乳制品", "鸡蛋", "大豆", "小麦/麸质", "鱼类", "甲壳类", "贝类", "芝麻")
LEVELS = ("beginner", "intermediate", "advanced")
LEVEL_ZH = {"beginner": "入门", "intermediate": "进阶", "advanced": "高阶"}


class ItemKind(StrEnum):
    COURSE = "course"
    INGREDIENT = "ingredient"
    KIT = "kit"
    RECIPE = "recipe"


class EventKind(StrEnum):
    VIEW = "view"
    CLICK = "click"
    LIKE = "like"
    DISLIKE = "dislike"
    NOT_INTERESTED = "not_interested"
    PURCHASE = "purchase"
    REDEEM = "redeem"
    COUPON_ISSUED = "coupon_issued"
    START_DEEPLINK = "start_deeplink"
    QUERY = "query"
    # Campaigns (issue 7): every coupon state change and every broadcast delivery is an event.
    COUPON_EXPIRED = "coupon_expired"
    BROADCAST_SENT = "broadcast_sent"
    # Support (issues 4-5): a customer asked for a human.
    HANDOFF_REQUESTED = "handoff_requested"
    # Referrals (推荐有奖): link shared, friend joined through it, both rewarded, or a reward refused.
    REFERRAL_SHARED = "referral_shared"
    REFERRAL_JOINED = "referral_joined"
    REFERRAL_REWARDED = "referral_rewarded"
    REFERRAL_REFUSED = "referral_refused"
    # Checkout in the chat (issue 14): the funnel after a view — into the cart, invoice sent, and an
    # order request handed to support when payments are not configured.
    ADD_TO_CART = "add_to_cart"
    CHECKOUT = "checkout"
    ORDER_REQUESTED = "order_requested"


def slug_kind(slug: str) -> ItemKind:
    return ItemKind(slug.split("/", 1)[0])


def _slug(prefix: str) -> Any:
    return Annotated[str, StringConstraints(pattern=rf"^{prefix}/[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80)]


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Cents = Annotated[int, Field(ge=0, le=10_000_000)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Line(_Record):
    ingredient: _slug("ingredient")  # type: ignore[valid-type]
    quantity: Annotated[str, StringConstraints(max_length=40)] = ""


class Course(_Record):
    slug: _slug("course")  # type: ignore[valid-type]
    title: Text
    summary: LongText = ""
    cuisine: Annotated[str, StringConstraints(max_length=40)] = ""
    level: Literal["beginner", "intermediate", "advanced"] = "beginner"
    diet_tags: list[Text] = Field(default_factory=list)
    lecturer: Annotated[str, StringConstraints(max_length=80)] = ""
    price_cents: Cents = 0
    duration_min: Annotated[int, Field(ge=0, le=100_000)] = 0
    outline: list[Text] = Field(default_factory=list)
    tags: list[Text] = Field(default_factory=list)
    stars_price: Annotated[int, Field(ge=1, le=1_000_000)] | None = None  # Telegram Stars (XTR) price


class Ingredient(_Record):
    slug: _slug("ingredient")  # type: ignore[valid-type]
    name: Text
    category: Annotated[str, StringConstraints(max_length=40)] = ""
    unit: Annotated[str, StringConstraints(max_length=40)] = "份"
    price_cents: Cents = 0
    stock: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    season: list[Annotated[int, Field(ge=1, le=12)]] = Field(default_factory=lambda: list(range(1, 13)))
    allergens: list[str] = Field(default_factory=list)
    aliases: list[Text] = Field(default_factory=list)
    shelf_life_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    description: LongText = ""

    @field_validator("allergens")
    @classmethod
    def _known_allergens(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in ALLERGENS]
        if unknown:
            raise ValueError(f"unknown allergen {unknown[0]!r}; use one of {', '.join(ALLERGENS)}")
        return value


class Recipe(_Record):
    slug: _slug("recipe")  # type: ignore[valid-type]
    title: Text
    course: _slug("course") | None = None  # type: ignore[valid-type]
    cuisine: Annotated[str, StringConstraints(max_length=40)] = ""
    diet_tags: list[Text] = Field(default_factory=list)
    summary: LongText = ""
    ingredients: list[Line] = Field(min_length=1)


class Kit(_Record):
    slug: _slug("kit")  # type: ignore[valid-type]
    title: Text
    course: _slug("course") | None = None  # type: ignore[valid-type]
    price_cents: Cents = 0
    servings: Annotated[int, Field(ge=1, le=100)] = 2
    description: LongText = ""
    diet_tags: list[Text] = Field(default_factory=list)
    items: list[Line] = Field(min_length=1)


@dataclass
class Profile:
    """What onboarding asks; drives hard filters (allergens, budget, diet, level) and soft boosts."""

    diet: list[str] = field(default_factory=list)
    taste: list[str] = field(default_factory=list)
    level: str | None = None
    allergens: list[str] = field(default_factory=list)
    budget_cents: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Profile:
        data = data or {}
        known = {k: data[k] for k in ("diet", "taste", "level", "allergens", "budget_cents") if k in data}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return {
            "diet": self.diet,
            "taste": self.taste,
            "level": self.level,
            "allergens": self.allergens,
            "budget_cents": self.budget_cents,
        }


CAMPAIGN_SLUG_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def format_price(cents: int) -> str:
    yuan, rest = divmod(int(cents), 100)
    return f"¥{yuan}" if rest == 0 else f"¥{yuan}.{rest:02d}"
