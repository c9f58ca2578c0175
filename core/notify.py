"""The delivery contract: how every layer talks to people without importing the bot.

One Button type (also used by the bot's replies), one Outgoing message, one Notifier protocol and
the four ways a send can end badly. The composition root (xianke) wires the Notifier to the aiogram
Bot; tests wire it to the fake Bot API through the same adapter.

Retries live in exactly one place: the Bot session middleware (bot/retry.py). It waits out 429s that
are short enough and retries transport errors of idempotent calls only. What reaches a caller is final
for this attempt, so callers never loop:

- RetryLater: Telegram asked for a longer wait than the session accepts; the message was NOT sent.
  Keep it for a later run.
- DeliveryUnknown: the request may have been executed (a timeout or a dropped connection after
  sending, a 5xx). Sending again could deliver it twice: never resend automatically.
- RecipientBlocked: HTTP 403; stop sending to this chat.
- DeliveryError: anything else permanent (bad chat, deleted topic …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class DeliveryError(Exception):
    """A message could not be delivered and retrying will not help (bad chat, deleted topic …)."""


class RetryLater(DeliveryError):
    """Telegram asked us to wait (HTTP 429) longer than the session waits: not sent, try in a later run."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds}s")
        self.seconds = seconds


class RecipientBlocked(DeliveryError):
    """HTTP 403: the user blocked the bot or left; stop sending to them."""


class DeliveryUnknown(DeliveryError):
    """The request may or may not have been executed (timeout after sending, connection lost, 5xx)."""


@dataclass(frozen=True)
class Button:
    """One inline button: `action` is packed callback data (≤ 64 bytes), or `url` opens a link."""

    label: str
    action: str | None = None
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
        """Deliver one message; returns Telegram's message_id.
        Raises RetryLater / RecipientBlocked / DeliveryUnknown / DeliveryError."""
        ...
