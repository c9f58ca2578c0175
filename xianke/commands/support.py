"""`xianke support …`: consultation statistics (CSAT, response times) and canned replies."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from xianke.context import console, fail, get_app

app = typer.Typer(
    help="Live consultations (人工客服): CSAT and response-time statistics, canned replies for staff.",
    no_args_is_help=True,
)
canned_app = typer.Typer(help="Canned replies staff send in a ticket topic with /canned <key>.", no_args_is_help=True)
app.add_typer(canned_app, name="canned")


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


@app.command("stats")
def stats(
    days: int = typer.Option(30, "--days", min=1, max=3650, help="Tickets opened in the last N days."),
) -> None:
    """CSAT (mean, 1-5 distribution, share of 4-5 ratings), ticket counts, first-response and resolution
    time (median p50 and p90). The last line is the same as JSON, for scripts and dashboards."""
    from core.repos.tickets import TicketRepository

    result = TicketRepository(get_app().store).stats(days=days)
    table = Table(title=f"support, last {days} days")
    table.add_column("metric")
    table.add_column("value", justify="right")
    distribution = result.csat_distribution or {}
    rows = [
        ("tickets opened", str(result.opened)),
        ("closed / still open", f"{result.closed} / {result.open_now}"),
        ("never answered", str(result.unanswered)),
        ("rated", str(result.rated)),
        ("CSAT mean (1-5)", "—" if result.csat_mean is None else f"{result.csat_mean:.2f}"),
        ("CSAT satisfied (4-5)", "—" if result.csat_satisfied_pct is None else f"{result.csat_satisfied_pct:.1f}%"),
        ("ratings 1/2/3/4/5", " / ".join(str(distribution.get(k, 0)) for k in range(1, 6))),
        ("first response p50 / p90", f"{_minutes(result.first_response_p50_min)} / {_minutes(result.first_response_p90_min)}"),
        ("resolution p50 / p90", f"{_minutes(result.resolution_p50_min)} / {_minutes(result.resolution_p90_min)}"),
        ("delivery errors", str(result.delivery_errors)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(json.dumps({"days": days, **result.to_dict()}, ensure_ascii=False), soft_wrap=True, highlight=False)


@canned_app.command("add")
def canned_add(
    key: str = typer.Argument(..., help="Short key staff type after /canned, e.g. delivery_time (a-z 0-9 _ -)."),
    text: str = typer.Argument(..., help="The reply as the customer will read it; {name} becomes their first name."),
) -> None:
    """Add or replace a canned reply."""
    from core.repos.tickets import CannedReplyRepository

    try:
        row = CannedReplyRepository(get_app().store).set(key, text)
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"saved canned reply [bold]{row['key']}[/bold] ({len(row['text'])} characters)")


@canned_app.command("list")
def canned_list() -> None:
    """Every canned reply, by key."""
    from core.repos.tickets import CannedReplyRepository

    rows = CannedReplyRepository(get_app().store).list()
    if not rows:
        console.print("no canned replies yet: add one with `xianke support canned add KEY TEXT`")
        return
    table = Table(title="canned replies")
    for column in ("key", "text", "updated"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["key"], row["text"][:80], row["updated_at"][:16])
    console.print(table)


@canned_app.command("remove")
def canned_remove(key: str = typer.Argument(..., help="The key to delete.")) -> None:
    """Delete a canned reply."""
    from core.repos.tickets import CannedReplyRepository

    if not CannedReplyRepository(get_app().store).delete(key):
        raise fail(f"no canned reply {key!r}; see `xianke support canned list`")
    console.print(f"deleted canned reply {key}")
