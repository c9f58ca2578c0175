"""What the dialogue answers with, independent of Telegram: text, button rows, a toast."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.notify import Button  # the one Button type, shared with jobs' Outgoing messages

__all__ = ["TELEGRAM_TEXT_LIMIT", "Answer", "Button", "Reply"]

TELEGRAM_TEXT_LIMIT = 4096


@dataclass
class Reply:
    """One outgoing message. `text` is Telegram HTML with every user-supplied part escaped."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    parse_mode: str | None = "HTML"


@dataclass
class Answer:
    """The outcome of a button press: a toast on the button, new messages, or an in-place edit."""

    toast: str | None = None
    replies: list[Reply] = field(default_factory=list)
    edit: Reply | None = None
    alert: bool = False
