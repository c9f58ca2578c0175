"""下单转化 in the marketer digest: view → add to cart → checkout → paid in the chat, with the orders
the shop imported next to the bot's own (each order is stored once per reference, so an order the
shop also exports is not counted twice).

Registered by listening/digest.py, which imports this module only when a digest is built. A daily
digest leaves the section out when nobody shopped in either period.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.repos.coupons import iso_utc
from core.store import Store
from listening.digest import Period, Section

TITLE = "下单转化"
VIEW_KINDS = ("view", "query", "click")
NOT_SALES = ("cancelled", "refund_due", "refunded")


@dataclass(frozen=True)
class CheckoutFunnel:
    viewed: int
    carted: int
    checked_out: int
    paid: int
    bot_orders: int
    bot_revenue_cents: int
    imported_orders: int
    imported_revenue_cents: int

    @property
    def empty(self) -> bool:
        return not (self.carted or self.checked_out or self.bot_orders or self.imported_orders)


def checkout_funnel(store: Store, start: str, end: str) -> CheckoutFunnel:
    """Distinct customers at each step in [start, end) and the period's orders by where they were paid."""

    def users(kinds: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(kinds))
        return int(store.scalar(
            f"SELECT count(DISTINCT user_id) FROM events WHERE kind IN ({marks}) AND created_at >= ? AND created_at < ?",
            [*kinds, start, end],
        ) or 0)

    marks = ",".join("?" * len(NOT_SALES))
    rows = store.query(
        f"""SELECT source = 'bot' AS bot, count(*) AS n, count(DISTINCT user_id) AS buyers,
                   coalesce(sum(total_cents), 0) AS revenue
            FROM orders WHERE created_at >= ? AND created_at < ? AND status NOT IN ({marks}) GROUP BY source = 'bot'""",
        [start, end, *NOT_SALES],
    )
    by = {bool(r["bot"]): r for r in rows}
    bot, shop = by.get(True, {}), by.get(False, {})
    return CheckoutFunnel(
        users(VIEW_KINDS), users(("add_to_cart",)), users(("checkout",)), int(bot.get("buyers", 0)),
        int(bot.get("n", 0)), int(bot.get("revenue", 0)), int(shop.get("n", 0)), int(shop.get("revenue", 0)),
    )


def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:.0f}%" if whole else "—"


def funnel_lines(f: CheckoutFunnel) -> list[str]:
    return [
        f"浏览 <b>{f.viewed}</b> 人 → 加购 {f.carted}（{_pct(f.carted, f.viewed)}）→ 去结算 {f.checked_out}"
        f"（{_pct(f.checked_out, f.carted)}）→ 支付 <b>{f.paid}</b>（{_pct(f.paid, f.checked_out)}）",
        f"机器人内支付订单 {f.bot_orders} 笔 ¥{f.bot_revenue_cents / 100:,.2f}；"
        f"商城导入订单 {f.imported_orders} 笔 ¥{f.imported_revenue_cents / 100:,.2f}",
    ]


def checkout_section(store: Store, period: Period) -> Section | None:
    now = checkout_funnel(store, iso_utc(period.start), iso_utc(period.end))
    before = checkout_funnel(store, iso_utc(period.prev_start), iso_utc(period.prev_end))
    if now.empty and before.empty and period.kind == "daily":
        return None
    lines = funnel_lines(now)
    if not before.empty:
        lines.append(f"{period.versus_zh}：支付 {now.paid - before.paid:+d} 人，"
                     f"机器人订单 {now.bot_orders - before.bot_orders:+d} 笔")
    return Section("checkout", TITLE, lines, {"now": now.__dict__, "before": before.__dict__})
