"""The CLI's shared App, created on first use so `--help` never loads settings or models."""

from __future__ import annotations

import typer
from rich.console import Console

from core.logging import configure_logging
from core.settings import SettingsError
from xianke.app import App

console = Console()
err_console = Console(stderr=True)
_app: App | None = None


def get_app() -> App:
    global _app
    if _app is None:
        try:
            _app = App()
        except SettingsError as exc:
            err_console.print(f"[red]配置错误 / configuration error:[/red] {exc}")
            raise typer.Exit(2) from None
        configure_logging(_app.settings.log_level)
    return _app


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line and return the Exit to raise."""
    err_console.print(f"[red]错误 / error:[/red] {message}")
    return typer.Exit(code)
