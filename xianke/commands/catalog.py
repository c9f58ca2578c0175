"""`xianke catalog …`: import and export the course / ingredient / kit catalog."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from core.repos import CatalogRepository
from recsys.catalog_io import CatalogImportError, export_csv, export_json, import_catalog, shipped_catalog_dir
from recsys.documents import build_documents, tag_contradictions
from xianke.context import console, fail, get_app

app = typer.Typer(help="Catalog: import/export courses, ingredients, recipes and kits (JSON or CSV).", no_args_is_help=True)


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="A .json or .csv file, or a folder of them (e.g. the shipped demo catalog)."),
) -> None:
    """Validate the whole file first; one bad row (reported with line and field) imports nothing."""
    repo = CatalogRepository(get_app().store)
    try:
        counts = import_catalog(repo, file)
    except CatalogImportError as exc:
        for problem in exc.problems[:30]:
            console.print(f"[red]✗[/red] {escape(str(problem))}")
        raise fail(f"{len(exc.problems)} bad row(s); nothing was imported") from None
    console.print("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for contradiction in tag_contradictions(build_documents(repo))[:30]:  # hand tags vs derived facts
        console.print(f"[yellow]![/yellow] {contradiction}")


@app.command("export")
def export_cmd(
    target: Path = typer.Argument(..., help="catalog.json, or a folder for CSV files (with --format csv)."),
    fmt: str = typer.Option("json", "--format", help="json (one file) or csv (one file per kind)."),
) -> None:
    """Write the catalog out in a form `catalog import` reads back."""
    repo = CatalogRepository(get_app().store)
    if fmt == "json":
        counts = export_json(repo, target)
    elif fmt == "csv":
        counts = export_csv(repo, target)
    else:
        raise fail("--format must be json or csv")
    console.print(f"exported to {target}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command("load-demo")
def load_demo() -> None:
    """Load the demo catalog shipped with XianKe."""
    import_cmd(shipped_catalog_dir())
