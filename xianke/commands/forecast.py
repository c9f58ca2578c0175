"""`xianke forecast`: what to stock for the next two weeks, per kit and key fresh ingredient."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import typer
from rich.table import Table

from core.settings import Settings
from xianke.context import console, fail, get_app


def forecast(
    horizon: int = typer.Option(14, "--horizon", min=7, max=28, help="Days to forecast (7–28)."),
    top: int = typer.Option(
        15, "--top", min=1, max=200, help="Rows in the table: the items to act on first."
    ),
    chart: Path | None = typer.Option(
        None, "--chart", help="PNG to write (default: <data_dir>/charts/forecast-<first day>.png)."
    ),
    backtest: bool = typer.Option(
        False, "--backtest", help="Also replay the last weeks: MAPE/sMAPE of the model vs last week's sales."
    ),
    db: Path | None = typer.Option(
        None, "--db", help="SQLite file (default: the app database), e.g. var/demo.db."
    ),
) -> None:
    """Forecast daily demand per kit and key fresh ingredient, compare it with stock and say what to
    buy or pack; the chart shows recent sales and the forecast band. Needs order history (try
    `xianke demo` first)."""
    from analytics import forecast as fc  # statsmodels/matplotlib load only when the command runs
    from analytics.forecast_chart import chart_items, forecast_chart

    app = get_app()
    if db is not None and not db.is_file():
        raise fail(
            f"找不到数据库文件 {db}（运行 `xianke demo` 会生成 var/demo.db）/ no such database file", code=2
        )
    store = app.open_store(db) if db else app.store
    if not store.scalar("SELECT count(*) FROM orders"):
        raise fail(
            f"数据库 {store.path} 里还没有订单，无法预测需求。先导入订单，或运行 `xianke demo` 生成演示数据"
            "（再用 --db var/demo.db 指向它）。/ no orders yet: import orders or run `xianke demo`.",
            code=1,
        )
    run = fc.run_forecast(store, horizon=horizon, zone=app.settings.zone)
    if run is None:
        raise fail(
            "订单里没有食材包或生鲜食材的销量，无法预测。/ no kit or fresh-ingredient sales to forecast.",
            code=1,
        )
    console.print(_table(run, top))
    path = forecast_chart(
        run.inputs.demand,
        run.forecasts,
        chart_items(run.plan),
        chart or _default_chart(app.settings, run.origin),
        names=run.names,
        campaign=run.inputs.campaign,
    )
    console.print(f"图表 / chart: {path}")
    summary: dict[str, Any] = {
        "origin": f"{run.origin:%Y-%m-%d}",
        "horizon": horizon,
        "items": len(run.forecasts),
        "baseline_items": sum(f.method != fc.MODEL for f in run.forecasts.values()),
        "chart": str(path),
        "top": [row.to_json() for row in run.plan[:top]],
    }
    if backtest:
        result = fc.backtest(run.inputs, horizon=horizon)
        console.print(_backtest_table(result))
        summary["backtest"] = result
    print(json.dumps(summary, ensure_ascii=False))


def _default_chart(settings: Settings, origin: Any) -> Path:
    return settings.data_dir / "charts" / f"forecast-{origin:%Y%m%d}.png"


def _table(run: Any, top: int) -> Table:
    table = Table(title=f"备货建议：{run.origin:%Y-%m-%d} 起 {run.horizon} 天（区间 80%）")
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("商品", "left"),
        ("7天需求", "right"),
        (f"{run.horizon}天需求", "right"),
        ("区间", "right"),
        ("库存", "right"),
        ("保质期", "right"),
        ("建议", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for row in run.plan[:top]:
        note = f"[dim]（{row.note}）[/dim]" if row.note else ""
        table.add_row(
            row.name,
            f"{row.demand_7:.1f}",
            f"{row.demand_14:.1f}",
            f"{row.low_14:.0f}–{row.high_14:.0f}",
            "按需组装" if row.stock is None else str(row.stock),
            f"{row.shelf_life_days}天" if row.shelf_life_days else "-",
            row.suggestion + note,
        )
    return table


GRAIN_ZH = {"score": "各商品按备货粒度", "daily": "商品×日", "weekly": "商品×周", "total": "品类日合计"}
GROUP_ZH = {"kit": "食材包", "ingredient": "生鲜食材", "all": "全部"}


def _backtest_table(result: dict[str, Any]) -> Table:
    origins = "、".join(result["origins"]) or "无（历史太短）"
    table = Table(title=f"回测：预测起点 {origins}，每次 {result['horizon']} 天；模型 vs 上周同日（基线）")
    for column in ("品类", "口径", "模型 MAPE", "基线 MAPE", "模型 sMAPE", "基线 sMAPE"):
        table.add_column(column, justify="left" if column in ("品类", "口径") else "right")
    for group, summary in result["groups"].items():
        for grain in ("score", "total", "weekly", "daily"):
            if grain not in summary:
                continue
            model, naive = summary[grain]["model"], summary[grain]["naive"]
            smape = f"{model['smape']:.1f}%"
            table.add_row(
                GROUP_ZH.get(group, group),
                GRAIN_ZH[grain],
                f"{model['mape']:.1f}%",
                f"{naive['mape']:.1f}%",
                f"[green]{smape}[/green]" if model["smape"] < naive["smape"] else smape,
                f"{naive['smape']:.1f}%",
            )
    return table
