"""`xianke ingest FILE|DIR` and `xianke serve-ingest`: social posts into the listening store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from listening.ingest import FileIngestor, FileReport, PostIngestor, drop_files, load_author_salt
from xianke.context import console, err_console, fail, get_app


def ingest(
    path: Path = typer.Argument(
        ...,
        help="A .jsonl/.json/.csv file, or a drop folder of them. Rows need source, external_id, text, "
        "created_at (ISO 8601 or epoch seconds); author, url, lang are optional.",
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Leave files where they are instead of moving them to processed/."
    ),
    batch_size: int = typer.Option(
        200, min=1, max=10_000, help="Rows written (and checkpointed) per transaction."
    ),
) -> None:
    """Import posts. Safe to repeat: duplicates are skipped and an interrupted file resumes where it stopped.

    Done files move to <folder>/processed/; rows that could not be used are listed with the reason in
    <folder>/rejects/<file>.rejects.jsonl.
    """
    if not path.exists():
        raise fail(f"{path} does not exist: give a .jsonl/.json/.csv file or a folder of them")
    files = drop_files(path) if path.is_dir() else [path]
    if not files:
        console.print(f"nothing to ingest in {path}")
        return
    app = get_app()
    ingestor = FileIngestor(
        PostIngestor(app.store, load_author_salt(app.settings), zone=app.settings.zone),
        batch_size=batch_size,
        move=not keep,
    )
    results = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for file in files:
            task = progress.add_task(file.name, total=None)

            def advance(done: int, total: int, task: int = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                results.append(ingestor.ingest_file(file, on_batch=advance))
            except OSError as exc:
                raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
            progress.remove_task(task)

    table = Table(title="ingest")
    for column in ("file", "added", "duplicates", "near dup.", "rejected", "spam", "note"):
        table.add_column(column, justify="left" if column in ("file", "note") else "right")
    for result in results:
        r = result.report
        note = result.skipped or (f"rejected: {result.file_rejected}" if result.file_rejected else "")
        if result.resumed_from:
            note = f"resumed at row {result.resumed_from} {note}".strip()
        table.add_row(
            result.path.name,
            str(r.added),
            str(r.duplicates),
            str(r.near_duplicates),
            str(len(r.rejected)),
            str(len(r.spam)),
            note,
        )
    console.print(table)
    print_rejections(results)
    raise typer.Exit(exit_code(results))


def print_rejections(results: list[FileReport], limit: int = 20) -> None:
    """The reasons themselves on the console (the rejects file keeps all of them)."""
    for result in results:
        if result.file_rejected:
            where = result.moved_to or result.path
            console.print(f"[red]✗[/red] {escape(result.path.name)}: {escape(result.file_rejected)} → {escape(str(where))}")
        rows = sorted(result.report.rejected, key=lambda r: r.line)
        for rejection in rows[:limit]:
            reasons = escape("; ".join(rejection.reasons))
            console.print(f"[red]✗[/red] {escape(result.path.name)}:{rejection.line}: {reasons}")
        if len(rows) > limit:
            console.print(f"  … {len(rows) - limit} more")
        if result.rejects_path is not None:
            console.print(f"rejected rows of {result.path.name} (with reasons): {result.rejects_path}")


def exit_code(results: list[FileReport]) -> int:
    """0 nothing rejected · 1 some rows or files rejected · 2 something was rejected and nothing stored.

    The summary goes to stderr so scripts see it next to the exit code."""
    rejected = sum(len(r.report.rejected) for r in results)
    bad_files = sum(r.file_rejected is not None for r in results)
    stored = sum(r.report.added + r.report.duplicates + r.report.near_duplicates for r in results)
    if not rejected and not bad_files:
        return 0
    err_console.print(
        f"{rejected} row(s) and {bad_files} file(s) rejected, {stored} row(s) stored or already known "
        "/ 有数据被拒绝，原因见上"
    )
    return 1 if stored else 2


def serve_ingest(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8090, min=1, max=65535, help="TCP port."),
    max_kb: int = typer.Option(1024, min=1, max=64 * 1024, help="Largest accepted request body, in KiB."),
) -> None:
    """Run the HTTP ingest endpoint: POST /v1/posts with `Authorization: Bearer $XIANKE_INGEST_TOKEN`."""
    from aiohttp import web

    from web.ingest import make_ingest_app

    app = get_app()
    token = app.settings.ingest_token
    if token is None or not token.get_secret_value():
        raise fail("set XIANKE_INGEST_TOKEN (a long random string) before starting the ingest endpoint")
    web_app = make_ingest_app(
        app.open_store,
        token.get_secret_value(),
        max_kb * 1024,
        salt=load_author_salt(app.settings),
        zone=app.settings.zone,
    )
    console.print(f"ingest endpoint on http://{host}:{port}/v1/posts (health: /healthz); Ctrl-C stops")
    web.run_app(web_app, host=host, port=port, print=None)
