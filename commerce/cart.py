"""The cart as pure data: priced lines, the coupon's effect, and the split into Telegram invoices.

Money is integers: fen for CNY, whole Stars for XTR. Physical goods (kits, ingredients) are paid
through a payment provider in CNY; courses are digital goods and follow Telegram's rule for them:
Telegram Stars (currency XTR, empty provider token, exactly one price line per invoice). A mixed
cart therefore becomes two invoices. Nothing here touches the store or Telegram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.repos.coupons import Redemption

MAX_QUANTITY = 99
MAX_LINES = 30
PHYSICAL_KINDS = frozenset({"kit", "ingredient"})
CNY, XTR = "CNY", "XTR"
# Used only when a course row has no stars_price of its own (catalogs imported before issue 14):
# roughly Telegram's Stars price in yuan, rounded up in the shop's favour of a whole Star.
STARS_PER_YUAN = 7
PERISHABLE_DAYS = 7  # ingredients that keep at most this long are held at pre-checkout
DELIVERY_FEE_CENTS = 800
FREE_DELIVERY_FROM_CENTS = 9900


def stars_for(price_cents: int, stars_price: int | None) -> int:
    """A course's Stars price: the catalog's, else the yuan price converted (never below one Star)."""
    if stars_price:
        return int(stars_price)
    return max(1, math.ceil(price_cents * STARS_PER_YUAN / 100))


@dataclass(frozen=True)
class CartLine:
    """One catalog item in the cart at today's price."""

    slug: str
    title: str
    quantity: int
    unit_cents: int
    unit_stars: int | None = None  # courses only

    @property
    def kind(self) -> str:
        return self.slug.split("/", 1)[0]

    @property
    def physical(self) -> bool:
        return self.kind in PHYSICAL_KINDS

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_cents

    def as_order_item(self) -> tuple[str, int, int]:
        return (self.slug, self.quantity, self.unit_cents)

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "quantity": self.quantity,
                "unit_cents": self.unit_cents, "unit_stars": self.unit_stars}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CartLine:
        return cls(str(data["slug"]), str(data["title"]), int(data["quantity"]), int(data["unit_cents"]),
                   None if data.get("unit_stars") is None else int(data["unit_stars"]))


@dataclass(frozen=True)
class CartTotals:
    lines: tuple[CartLine, ...]
    coupon: Redemption | None  # the coupon's verdict on these lines (None: no coupon applied)

    @property
    def items_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def discount_cents(self) -> int:
        return self.coupon.discount_cents if self.coupon is not None and self.coupon.ok else 0

    @property
    def total_cents(self) -> int:
        return max(0, self.items_cents - self.discount_cents)


@dataclass(frozen=True)
class InvoiceDraft:
    """One invoice to send: its currency, lines, and the coupon discount it carries (same unit)."""

    currency: str
    lines: tuple[CartLine, ...]
    items_total: int  # fen (CNY) or Stars (XTR)
    discount: int = 0
    coupon_code: str | None = None
    discount_cents: int = 0  # the coupon's value in fen, whichever currency it is taken off

    @property
    def total(self) -> int:
        return max(1, self.items_total - self.discount) if self.currency == XTR else self.items_total - self.discount

    @property
    def needs_delivery(self) -> bool:
        return any(line.physical for line in self.lines)


def coupon_currency(target_type: str, lines: Sequence[CartLine]) -> str | None:
    """Which invoice a coupon comes off: its target kind's; an 'any' coupon prefers the CNY invoice."""
    kinds = {line.kind for line in lines}
    if target_type == "course":
        return XTR if "course" in kinds else None
    if target_type in PHYSICAL_KINDS:
        return CNY if target_type in kinds else None
    if kinds & PHYSICAL_KINDS:
        return CNY
    return XTR if kinds else None


def lines_for(currency: str, lines: Iterable[CartLine]) -> tuple[CartLine, ...]:
    return tuple(line for line in lines if line.physical == (currency == CNY))


def split_invoices(lines: Sequence[CartLine], coupon: Redemption | None, coupon_target: str | None) -> list[InvoiceDraft]:
    """The cart as invoices: CNY for kits and ingredients, XTR for courses, the coupon on its target's.

    A coupon worth N fen off courses becomes Stars in proportion to the courses' yuan and Stars
    prices, rounded up (in the customer's favour); a Stars invoice never drops below one Star.
    """
    drafts: list[InvoiceDraft] = []
    target = coupon_currency(coupon_target, lines) if coupon is not None and coupon.ok and coupon_target else None
    for currency in (CNY, XTR):
        chosen = lines_for(currency, lines)
        if not chosen:
            continue
        if currency == CNY:
            total = sum(line.total_cents for line in chosen)
        else:
            total = sum(line.quantity * (line.unit_stars or 1) for line in chosen)
        discount, code, discount_cents = 0, None, 0
        if target == currency and coupon is not None:
            code, discount_cents = coupon.code, coupon.discount_cents
            if currency == CNY:
                discount = min(discount_cents, total)
            else:
                cents = sum(line.total_cents for line in chosen) or 1
                discount = min(total - 1, math.ceil(discount_cents * total / cents))
        drafts.append(InvoiceDraft(currency, chosen, total, discount, code, discount_cents))
    return drafts


# -- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOption:
    """A shipping option of the CNY invoice: a delivery slot for fresh goods, or plain courier."""

    option_id: str  # ≤ 64 bytes, stable: slot-YYYYMMDD-am|pm or courier
    day: str  # YYYY-MM-DD ('' for courier)
    part: str  # am, pm or courier
    fee_cents: int


def is_perishable(shelf_life_days: int | None) -> bool:
    return shelf_life_days is not None and shelf_life_days <= PERISHABLE_DAYS


def delivery_fee(goods_cents: int) -> int:
    return 0 if goods_cents >= FREE_DELIVERY_FROM_CENTS else DELIVERY_FEE_CENTS


def delivery_options(goods_cents: int, fresh: bool, today: datetime) -> list[DeliveryOption]:
    """Fresh kits and perishables come in a chosen half-day slot over the next two days; the rest by courier."""
    fee = delivery_fee(goods_cents)
    if not fresh:
        return [DeliveryOption("courier", "", "courier", fee)]
    options = []
    for ahead in (1, 2):
        day = (today + timedelta(days=ahead)).date()
        for part in ("am", "pm"):
            options.append(DeliveryOption(f"slot-{day:%Y%m%d}-{part}", day.isoformat(), part, fee))
    return options


def find_option(options: Iterable[DeliveryOption], option_id: str | None) -> DeliveryOption | None:
    return next((o for o in options if o.option_id == option_id), None)


@dataclass
class StockNeed:
    """Units of each ingredient a set of lines takes out of stock (a kit takes one of each of its items)."""

    units: dict[int, int] = field(default_factory=dict)

    def add(self, ingredient_id: int, quantity: int) -> None:
        self.units[ingredient_id] = self.units.get(ingredient_id, 0) + quantity
