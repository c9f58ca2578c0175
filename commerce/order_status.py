"""Order status after payment: the customer's /orders, staff moving an order along, cancellation.

Kits and ingredients go paid → packed → shipped → delivered; course orders are `enrolled` at once.
An order that was not shipped yet may be cancelled (through support, who refund it); a payment that
could not be fulfilled waits as `refund_due` until staff mark it `refunded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.repos.coupons import iso_utc
from core.store import Store, loads

STATUSES = ("paid", "packed", "shipped", "delivered", "enrolled", "cancelled", "refund_due", "refunded")
NEXT_STATUSES: dict[str, frozenset[str]] = {
    "paid": frozenset({"packed", "shipped", "cancelled"}),
    "packed": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "refund_due": frozenset({"refunded"}),
    "cancelled": frozenset({"refunded"}),
}
CANCELLABLE = frozenset({"paid", "packed"})
NOT_SALES = ("cancelled", "refund_due", "refunded")  # orders that are no conversion


@dataclass(frozen=True)
class OrderView:
    order_id: int
    external_id: str
    status: str
    created_at: str
    total_cents: int
    currency: str
    paid_amount: int | None
    lines: list[dict[str, Any]]
    delivery: dict[str, Any]
    user_id: int | None = None

    @property
    def cancellable(self) -> bool:
        return self.status in CANCELLABLE and any(not line["slug"].startswith("course/") for line in self.lines)


@dataclass(frozen=True)
class StatusChange:
    ok: bool
    order: OrderView | None
    before: str | None = None
    problem: str | None = None  # unknown_order, unknown_status, not_allowed


def _title_sql() -> str:
    return """coalesce((SELECT title FROM kits WHERE slug = oi.item_slug),
                       (SELECT title FROM courses WHERE slug = oi.item_slug),
                       (SELECT name FROM ingredients WHERE slug = oi.item_slug), oi.item_slug)"""


def order_view(store: Store, order_id: int) -> OrderView | None:
    rows = store.query("SELECT * FROM orders WHERE id = ?", [order_id])
    if not rows:
        return None
    row = rows[0]
    lines = store.query(
        f"SELECT oi.item_slug AS slug, oi.quantity, oi.price_cents, {_title_sql()} AS title"
        " FROM order_items oi WHERE oi.order_id = ? ORDER BY oi.item_slug",
        [order_id],
    )
    return OrderView(row["id"], row["external_id"], row["status"], row["created_at"], row["total_cents"],
                     row["currency"], row["paid_amount"], lines, loads(row["delivery"], {}) or {}, row["user_id"])


def orders_for(store: Store, user_id: int, limit: int = 10) -> list[OrderView]:
    """The customer's latest orders (bot and imported), newest first."""
    ids = store.query("SELECT id FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                      [user_id, limit])
    return [view for r in ids if (view := order_view(store, r["id"])) is not None]


def set_status(store: Store, order_id: int, status: str, now: datetime | None = None) -> StatusChange:
    """Move an order along its allowed path (staff's `/order <id> shipped`)."""
    if status not in STATUSES:
        return StatusChange(False, None, problem="unknown_status")
    with store.transaction() as db:
        view = order_view(store, order_id)
        if view is None:
            return StatusChange(False, None, problem="unknown_order")
        if status not in NEXT_STATUSES.get(view.status, frozenset()):
            return StatusChange(False, view, view.status, "not_allowed")
        db.execute("UPDATE orders SET status = ?, status_at = ? WHERE id = ? AND status = ?",
                   [status, iso_utc(now or datetime.now(UTC)), order_id, view.status])
    return StatusChange(True, order_view(store, order_id), view.status)
