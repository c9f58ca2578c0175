"""`xianke jobs …`: run a scheduled job now, list schedules and last runs, or run the scheduler."""

from __future__ import annotations

import signal
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from xianke.context import console, fail, get_app

if TYPE_CHECKING:
    from jobs.registry import Outbox

app = typer.Typer(
    help="Scheduled jobs (ingest, analyze, topics …): run one now, list next runs, or start the scheduler.",
    no_args_is_help=True,
)


def make_runner(outbox: Outbox | None = None):  # -> jobs.scheduler.JobRunner (imported lazily)
    """The composition root's runner: each job gets a fresh store; models load once, on first use.
    `outbox` (notifier, run_async) defaults to a Telegram notifier on its own loop when a token is set;
    `xianke serve` passes ones bound to the running bot instead."""
    from jobs.scheduler import JobRunner

    xk = get_app()

    @cache
    def sentiment() -> Any:
        from nlp.sentiment import load_sentiment

        return load_sentiment(xk.settings.sentiment_model, xk.embedder, xk.settings.models_dir)

    if outbox is None:
        from xianke.notify_wiring import cli_job_outbox

        outbox = cli_job_outbox(xk)
    return JobRunner(
        xk.settings, xk.open_store, get_embedder=lambda: xk.embedder, get_sentiment=sentiment, outbox=outbox
    )


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Job name, e.g. ingest, analyze, topics (see `xianke jobs list`)."),
) -> None:
    """Run one job now, with a progress bar; it is recorded in the job history like a scheduled run."""
    from jobs.registry import JOBS

    if name not in JOBS:
        raise fail(f"unknown job {name!r}; choose one of: {', '.join(sorted(JOBS))}")
    runner = make_runner()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"{name}: {stage}", total=total)
            progress.update(tasks[stage], completed=done, total=total)

        result = runner.run(name, progress=report)
    if result.status != "ok":
        raise fail(f"job {name} failed after {result.duration_s:.1f}s: {result.error}", code=1)
    counts = ", ".join(f"{k}={v}" for k, v in result.counts.items()) or "nothing to do"
    console.print(f"{name}: ok in {result.duration_s:.1f}s — {counts}")


@app.command("list")
def list_jobs() -> None:
    """Each job's schedule, next run (from the persistent job store) and last run."""
    from jobs.registry import JOBS
    from jobs.scheduler import last_runs, next_runs

    xk = get_app()
    store = xk.store
    upcoming, latest = next_runs(store), last_runs(store)
    table = Table(title="jobs")
    for column in ("job", "schedule", "next run", "last run", "result"):
        table.add_column(column)
    for name, spec in sorted(JOBS.items()):
        if name in upcoming:
            when = upcoming[name]
            next_run = when.astimezone(xk.settings.zone).strftime("%m-%d %H:%M") if when else "paused"
        else:
            next_run = "not scheduled yet"
        last = latest.get(name)
        table.add_row(
            name,
            describe_trigger(spec.make_trigger(xk.settings)),
            next_run,
            _local(last["started_at"], xk.settings.zone) if last else "never",
            _result(last) if last else "",
        )
    console.print(table)
    for name, spec in sorted(JOBS.items()):
        console.print(f"[bold]{name}[/bold]: {spec.description}")
    if not upcoming:
        console.print("next runs appear once the scheduler has started (`xianke jobs start`)")


def describe_trigger(trigger: Any) -> str:
    interval = getattr(trigger, "interval", None)
    if interval is None:
        return str(trigger)
    minutes = int(interval.total_seconds() // 60)
    return f"every {minutes // 60} h" if minutes and minutes % 60 == 0 else f"every {minutes} min"


def _local(stamp: str, zone: Any) -> str:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(zone).strftime("%m-%d %H:%M")


def _result(run: dict[str, Any]) -> str:
    took = f" {run['duration_s']:.1f}s" if run["duration_s"] is not None else ""
    if run["status"] != "ok":
        return f"{run['status']}{took} {(run['error'] or '')[:80]}"
    counts = " ".join(f"{k}={v}" for k, v in run["counts"].items() if v)
    return f"ok{took} {counts}".strip()


@app.command("start")
def start() -> None:
    """Run the scheduler in the foreground until Ctrl-C (jobs persist in the database between restarts)."""
    from jobs.scheduler import build_scheduler

    xk = get_app()
    scheduler = build_scheduler(xk.settings, make_runner())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.start()
    for job in scheduler.get_jobs():
        console.print(f"{job.id}: next run {job.next_run_time:%Y-%m-%d %H:%M %Z}")
    console.print("scheduler running; Ctrl-C stops")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)
