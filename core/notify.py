"""How jobs talk to people without importing the bot: a small notifier interface.

The composition root (xianke) wires it to the aiogram Bot; tests wire it to the fake Bot API
through the same adapter. Errors are translated into these three types so jobs can honour
retry_after, mark blocked users and keep going.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class DeliveryError(Exception):
    """A message could not be delivered and retrying will not help (bad chat, deleted topic …)."""


class RetryLater(DeliveryError):
    """Telegram asked us to wait (HTTP 429): retry the same message after `seconds`."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds}s")
        self.seconds = seconds


class RecipientBlocked(DeliveryError):
    """HTTP 403: the user blocked the bot or left; stop sending to them."""


@dataclass
class Button:
    label: str
    callback_data: str | None = None
    url: str | None = None


@dataclass
class Outgoing:
    chat_id: int
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    photo: Path | None = None  # sent as a photo with `text` as its caption (≤ 1024 chars)
    thread_id: int | None = None
    parse_mode: str | None = "HTML"


class Notifier(Protocol):
    async def send(self, message: Outgoing) -> int:
        """Deliver one message; returns Telegram's message_id. Raises RetryLater / RecipientBlocked / DeliveryError."""
        ...
