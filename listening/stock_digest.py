"""备货建议 (issue 9), the weekly digest's stock section: analytics.forecast's plan rendered for marketers."""

from __future__ import annotations

import html

from analytics.forecast import StockRow, run_forecast
from core.store import Store
from listening.digest_period import Period, Section


def stock_section(store: Store, period: Period, *, top: int = 5) -> Section:
    """备货建议 for the weekly digest: the items to buy or pack first for the two weeks after the
    period, from the data up to its end."""
    run = run_forecast(store, today=period.end.astimezone(period.zone).date(), zone=period.zone)
    if run is None:
        return Section("stock", "备货建议", ["还没有订单数据，无法预测需求。"], {"items": []})
    act = [row for row in run.plan if row.order > 0][:top] or run.plan[:top]
    lines = [f"未来 {run.horizon} 天（{run.origin:%m-%d} 起）优先备货："]
    lines += [_digest_line(row) for row in act]
    data = {
        "origin": f"{run.origin:%Y-%m-%d}",
        "horizon": run.horizon,
        "items": [row.to_json() for row in act],
    }
    return Section("stock", "备货建议", lines, data)


def _digest_line(row: StockRow) -> str:
    stock = "" if row.stock is None else f"，库存 {row.stock}"
    band = f"{row.low_14:.0f}–{row.high_14:.0f}"
    return (
        f"• {html.escape(row.name)}：7天约 {row.demand_7:.0f}，14天约 {row.demand_14:.0f}（{band}）"
        f"{stock} → {html.escape(row.suggestion)}"
    )
