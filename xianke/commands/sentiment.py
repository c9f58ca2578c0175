"""`xianke train sentiment` / `xianke eval sentiment`: build and check the sentiment model.

Plain functions, registered by the CLI's composition (xianke/cli.py):
    train_app.command("sentiment")(train_sentiment_cmd)
    eval_app.command("sentiment")(eval_sentiment_cmd)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nlp.embedder import EmbedderError
from nlp.sentiment import SentimentArtifactError, SentimentModelError, load_sentiment
from nlp.sentiment_train import (
    SentimentDataError,
    evaluate_sentiment,
    parse_label,
    read_labelled_csv,
    train_sentiment,
)
from xianke.context import console, fail, get_app

CORRECTIONS_SQL = """SELECT p.text_norm AS text, c.label AS label
                     FROM sentiment_corrections c JOIN posts p ON p.id = c.post_id
                     ORDER BY c.id"""


def _corrections() -> list[tuple[str, str]]:
    """Marketers' positive/negative corrections from the database (neutral ones cannot train a
    two-class model and are skipped)."""
    rows = get_app().store.query(CORRECTIONS_SQL)
    usable = [(r["text"], r["label"]) for r in rows if parse_label(r["label"]) is not None]
    console.print(f"corrections: {len(usable)} used, {len(rows) - len(usable)} neutral skipped")
    return usable


def train_sentiment_cmd(
    data: Path = typer.Option(
        ..., "--data", help="UTF-8 CSV with columns domain,label,text (label 1 = positive, 0 = negative)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Where to write the model (default <data_dir>/models/sentiment, which the app then prefers "
        "over the packaged model).",
    ),
    with_corrections: bool = typer.Option(
        False, "--with-corrections", help="Also learn from marketers' corrections stored in the database."
    ),
) -> None:
    """Train the embedded sentiment model (a few minutes on 2 CPU cores) and print its scores."""
    app = get_app()
    target = out or app.settings.models_dir / "sentiment"
    try:
        read_labelled_csv(data)  # fail on a bad file before reading the database or the encoder
        corrections = _corrections() if with_corrections else None
        metrics = train_sentiment(data, app.embedder, target, corrections=corrections)
    except (SentimentDataError, EmbedderError) as exc:
        raise fail(str(exc)) from None
    _print_training(metrics, target)
    chosen = metrics["methods"][metrics["chosen"]]["test"]
    print(json.dumps({"out": str(target), "chosen": metrics["chosen"], **chosen}, ensure_ascii=False))


def eval_sentiment_cmd(
    data: Path = typer.Option(..., "--data", help="UTF-8 CSV with columns label,text (domain optional)."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Score a fixed random sample of this many rows instead of all."
    ),
) -> None:
    """Score the configured sentiment model (XIANKE_SENTIMENT_MODEL) on a labelled CSV.

    Prints a table, then one JSON line (accuracy, macro_f1, per_domain_accuracy, posts_per_s, …).
    """
    app = get_app()
    try:
        read_labelled_csv(data)  # fail on a bad file before loading any model
        model = load_sentiment(app.settings.sentiment_model, app.embedder, app.settings.models_dir)
        metrics = evaluate_sentiment(model, data, app.embedder, limit=limit)
    except (SentimentDataError, SentimentArtifactError, SentimentModelError, EmbedderError) as exc:
        raise fail(str(exc)) from None
    _print_evaluation(metrics, data)
    print(json.dumps(metrics, ensure_ascii=False))


def _print_evaluation(metrics: dict[str, Any], data: Path) -> None:
    table = Table(title=f"情感模型评估 / sentiment: {metrics['model']} on {data.name} ({metrics['n']} posts)")
    table.add_column("指标 / metric")
    table.add_column("值 / value", justify="right")
    table.add_row("准确率 / accuracy", f"{metrics['accuracy']:.4f}")
    table.add_row("宏平均F1 / macro-F1", f"{metrics['macro_f1']:.4f}")
    for domain, accuracy in metrics["per_domain_accuracy"].items():
        table.add_row(f"  {domain} accuracy", f"{accuracy:.4f}")
    table.add_row("中性占比 / neutral rate", f"{metrics['neutral_rate']:.1%}")
    table.add_row("非中性准确率 / accuracy when not neutral", f"{metrics['polar_accuracy']:.4f}")
    table.add_row("速度 / posts per second", f"{metrics['posts_per_s']:.1f}")
    console.print(table)


def _print_training(metrics: dict[str, Any], target: Path) -> None:
    table = Table(title=f"sentiment training (seed {metrics['split']['seed']}) → {target}")
    for column in ("method", "val acc", "val macro-F1", "test acc", "test macro-F1"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, m in metrics["methods"].items():
        label = f"{name} ← shipped" if name == metrics["chosen"] else name
        table.add_row(
            label,
            f"{m['validation']['accuracy']:.4f}",
            f"{m['validation']['macro_f1']:.4f}",
            f"{m['test']['accuracy']:.4f}",
            f"{m['test']['macro_f1']:.4f}",
        )
    console.print(table)
    band = metrics["neutral_band"]
    console.print(
        f"neutral band: ({band['low']}, {band['high']}); test {band['test']['neutral_rate']:.1%} neutral; "
        f"{metrics['artifact_bytes'] / 1e6:.1f} MB; {metrics['train_seconds']} s"
    )
