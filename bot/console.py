"""The customer dialogue in a terminal (rich): buttons numbered, typing the number presses it.

Same DialogueService and SQLite FSM storage as the Telegram bot; `xianke chat` is the front door.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Sequence

from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from bot.dialogue import Customer, DialogueService
from bot.replies import Answer, Button, Reply
from bot.storage import SQLiteStorage
from core.store import Store

CONSOLE_BOT_ID = 0  # FSM keys of console chats never clash with a Telegram bot's (its id is > 0)


_TAGS = re.compile(r"<(/?)(b|strong|i|em|u|s|code|pre|a)(?:\s[^>]*)?>")
_STYLE = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "s": "strike",
          "code": "cyan", "pre": "cyan", "a": "underline"}


def html_to_rich(text: str) -> str:
    """Telegram HTML → rich markup (user text is already escaped for HTML; re-escape it for rich)."""
    out: list[str] = []
    position = 0
    for match in _TAGS.finditer(text):
        out.append(escape(html.unescape(text[position : match.start()])))
        style = _STYLE[match.group(2)]
        out.append(f"[/{style}]" if match.group(1) else f"[{style}]")
        position = match.end()
    out.append(escape(html.unescape(text[position:])))
    return "".join(out)


class ConsoleChat:
    """One customer talking to the dialogue service, rendered with rich."""

    def __init__(self, dialogue: DialogueService, fsm_store: Store, user: int, out: Console, *, name: str = "你"):
        self.dialogue = dialogue
        self.user = user
        self.name = name
        self.out = out
        self.conv = FSMContext(SQLiteStorage(fsm_store), StorageKey(CONSOLE_BOT_ID, user, user))
        self.buttons: list[Button] = []

    async def customer(self) -> Customer:
        return await self.dialogue.customer(self.user, first_name=self.name, language_code="zh")

    async def turn(self, line: str) -> None:
        line = line.strip()
        c = await self.customer()
        if line.startswith(">"):
            label = line[1:].strip()
            button = next((b for b in self.buttons if label and label in b.label), None)
            if button is None:
                self.out.print(f"[yellow]没有找到按钮「{escape(label)}」[/yellow]")
                return
            await self.press(c, button)
        elif line.isdigit() and 1 <= int(line) <= len(self.buttons):
            await self.press(c, self.buttons[int(line) - 1])
        elif line.startswith("/"):
            self.show(await self.command(c, line))
        else:
            self.show(await self.dialogue.message(c, line, self.conv))

    async def command(self, c: Customer, line: str) -> list[Reply]:
        """The same commands as the Telegram router, calling the same dialogue methods."""
        name, _, args = line[1:].partition(" ")
        name = name.split("@", 1)[0].lower()
        d = self.dialogue
        if name == "start":
            return await d.start(c, args.strip() or None, self.conv)
        if name == "help":
            return d.help(c)
        if name == "privacy":
            return d.privacy(c)
        if name == "lang":
            return (await d.set_language(c))[1]
        if name == "coupons":
            return await d.coupons_list(c)
        if name == "profile":
            return await d.profile(c)
        if name == "consult":
            return await d.consult(c, "command")
        return d.unknown_command(c)

    async def press(self, c: Customer, button: Button) -> None:
        self.out.print(f"[dim]（点了「{escape(button.label)}」）[/dim]")
        answer: Answer = await self.dialogue.press(c, button.action, self.conv)
        if answer.toast:
            self.out.print(f"[magenta]💬 {escape(answer.toast)}[/magenta]")
        replies = ([answer.edit] if answer.edit else []) + answer.replies
        if replies:
            self.show(replies)

    def show(self, replies: Sequence[Reply]) -> None:
        numbered: list[Button] = []
        for reply in replies:
            body = html_to_rich(reply.text) if reply.parse_mode == "HTML" else escape(reply.text)
            lines = [body]
            for row in reply.buttons:
                cells = []
                for button in row:
                    numbered.append(button)
                    cells.append(f"[bold cyan][{len(numbered)}][/bold cyan] {escape(button.label)}")
                lines.append("   ".join(cells))
            self.out.print(Panel("\n".join(lines) if reply.buttons else body, title="鲜课", title_align="left"))
        if numbered:
            self.buttons = numbered


async def _session(
    dialogue: DialogueService, fsm_store: Store, user: int, lines: Sequence[str] | None, console: Console
) -> None:
    chat = ConsoleChat(dialogue, fsm_store, user, console)
    if lines is not None:
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            console.print(f"[bold green]{escape(chat.name)}：[/bold green]{escape(line)}")
            await chat.turn(line)
        return
    console.print("[dim]和鲜课小助手聊天：直接打字；输入按钮编号就是点按钮；/help 看命令；Ctrl+D 退出。[/dim]")
    await chat.turn("/start")
    while True:
        try:
            line = await asyncio.to_thread(console.input, "[bold green]你：[/bold green]")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if line.strip() in {"exit", "quit", ":q"}:
            return
        if line.strip():
            await chat.turn(line)


def run_conversation(
    dialogue: DialogueService, fsm_store: Store, user: int, lines: Sequence[str] | None, console: Console | None = None
) -> None:
    """Scripted (`lines`) or interactive (None) conversation in the terminal."""
    asyncio.run(_session(dialogue, fsm_store, user, lines, console or Console()))
