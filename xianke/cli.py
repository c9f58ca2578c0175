"""`xianke` command line."""

from __future__ import annotations

import typer

from xianke.commands import (
    bench,
    campaign,
    catalog,
    chat,
    db,
    demo,
    digest,
    doctor,
    evaluate,
    forecast,
    ingest,
    jobs,
    models,
    orders,
    recommend,
    referrals,
    sentiment,
    serve,
    support,
)

app = typer.Typer(
    name="xianke",
    help="XianKe 鲜课 — chat commerce and social listening for a cooking school and fresh-food shop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")
app.add_typer(catalog.app, name="catalog")
app.add_typer(evaluate.app, name="eval")
evaluate.app.command("sentiment")(sentiment.eval_sentiment_cmd)
train_app = typer.Typer(help="Train models from CSV files (reproducible, seeded).", no_args_is_help=True)
train_app.command("sentiment")(sentiment.train_sentiment_cmd)
app.add_typer(train_app, name="train")
app.command("recommend")(recommend.recommend)
app.command("pair")(recommend.pair)
app.add_typer(jobs.app, name="jobs")
app.command("ingest")(ingest.ingest)
app.command("serve-ingest")(ingest.serve_ingest)
app.add_typer(campaign.app, name="campaign")
app.add_typer(orders.app, name="orders")
app.command("digest")(digest.digest)
app.add_typer(support.app, name="support")
app.add_typer(referrals.app, name="referrals")
app.command("serve")(serve.serve)
app.command("chat")(chat.chat)
app.command("forecast")(forecast.forecast)
app.command("doctor")(doctor.doctor)
app.command("demo")(demo.demo)


def main() -> None:
    app()
