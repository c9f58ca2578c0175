"""`xianke bench …`: measured speed and memory, printed as a table from one run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from rich.table import Table

from xianke.benchmarks import Row
from xianke.context import console, fail, get_app

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


@app.command("recsys")
def recsys(
    sizes: str = typer.Option("1000,10000,100000", help="Comma-separated synthetic catalog sizes."),
) -> None:
    """p50/p95 of one recommendation (embedding, retrieval, ranking, rendering) and memory by catalog size."""
    from xianke.benchmarks import recsys as recsys_bench

    try:
        parsed = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise fail("--sizes takes whole numbers separated by commas, e.g. 1000,10000") from None
    if not parsed or min(parsed) < 10 or max(parsed) > 1_000_000:
        raise fail("--sizes must be between 10 and 1,000,000")
    service = get_app().recsys
    print_rows("recommendation", recsys_bench.run(service.docs, service.embedder, parsed))


@app.command("analyze")
def analyze(posts: int = typer.Option(512, min=32, max=20_000, help="How many synthetic posts to run.")) -> None:
    """Posts/s for the whole listening pipeline next to the raw embedding rate, from one run."""
    from nlp.sentiment import load_sentiment
    from xianke.benchmarks import analyze as analyze_bench

    app = get_app()
    model = load_sentiment(app.settings.sentiment_model, app.embedder, app.settings.models_dir)
    print_rows("listening pipeline", analyze_bench.run(app.embedder, model, posts))



def _register_bot_bench() -> None:
    from xianke.benchmarks import bot as bot_bench

    app.command("bot")(bot_bench.bench_bot)


_register_bot_bench()


@app.command("all")
def bench_all(
    quick: bool = typer.Option(False, "--quick", help="Small workloads (catalogs of 1k and 5k items) to try the command."),
    output: Path = typer.Option(Path("docs/benchmarks.md"), "--output", "-o", help="Where to write the Markdown report."),
) -> None:
    """Embedding, recommendation latency by catalog size (1k/10k/100k), bot updates/s, analysis posts/s and
    peak RSS — all from ONE process run — written to docs/benchmarks.md and printed."""
    from rich.markdown import Markdown

    from xianke.benchmarks.report import Sizes, run_all

    report = run_all(get_app(), Sizes.quick() if quick else Sizes(), progress=lambda t: console.print(f"[bold]▶ {t}[/bold]"))
    text = report.markdown()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(Markdown(text))
    console.print(f"written to {output}")
    if report.errors:
        raise fail(f"{len(report.errors)} section(s) failed: " + "; ".join(report.errors), code=1)
