"""`xianke bench …`: measured speed and memory, printed as a table from one run."""

from __future__ import annotations

from collections.abc import Sequence

import typer
from rich.table import Table

from xianke.benchmarks import Row
from xianke.context import console, get_app

app = typer.Typer(help="Benchmarks: every figure comes from one run on this machine.", no_args_is_help=True)


def print_rows(title: str, rows: Sequence[Row]) -> None:
    table = Table(title=title)
    for column in ("metric", "value", "unit", "note"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in rows:
        table.add_row(row.metric, f"{row.value:,.2f}", row.unit, row.note)
    console.print(table)


@app.command("embed")
def embed(
    passages: int = typer.Option(256, min=8, help="How many passages to encode in the batched run."),
    queries: int = typer.Option(40, min=5, help="How many single queries to time."),
) -> None:
    """Texts/s for batched passages and ms per single query (cold and cached)."""
    from xianke.benchmarks import embed as embed_bench

    print_rows("embedding", embed_bench.run(get_app().embedder, passages, queries))
