"""`xianke eval …`: offline quality numbers printed as a table plus one JSON line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from core.repos import CatalogRepository
from recsys.catalog_io import load_shipped
from recsys.evaluate import DevSetError, evaluate_side_by_side, load_queries
from recsys.simulate import simulate_orders, store_orders
from xianke.context import console, fail, get_app

app = typer.Typer(help="Evaluate recommendation and sentiment quality on labelled data.", no_args_is_help=True)
EVAL_START = date(2026, 3, 1)
DEFAULT_DEV_SET = Path(__file__).resolve().parents[2] / "recsys" / "data" / "dev_queries.jsonl"


def eval_recsys(queries: Path, k: int = 10) -> dict[str, dict[str, float]]:
    """Hybrid vs dense-only vs BM25-only on a fresh copy of the shipped catalog (no personal history)."""
    app = get_app()
    folder = app.settings.data_dir / "eval"
    path = folder / "eval.db"
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    labelled = load_queries(queries)
    store = app.open_store(path)
    catalog = CatalogRepository(store)
    load_shipped(catalog)
    # The demo's order history, pinned to fixed dates so seasons (and so pairings) never drift.
    store_orders(store, simulate_orders(catalog, n_users=300, days=60, seed=7, start=EVAL_START))
    service = app.open_recsys(store, index_dir=folder / "index")

    def ranker(mode: str) -> Callable[[str], list[str]]:
        def rank(query: str) -> list[str]:
            service.embedder.clear_cache()  # latency includes embedding the query, as for a new customer
            return [i.slug for i in service.recommend(query, k=k, mode=mode).items]

        return rank

    return evaluate_side_by_side(labelled, {mode: ranker(mode) for mode in ("hybrid", "dense", "bm25")})


@app.command("recsys")
def recsys_cmd(
    queries: Path = typer.Option(DEFAULT_DEV_SET, "--queries", help="JSONL: {\"query\": …, \"relevant\": [slug, …]}"),
) -> None:
    """recall@5, recall@10, MRR, nDCG@10 and latency for hybrid, dense-only and BM25-only."""
    if not queries.is_file():
        raise fail(f"no such file: {queries}")
    try:
        results = eval_recsys(queries)
    except DevSetError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"recsys on {queries.name}")
    metrics = list(next(iter(results.values())))
    table.add_column("mode")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for mode, values in results.items():
        table.add_row(mode, *(f"{values[m]:.4g}" for m in metrics))
    console.print(table)
    print(json.dumps(results, ensure_ascii=False))
