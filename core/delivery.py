"""Per-chat delivery of a few messages (digests, alerts, notices) and its record in the store.

Each message is sent once (retries are the Bot session's job, see core/notify.py). The outcome of a
chat is one of:
- sent: every message arrived;
- unknown: a message's fate is unknown (DeliveryUnknown); the rest were still sent. Final, like
  sent: the same message is never sent again automatically (at-most-once);
- blocked: the bot was blocked (final);
- rate_limited / failed: not delivered; a later run tries this chat again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.clock import utc_text
from core.notify import DeliveryError, DeliveryUnknown, Notifier, Outgoing, RecipientBlocked, RetryLater
from core.store import Store, dumps, loads

FINAL_STATUSES = ("sent", "unknown", "blocked")  # a chat in one of these must not get the same message again
_DELIVERY_TABLES = frozenset({"alerts", "digests"})  # rows with a per-chat `deliveries` JSON column


@dataclass
class Delivery:
    chat_id: int
    status: str  # sent | unknown | blocked | rate_limited | failed
    message_ids: list[int] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message_ids": self.message_ids, "error": self.error}

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


async def deliver(notifier: Notifier, messages: Sequence[Outgoing]) -> Delivery:
    """Send one chat's messages in order, one attempt each. A message whose fate is unknown is not
    resent and the next one still goes out; any other error stops this chat."""
    chat_id = messages[0].chat_id if messages else 0
    done: list[int] = []
    unknown: str | None = None
    for message in messages:
        try:
            done.append(await notifier.send(message))
        except DeliveryUnknown as exc:
            unknown = str(exc) or type(exc).__name__
        except RetryLater as exc:
            return Delivery(chat_id, "rate_limited", done, f"Telegram asked to wait {exc.seconds:g}s")
        except RecipientBlocked as exc:
            return Delivery(chat_id, "blocked", done, str(exc) or "blocked")
        except DeliveryError as exc:
            return Delivery(chat_id, "failed", done, str(exc) or type(exc).__name__)
    if unknown is not None:
        return Delivery(chat_id, "unknown", done, unknown)
    return Delivery(chat_id, "sent", done)


def record_delivery(store: Store, table: str, row_id: int, delivery: Delivery) -> None:
    """Store one chat's outcome in the row's `deliveries` map; the first success also sets sent_at."""
    if table not in _DELIVERY_TABLES:
        raise ValueError(f"no deliveries column on {table!r}")
    with store.transaction() as db:  # the table name comes from the allow-list above
        raw = db.execute(f"SELECT deliveries FROM {table} WHERE id = ?", [row_id]).fetchone()
        deliveries = loads(raw[0] if raw else None, {})
        deliveries[str(delivery.chat_id)] = delivery.to_dict()
        db.execute(f"UPDATE {table} SET deliveries = ? WHERE id = ?", [dumps(deliveries), row_id])
        if delivery.status == "sent":
            db.execute(f"UPDATE {table} SET sent_at = coalesce(sent_at, ?) WHERE id = ?", [utc_text(), row_id])


def finished_chats(raw_deliveries: str | None) -> set[int]:
    """Chats whose delivery is final (sent, unknown, or the bot was blocked) in a `deliveries` value."""
    return {int(chat) for chat, d in loads(raw_deliveries, {}).items() if d.get("status") in FINAL_STATUSES}
