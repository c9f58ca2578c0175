"""`xianke db …`: migrations and integrity."""

from __future__ import annotations

import typer

from xianke.context import console, fail, get_app

app = typer.Typer(help="Database: apply migrations, check integrity.", no_args_is_help=True)


@app.command("migrate")
def migrate() -> None:
    """Apply pending schema migrations (also done automatically at start-up)."""
    store = get_app().store
    console.print(f"schema versions: {store.applied_versions()} ({store.path})")


@app.command("doctor")
def doctor() -> None:
    """Verify the SQLite file: integrity check and foreign keys."""
    problems = get_app().store.integrity_problems()
    if problems:
        for problem in problems[:50]:
            console.print(f"[red]•[/red] {problem}")
        raise fail(f"{len(problems)} integrity problem(s)", code=1)
    console.print("database ok")
