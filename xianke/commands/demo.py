"""`xianke demo`: the main job on embedded defaults, end to end, in the terminal."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bot.reasons import note, render_reasons
from core.domain import format_price
from core.repos import CatalogRepository
from nlp import encoder_build
from recsys.catalog_io import load_shipped
from recsys.simulate import simulate_orders, store_orders
from xianke.commands.chat import DEMO_SCRIPT, talk
from xianke.context import console, get_app

DEMO_QUERIES = ["零基础想学几道家常川菜", "减脂期间适合吃什么，想要低脂高蛋白的", "周末给孩子烤个生日蛋糕，预算两百以内"]
DEMO_PAIRINGS = ["牛腩配什么", "三文鱼搭配什么"]


def _fresh_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def demo(
    db: Path | None = typer.Option(None, "--db", help="SQLite file for the demo (default: <data_dir>/demo.db, recreated)."),
) -> None:
    """Build the encoder, create the database, load the catalog, simulate orders and answer Chinese queries."""
    app = get_app()
    console.rule("1. 内置中文编码器 / embedded encoder")
    console.print(f"multilingual-e5-small ready at {encoder_build.build(app.settings.models_dir)}")

    console.rule("2. 数据库、示例目录与模拟订单 / database, catalog, simulated orders")
    path = db or app.settings.data_dir / "demo.db"
    _fresh_db(path)
    store = app.open_store(path)
    catalog = CatalogRepository(store)
    counts = load_shipped(catalog)
    orders = store_orders(store, simulate_orders(catalog, n_users=300, days=60, seed=7))
    console.print(f"{path}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f", simulated orders {orders}")
    service = app.open_recsys(store, index_dir=app.settings.data_dir / "demo-index")

    console.rule("3. 混合检索推荐 / hybrid recommendations (FAISS + BM25 + RRF)")
    for query in DEMO_QUERIES:
        result = service.recommend(query, k=4)
        table = Table(title=f"问：{query}", caption=note(result.message, result.message_params, result.constraints, "zh") or f"意图：{' / '.join(result.parsed.labels) if result.parsed else '-'}")
        for column in ("#", "类型", "标题", "价格", "为什么推荐"):
            table.add_column(column)
        for rank, item in enumerate(result.items, 1):
            table.add_row(str(rank), item.kind, item.title, format_price(item.price_cents), render_reasons(item.reasons, "zh"))
        console.print(table)

    console.rule("4. 食材搭配 / pairings mined from orders and recipes")
    for question in DEMO_PAIRINGS:
        answer = service.pair(question)
        if answer is None:
            console.print(f"{question}: 未找到该食材")
            continue
        names = "、".join(p.name for p in answer.pairings[:5])
        kit = f"；推荐食材包：{answer.kit['title']}" if answer.kit else ""
        console.print(f"[bold]{question}[/bold] → {names}{kit}")
        for recipe in answer.recipes[:2]:
            console.print(f"   · {recipe}")

    console.rule("5. 控制台对话 / the bot's dialogue in the terminal (same services as Telegram)")
    talk(app, path, lines=DEMO_SCRIPT, index_dir=app.settings.data_dir / "demo-index")

    console.rule("6. 模拟一周：扫码活动、对照组、订单、舆情与周报 / a simulated campaign week, then the digest")
    from xianke.demo_week import run_demo_week  # its own database, so the demo week is the same every run

    run_demo_week(app, console, path.with_name("demo-week.db"))
