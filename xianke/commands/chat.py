"""`xianke chat`: the customer dialogue in the terminal — same services as the Telegram bot, no token.

Buttons are shown numbered; typing the number presses it (in a script, `> label` presses the first
button whose label contains the text). Conversation state lives in the same SQLite FSM table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from xianke.app import App
from xianke.context import console, fail, get_app

DEMO_USER = 1
DEMO_SCRIPT: tuple[str, ...] = (
    "/start spring_poster",
    "/profile",
    "> 重新设置全部",
    "> 清淡",
    "> 川菜",
    "> 完成",
    "> 零基础",
    "> 完成",
    "> ¥200",
    "零基础想学几道家常川菜",
    "> 1 👎",
    "> 更多",
    "牛腩配什么",
    "> 买这个食材包",
    "> 领券",
    "/coupons",
    "快递三天了还没到，太慢了",
    "谢谢",
)


def chat(
    script: Path | None = typer.Option(
        None, "--script", help="Run a scripted conversation: one customer turn per line; '> label' presses a button, "
        "a number presses the button with that number, '#' starts a comment.",
    ),
    demo: bool = typer.Option(False, "--demo", help="Run the built-in demo conversation (what `make demo` shows)."),
    user: int = typer.Option(DEMO_USER, "--user", help="Customer id to talk as; their profile, coupons and history persist."),
    db: Path | None = typer.Option(None, "--db", help="SQLite file (default: the app database; demo catalog loaded if empty)."),
) -> None:
    """Chat with the customer assistant in the terminal — no Telegram token needed."""
    if script is not None and not script.is_file():
        raise fail(f"script file not found: {script}")
    lines: Sequence[str] | None = None
    if script is not None:
        lines = script.read_text(encoding="utf-8").splitlines()
    elif demo:
        lines = DEMO_SCRIPT
    app = get_app()
    talk(app, db or app.settings.database_path, user=user, lines=lines)


def talk(
    app: App, db_path: Path, *, user: int = DEMO_USER, lines: Sequence[str] | None = None, index_dir: Path | None = None
) -> None:
    """A conversation over `db_path` (scripted when `lines` is given). `xianke demo` can end with
    `talk(app, path, lines=DEMO_SCRIPT, index_dir=...)` on its own demo database."""
    from bot.console import run_conversation
    from xianke.bot_wiring import build_dialogue

    worker, loop_side = app.open_store(db_path), app.open_store(db_path)
    dialogue = build_dialogue(app, worker, index_dir=index_dir)
    try:
        run_conversation(dialogue, loop_side, user, lines, console)
    finally:
        dialogue.close()
        worker.close()
        loop_side.close()
