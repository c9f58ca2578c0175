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
    CORRECTION_WEIGHT,
    SentimentDataError,
    evaluate_sentiment,
    parse_label,
    read_labelled_csv,
    train_sentiment,
)
from xianke.context import console, fail, get_app


def _corrections() -> tuple[list[tuple[str, str]], list[str]]:
    """Marketers' corrections from the database: (positive/negative pairs to learn from, every
    corrected text). One label per post (the latest wins when marketers disagree); neutral ones cannot
    train a two-class model, but their posts still stay out of validation and test."""
    from core.repos.corrections import CorrectionRepository

    repo = CorrectionRepository(get_app().store)
    latest = repo.latest()
    usable = [(r["text"], r["label"]) for r in latest if r["text"] and parse_label(r["label"]) is not None]
    console.print(
        f"corrections: {len(usable)} used (each weighted ×{CORRECTION_WEIGHT}), "
        f"{len(latest) - len(usable)} neutral kept out of evaluation only"
    )
    return usable, repo.corrected_texts()


def _corrected_texts_if_any() -> list[str]:
    """Corrected posts' texts, read only when the database already exists (eval must not create one)."""
    from core.repos.corrections import CorrectionRepository

    app = get_app()
    if not app.settings.database_path.is_file():
        return []
    return CorrectionRepository(app.store).corrected_texts()


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
        False,
        "--with-corrections",
        help="Also learn from marketers' 判断有误 corrections stored in the database (each counts "
        f"{CORRECTION_WEIGHT}×; corrected posts never appear in validation or test).",
    ),
) -> None:
    """Train the embedded sentiment model (a few minutes on 2 CPU cores) and print its scores."""
    app = get_app()
    target = out or app.settings.models_dir / "sentiment"
    try:
        read_labelled_csv(data)  # fail on a bad file before reading the database or the encoder
        corrections, corrected = _corrections() if with_corrections else (None, [])
        metrics = train_sentiment(data, app.embedder, target, corrections=corrections, exclude_texts=corrected)
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
    keep_corrected: bool = typer.Option(
        False,
        "--keep-corrected",
        help="Also score rows that repeat posts marketers corrected (left out by default: they are training data).",
    ),
) -> None:
    """Score the configured sentiment model (XIANKE_SENTIMENT_MODEL) on a labelled CSV.

    Prints a table, then one JSON line (accuracy, macro_f1, per_domain_accuracy, posts_per_s, …).
    """
    app = get_app()
    try:
        read_labelled_csv(data)  # fail on a bad file before loading any model
        model = load_sentiment(app.settings.sentiment_model, app.embedder, app.settings.models_dir)
        corrected = [] if keep_corrected else _corrected_texts_if_any()
        metrics = evaluate_sentiment(model, data, app.embedder, limit=limit, exclude_texts=corrected)
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
    if metrics.get("excluded_corrections"):
        table.add_row("已排除的纠正帖子 / corrected posts left out", str(metrics["excluded_corrections"]))
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
