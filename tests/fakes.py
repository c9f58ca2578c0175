"""Shared test doubles for the edges of the system (never for our own product code).

- `RecordingNotifier`: Telegram behind the core.notify.Notifier contract, in memory: records every
  Outgoing message and raises scripted delivery errors (429 as RetryLater, 403 as RecipientBlocked,
  DeliveryUnknown …). For unit tests of jobs that deliver; end-to-end tests use the production
  AiogramNotifier against the fake Bot API instead.
- `LateAnswerBotAPI`: the fake Bot API server, but chosen calls are executed and *then* answered
  late, so the client times out although the message was delivered (the double-send trap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.notify import Outgoing, RecipientBlocked
from tests.fakebot import FakeBotAPI
from tests.fakebot.server import Call

Match = Callable[[Outgoing], bool]


def _matcher(target: int | Match | None) -> Match:
    if target is None:
        return lambda _message: True
    if callable(target):
        return target
    return lambda message: message.chat_id == target


@dataclass
class RecordingNotifier:
    """Records what would reach Telegram; `fail(...)` scripts errors, `blocked` chats answer 403."""

    blocked: set[int] = field(default_factory=set)
    latency: float = 0.0
    hang_after: int | None = None  # after this many deliveries every send hangs (a crash mid-request)
    sent: list[Outgoing] = field(default_factory=list)
    calls: list[tuple[float, int, str]] = field(default_factory=list)  # (monotonic time, chat, outcome)
    failures: list[tuple[Match, Exception]] = field(default_factory=list)
    reached_hang: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, target: int | Match | None, error: Exception, times: int = 1) -> RecordingNotifier:
        """The next `times` sends matching `target` (a chat id, a predicate, None = any) raise `error`."""
        self.failures.extend((_matcher(target), error) for _ in range(times))
        return self

    async def send(self, message: Outgoing) -> int:
        now, chat = time.monotonic(), message.chat_id
        if self.hang_after is not None and len(self.sent) >= self.hang_after:
            self.calls.append((now, chat, "hang"))
            self.reached_hang.set()
            await asyncio.Event().wait()
        for index, (match, error) in enumerate(self.failures):
            if match(message):
                del self.failures[index]
                self.calls.append((now, chat, type(error).__name__))
                raise error
        if chat in self.blocked:
            self.calls.append((now, chat, "RecipientBlocked"))
            raise RecipientBlocked("Forbidden: bot was blocked by the user")
        self.calls.append((now, chat, "ok"))
        self.sent.append(message)
        if self.latency:
            await asyncio.sleep(self.latency)
        return 10_000 + len(self.sent)

    def to(self, chat_id: int) -> list[Outgoing]:
        return [m for m in self.sent if m.chat_id == chat_id]

    @property
    def delivered(self) -> list[int]:
        """Chat ids in delivery order (one entry per message)."""
        return [m.chat_id for m in self.sent]

    @property
    def texts(self) -> dict[int, str]:
        """The last text each chat received."""
        return {m.chat_id: m.text for m in self.sent}


class LateAnswerBotAPI(FakeBotAPI):
    """`answer_late("sendMessage", 2.0)`: the next such call is executed (the message is stored and
    visible to the user) and only then answered, `seconds` later — longer than the client's timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.late: dict[str, list[float]] = {}

    def answer_late(self, method: str, seconds: float, times: int = 1) -> None:
        self.late.setdefault(method.lower(), []).extend([seconds] * times)

    async def _execute(self, method: str, params: dict[str, Any], files: dict[str, bytes], *args: Any, **kwargs: Any) -> Call:
        call = await super()._execute(method, params, files, *args, **kwargs)
        delays = self.late.get(method.lower())
        if delays and call.ok:
            await asyncio.sleep(delays.pop(0))
        return call
