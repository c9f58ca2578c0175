"""The demand-forecast chart: recent daily sales and the forecast band for the items to stock first.

Drawn like the digest charts (core.charts): the shared CJK font registration, an Agg canvas without
pyplot (safe in a scheduler thread), Chinese titles and labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analytics.forecast import INTERVAL, MODEL, Forecast
from core.charts import chart_rc, drawable

HISTORY_COLOR = "#90a4ae"
FORECAST_COLOR = "#e65100"
CAMPAIGN_COLOR = "#fff3c4"


def forecast_chart(
    history: pd.DataFrame,
    forecasts: Mapping[str, Forecast],
    items: Sequence[str],
    path: Path,
    *,
    names: Mapping[str, str] | None = None,
    campaign: pd.Series | None = None,
    history_days: int = 42,
    title: str | None = None,
) -> Path:
    """One panel per item (at most 6): the last `history_days` of daily demand as bars, then the
    forecast mean with its band; promotion days shaded. Writes a PNG and returns its path."""
    items = list(items)[:6]
    path.parent.mkdir(parents=True, exist_ok=True)
    origin = _origin(forecasts, items)
    with matplotlib.rc_context(chart_rc()):
        rows = max(1, (len(items) + 1) // 2)
        fig = Figure(figsize=(11, 2.6 * rows + 0.8), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, 2, squeeze=False).ravel()
        horizon = len(forecasts[items[0]].mean) if items else 0
        heading = title or (f"鲜课需求预测｜{origin:%m月%d日} 起 {horizon} 天" if origin else "鲜课需求预测")
        fig.suptitle(drawable(heading), fontsize=14)
        if not items:
            axes[0].text(0.5, 0.5, "暂无可预测的商品", ha="center", va="center", transform=axes[0].transAxes)
        for ax, item in zip(axes, items, strict=False):
            name = (names or {}).get(item, item)
            _panel(ax, history[item].iloc[-history_days:], forecasts[item], name, campaign)
        for ax in axes[len(items) :] if items else axes:
            ax.set_axis_off()
        if items:
            handles, labels = _legend_entries(axes[: len(items)])
            fig.legend(
                handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9, frameon=False
            )
        fig.savefig(path, format="png")
    return path


def chart_items(plan: Sequence[Any], n: int = 6) -> list[str]:
    """The first items of a stock plan, half kits and half ingredients when both exist, so the
    chart shows what to pack and what to buy."""
    kits = [row.slug for row in plan if row.slug.startswith("kit/")]
    ingredients = [row.slug for row in plan if not row.slug.startswith("kit/")]
    half = n // 2
    chosen = kits[: max(half, n - len(ingredients))] + ingredients[: max(half, n - len(kits))]
    order = {row.slug: k for k, row in enumerate(plan)}
    return sorted(chosen[:n], key=lambda slug: (not slug.startswith("kit/"), order[slug]))


def _legend_entries(axes: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """One legend for the figure; a label only some panels have (促销日) still appears."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen.keys())


def _origin(forecasts: Mapping[str, Forecast], items: Sequence[str]) -> date | None:
    return forecasts[items[0]].mean.index[0].date() if items and len(forecasts[items[0]].mean) else None


def _panel(ax: Any, history: pd.Series, forecast: Forecast, name: str, campaign: pd.Series | None) -> None:
    x_hist = mdates.date2num(history.index.to_pydatetime())
    x_future = mdates.date2num(forecast.mean.index.to_pydatetime())
    if campaign is not None:
        shown = campaign[
            (campaign.index >= history.index.min()) & (campaign.index <= forecast.mean.index.max())
        ]
        for i, day in enumerate(shown[shown > 0].index):
            center = mdates.date2num(day.to_pydatetime())
            ax.axvspan(
                center - 0.5, center + 0.5, color=CAMPAIGN_COLOR, zorder=0, label="促销日" if i == 0 else None
            )
    ax.bar(x_hist, history.to_numpy(), width=0.8, color=HISTORY_COLOR, label="历史销量")
    ax.fill_between(
        x_future,
        forecast.low.to_numpy(),
        forecast.high.to_numpy(),
        step="mid",
        color=FORECAST_COLOR,
        alpha=0.18,
        label=f"{INTERVAL:.0%} 预测区间",
    )
    ax.plot(
        x_future, forecast.mean.to_numpy(), color=FORECAST_COLOR, marker="o", markersize=2.5, label="预测均值"
    )
    if len(x_future):
        ax.axvline(x_future[0] - 0.5, color="#546e7a", linestyle="--", linewidth=0.8)
    total, low, high = forecast.total()
    method = "" if forecast.method == MODEL else "（基线）"
    ax.set_title(
        drawable(f"{name[:18]}｜{len(forecast.mean)}天 ≈{total:.0f}（{low:.0f}–{high:.0f}）{method}"),
        fontsize=10,
    )
    ax.set_ylabel("份/天")
    ax.set_ylim(0, max([*history.to_numpy(), *forecast.high.to_numpy(), 1.0]) * 1.25)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=8))
    ax.grid(axis="y", alpha=0.3)
