"""`xianke eval …`: offline quality numbers printed as a table plus one JSON line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from bot.answers import answer_message, catalog_words
from core.repos import CatalogRepository
from nlp.dialogue import MessageClassifier
from recsys.catalog_io import load_shipped
from recsys.evaluate import (
    Answered,
    DevSetError,
    evaluate_side_by_side,
    load_pairing_labels,
    load_queries,
    score_pairing,
    score_set,
    split_halves,
)
from recsys.service import RecsysService
from recsys.simulate import simulate_orders, store_orders
from xianke.context import console, fail, get_app

app = typer.Typer(help="Evaluate recommendation and sentiment quality on labelled data.", no_args_is_help=True)
EVAL_START = date(2026, 3, 1)
DATA = Path(__file__).resolve().parents[2] / "recsys" / "data"
DEFAULT_DEV_SET = DATA / "dev_queries.jsonl"
DEFAULT_NEW_SET = DATA / "new_queries.jsonl"
DEFAULT_PAIRING_SET = DATA / "pairing_labels.jsonl"


def eval_service() -> RecsysService:
    """The engine on a fresh copy of the shipped catalog with the demo's pinned order history."""
    app = get_app()
    folder = app.settings.data_dir / "eval"
    path = folder / "eval.db"
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    store = app.open_store(path)
    catalog = CatalogRepository(store)
    load_shipped(catalog)
    # The demo's order history, pinned to fixed dates so seasons (and so pairings) never drift.
    store_orders(store, simulate_orders(catalog, n_users=300, days=60, seed=7, start=EVAL_START))
    return app.open_recsys(store, index_dir=folder / "index")


def eval_recsys(dev: Path, new: Path | None, k: int = 5) -> dict[str, dict[str, float]]:
    """The dialogue's answer (kind + top k) on the tuning half, the held-out half and the new set."""
    service = eval_service()
    classifier = MessageClassifier(service.embedder)
    words = catalog_words(service)

    def answer(query: str) -> Answered:
        service.embedder.clear_cache()  # latency includes embedding the query, as for a new customer
        got = answer_message(service, classifier, query, food_words=words, k=k)
        return Answered("shopping" if got.result is not None else got.kind, [i.slug for i in got.items])

    tune, held = split_halves(load_queries(dev))
    sets = {"tune half": tune, "held-out half": held}
    if new is not None:
        sets["new set"] = load_queries(new)
    return {name: score_set(queries, answer, k) for name, queries in sets.items()}


def eval_modes(queries: Path, k: int = 10) -> dict[str, dict[str, float]]:
    """Hybrid vs dense-only vs BM25-only (retrieval quality, no dialogue routing)."""
    service = eval_service()

    def ranker(mode: str) -> Callable[[str], list[str]]:
        def rank(query: str) -> list[str]:
            service.embedder.clear_cache()
            return [i.slug for i in service.recommend(query, k=k, mode=mode).items]

        return rank

    return evaluate_side_by_side(load_queries(queries), {mode: ranker(mode) for mode in ("hybrid", "dense", "bm25")})


def _table(title: str, results: dict[str, dict[str, float]]) -> None:
    table = Table(title=title)
    metrics = list(next(iter(results.values())))
    table.add_column("set")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for name, values in results.items():
        table.add_row(name, *(f"{values[m]:.4g}" for m in metrics))
    console.print(table)


@app.command("recsys")
def recsys_cmd(
    queries: Path = typer.Option(DEFAULT_DEV_SET, "--queries", help="JSONL dev set, split into tune/held-out halves (seed 12)."),
    new: Path = typer.Option(DEFAULT_NEW_SET, "--new", help="JSONL of new queries (with forbidden slugs and kinds)."),
    modes: bool = typer.Option(False, "--modes", help="Also compare hybrid / dense-only / BM25-only on the dev set."),
) -> None:
    """hit@5, precision@5, nDCG@5 and constraint violations: tune half, held-out half, new set."""
    for path in (queries, new):
        if not path.is_file():
            raise fail(f"no such file: {path}")
    try:
        results = eval_recsys(queries, new)
        mode_results = eval_modes(queries) if modes else None
    except DevSetError as exc:
        raise fail(str(exc)) from None
    _table("recsys: what the dialogue shows (top 5)", results)
    if mode_results:
        _table(f"retrieval modes on {queries.name}", mode_results)
    print(json.dumps({"sets": results, "modes": mode_results}, ensure_ascii=False))


@app.command("pairing")
def pairing_cmd(
    labels: Path = typer.Option(DEFAULT_PAIRING_SET, "--labels", help="JSONL: {\"ingredient\": slug, \"partners\": [slug, …]}"),
) -> None:
    """precision@5 of "X配什么" partners against a labelled set, beside popularity baselines."""
    if not labels.is_file():
        raise fail(f"no such file: {labels}")
    try:
        labelled = load_pairing_labels(labels)
    except DevSetError as exc:
        raise fail(str(exc)) from None
    model = eval_service().pairing
    df = Counter(s for lines in model.recipe_lines.values() for s in set(lines))
    popular = [s for s, _ in df.most_common()]
    main = [s for s in popular if s not in model.seasonings]
    tune, held = split_halves(labelled)

    def partners(x: str) -> list[str]:
        return [p.slug for p in model.pairings_for(x, k=6)]

    results = {
        "pairing model (main partners)": score_pairing(labelled, partners),
        "  … on the tuning half": score_pairing(tune, partners),
        "  … on the held-out half": score_pairing(held, partners),
        "baseline: most common ingredients": score_pairing(labelled, lambda x: popular[:6]),
        "baseline: most common, no seasonings": score_pairing(labelled, lambda x: main[:6]),
    }
    _table(f"pairing on {labels.name}", results)
    print(json.dumps(results, ensure_ascii=False))
