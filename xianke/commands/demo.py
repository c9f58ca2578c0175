"""`xianke demo`: the main job on embedded defaults, end to end, in the terminal."""

from __future__ import annotations

import typer
from rich.table import Table

from core.repos import CatalogRepository
from nlp import encoder_build
from recsys.catalog_io import load_shipped
from xianke.context import console, get_app

DEMO_QUERIES = ["零基础想学几道家常川菜", "减脂期间适合吃什么，想要低脂高蛋白的", "周末给孩子烤个生日蛋糕"]


def demo(
    db: str = typer.Option("", "--db", help="SQLite file for the demo (default: <data_dir>/demo.db, recreated)."),
) -> None:
    """Build the encoder, create the database, load the catalog and answer Chinese queries."""
    app = get_app()
    console.rule("1. 内置中文编码器 / embedded encoder")
    folder = encoder_build.build(app.settings.models_dir)
    console.print(f"multilingual-e5-small ready at {folder}")

    console.rule("2. 数据库与示例目录 / database and catalog")
    path = app.settings.data_dir / "demo.db" if not db else __import__("pathlib").Path(db)
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    store = app.open_store(path)
    counts = load_shipped(CatalogRepository(store))
    console.print(f"{path}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    console.rule("3. 语义检索 / answers by embedding similarity")
    repo = CatalogRepository(store)
    items = [(c["slug"], c["title"], f"{c['title']}。{c['summary']}") for c in repo.courses()]
    vectors = app.embedder.embed_passages([text for _, _, text in items], progress=True)
    for query in DEMO_QUERIES:
        scores = vectors @ app.embedder.embed_query(query)
        table = Table(title=f"问：{query}")
        for column in ("#", "slug", "title", "cosine"):
            table.add_column(column)
        for rank, index in enumerate(scores.argsort()[::-1][:3], start=1):
            slug, title, _ = items[index]
            table.add_row(str(rank), slug, title, f"{scores[index]:.3f}")
        console.print(table)
