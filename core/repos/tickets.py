"""Support tickets (人工客服 consultations), their message-id map, canned replies and support statistics.

A ticket is one consultation of one customer. At most one ticket per customer is not closed: the
partial unique index `tickets_one_open` guarantees it, so `create` returns the open one on a race.
`ticket_messages` maps every relayed message between the customer's private chat and the staff
forum topic (direction 'in' = customer → staff, 'out' = staff → customer), which keeps replies
threaded both ways across restarts.

Every timestamp is the store's UTC text ('2026-11-28T10:00:00.000Z'); such strings sort like the
moments they name, so SLA scans compare them in SQL. Writers take an optional `now` for tests.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from core.store import Store

Direction = Literal["in", "out"]
CloseReason = Literal["staff", "customer", "idle", "ban", "error"]
CANNED_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# Tickets closed this way were resolved by someone; idle, banned and failed ones are not resolutions.
RESOLVED_BY = ("staff", "customer")


def utc_text(moment: datetime | None = None) -> str:
    """The store's timestamp shape (UTC, milliseconds, 'Z')."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def minutes_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse_utc(end) - parse_utc(start)).total_seconds() / 60.0


def _fits(*values: int) -> bool:
    """Ids from Telegram updates (or forged callback data) that SQLite can hold; others match nothing."""
    return all(-(2**63) <= v < 2**63 for v in values)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Ticket:
    id: int
    user_id: int
    status: str  # open | assigned | closed
    thread_id: int | None = None
    assignee_id: int | None = None
    assignee_name: str | None = None
    reason: str = "handoff"
    opened_at: str = ""
    first_response_at: str | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    last_customer_at: str | None = None
    last_staff_at: str | None = None
    waiting_since: str | None = None
    sla_reminded_at: str | None = None
    rating: int | None = None
    rating_comment: str | None = None
    rated_at: str | None = None
    delivery_error: str | None = None
    customer_status: str | None = None
    customer_status_at: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Ticket:
        # Columns added by later migrations are ignored until this class names them.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in known})

    @property
    def is_open(self) -> bool:
        return self.status != "closed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SupportStats:
    """CSAT and response times of the tickets opened in [since, until)."""

    since: str
    until: str
    opened: int = 0
    closed: int = 0
    open_now: int = 0
    rated: int = 0
    csat_mean: float | None = None
    csat_distribution: dict[int, int] | None = None
    csat_satisfied_pct: float | None = None  # share of 4-5 ratings, the usual CSAT score
    first_response_p50_min: float | None = None
    first_response_p90_min: float | None = None
    resolution_p50_min: float | None = None
    resolution_p90_min: float | None = None
    unanswered: int = 0  # opened but never answered by staff
    delivery_errors: int = 0
    closed_by: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["csat_distribution"] = {str(k): v for k, v in (self.csat_distribution or {}).items()}
        return data


class TicketRepository:
    def __init__(self, store: Store):
        self.store = store

    # -- reading ---------------------------------------------------------------------------
    def _one(self, sql: str, params: list[Any]) -> Ticket | None:
        rows = self.store.query(sql, params)
        return Ticket.from_row(rows[0]) if rows else None

    def get(self, ticket_id: int) -> Ticket | None:
        if not _fits(ticket_id):
            return None
        return self._one("SELECT * FROM tickets WHERE id = ?", [ticket_id])

    def open_for(self, user_id: int) -> Ticket | None:
        """The customer's ticket that is not closed, if any (there is at most one)."""
        if not _fits(user_id):
            return None
        return self._one("SELECT * FROM tickets WHERE user_id = ? AND status <> 'closed'", [user_id])

    def latest_for(self, user_id: int) -> Ticket | None:
        return self._one("SELECT * FROM tickets WHERE user_id = ? ORDER BY id DESC LIMIT 1", [user_id])

    def get_by_thread(self, thread_id: int) -> Ticket | None:
        """The newest ticket of a forum topic (one topic per customer, reused by their later tickets)."""
        if not _fits(thread_id):
            return None
        return self._one("SELECT * FROM tickets WHERE thread_id = ? ORDER BY id DESC LIMIT 1", [thread_id])

    def topic_of(self, user_id: int) -> int | None:
        """The customer's most recent forum topic, to reuse for a new ticket."""
        return self.store.scalar(
            "SELECT thread_id FROM tickets WHERE user_id = ? AND thread_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            [user_id],
        )

    def history(self, user_id: int, limit: int = 10) -> list[dict[str, Any]]:
        """The customer's tickets, newest first, with their relayed message counts."""
        return self.store.query(
            """SELECT t.*, (SELECT count(*) FROM ticket_messages m WHERE m.ticket_id = t.id) AS messages
               FROM tickets t WHERE t.user_id = ? ORDER BY t.id DESC LIMIT ?""",
            [user_id, limit],
        )

    def messages(self, ticket_id: int) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM ticket_messages WHERE ticket_id = ? ORDER BY id", [ticket_id])

    # -- lifecycle -------------------------------------------------------------------------
    def create(
        self, user_id: int, reason: str = "handoff", *, thread_id: int | None = None, now: datetime | None = None
    ) -> tuple[Ticket, bool]:
        """A new open ticket, or the customer's existing open one (created = False)."""
        existing = self.open_for(user_id)
        if existing is not None:
            return existing, False
        stamp = utc_text(now)
        try:
            cursor = self.store.db.execute(
                """INSERT INTO tickets (user_id, status, thread_id, reason, opened_at, customer_status,
                       customer_status_at) VALUES (?, 'open', ?, ?, ?, 'open:', ?)""",
                [user_id, thread_id, reason[:32], stamp, stamp],
            )
        except sqlite3.IntegrityError:
            again = self.open_for(user_id)  # another connection won the race: one open ticket each
            if again is None:
                raise
            return again, False
        ticket = self.get(int(cursor.lastrowid or 0))
        assert ticket is not None
        return ticket, True

    def set_thread(self, ticket_id: int, thread_id: int) -> None:
        self.store.db.execute("UPDATE tickets SET thread_id = ? WHERE id = ?", [thread_id, ticket_id])

    def assign(self, ticket_id: int, staff_id: int, staff_name: str = "") -> Ticket | None:
        """Take an open ticket; a closed one is left alone (None)."""
        self.store.db.execute(
            """UPDATE tickets SET status = 'assigned', assignee_id = ?, assignee_name = ?
               WHERE id = ? AND status <> 'closed'""",
            [staff_id, staff_name[:64] or None, ticket_id],
        )
        ticket = self.get(ticket_id)
        return ticket if ticket is not None and ticket.is_open else None

    def close(self, ticket_id: int, by: CloseReason = "staff", *, now: datetime | None = None) -> Ticket | None:
        """Close an open ticket; None if it was already closed (so a double /close acts once)."""
        cursor = self.store.db.execute(
            """UPDATE tickets SET status = 'closed', closed_at = ?, closed_by = ?, waiting_since = NULL
               WHERE id = ? AND status <> 'closed'""",
            [utc_text(now), by, ticket_id],
        )
        return self.get(ticket_id) if cursor.rowcount else None

    def reopen(self, ticket_id: int) -> Ticket | None:
        """Reopen a closed ticket (assigned again if it had an assignee); None if the customer has
        another open ticket or this one is not closed."""
        try:
            cursor = self.store.db.execute(
                """UPDATE tickets SET status = CASE WHEN assignee_id IS NULL THEN 'open' ELSE 'assigned' END,
                       closed_at = NULL, closed_by = NULL WHERE id = ? AND status = 'closed'""",
                [ticket_id],
            )
        except sqlite3.IntegrityError:
            return None
        return self.get(ticket_id) if cursor.rowcount else None

    def rate(self, ticket_id: int, rating: int, *, now: datetime | None = None) -> Ticket | None:
        """CSAT 1-5 on a closed ticket (a second press changes it)."""
        if not 1 <= rating <= 5:
            raise ValueError("rating must be 1-5")
        cursor = self.store.db.execute(
            "UPDATE tickets SET rating = ?, rated_at = ? WHERE id = ? AND status = 'closed'",
            [rating, utc_text(now), ticket_id],
        )
        return self.get(ticket_id) if cursor.rowcount else None

    def comment(self, ticket_id: int, text: str) -> None:
        self.store.db.execute(
            "UPDATE tickets SET rating_comment = ? WHERE id = ?", [text.strip()[:1000] or None, ticket_id]
        )

    def mark_delivery_error(self, ticket_id: int, error: str | None) -> None:
        """The last relay failure (None clears it once a message gets through again)."""
        self.store.db.execute(
            "UPDATE tickets SET delivery_error = ? WHERE id = ?", [error[:500] if error else None, ticket_id]
        )

    def mark_reminded(self, ticket_id: int, *, now: datetime | None = None) -> None:
        self.store.db.execute("UPDATE tickets SET sla_reminded_at = ? WHERE id = ?", [utc_text(now), ticket_id])

    def set_customer_status(self, ticket_id: int, status: str, *, now: datetime | None = None) -> None:
        """Remember which status line the customer saw last, and when."""
        self.store.db.execute(
            "UPDATE tickets SET customer_status = ?, customer_status_at = ? WHERE id = ?",
            [status, utc_text(now), ticket_id],
        )

    # -- the message-id map ----------------------------------------------------------------
    def map_message(
        self,
        ticket_id: int,
        direction: Direction,
        customer_mid: int | None,
        staff_mid: int | None,
        kind: str = "text",
        text: str | None = None,
        *,
        now: datetime | None = None,
    ) -> int:
        """Record one relayed message and the activity it means for the ticket.

        A customer message starts a waiting episode (kept until staff answer); a staff message ends
        it, and the first one is the ticket's first response.
        """
        if direction not in ("in", "out"):
            raise ValueError("direction must be 'in' or 'out'")
        stamp = utc_text(now)
        with self.store.transaction() as db:
            cursor = db.execute(
                """INSERT INTO ticket_messages (ticket_id, direction, customer_message_id, staff_message_id,
                       kind, text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [ticket_id, direction, customer_mid, staff_mid, kind[:32], (text or None) and text[:4096], stamp],
            )
            if direction == "in":
                db.execute(
                    """UPDATE tickets SET last_customer_at = ?, waiting_since = coalesce(waiting_since, ?)
                       WHERE id = ?""",
                    [stamp, stamp, ticket_id],
                )
            else:
                db.execute(
                    """UPDATE tickets SET last_staff_at = ?, waiting_since = NULL,
                           first_response_at = coalesce(first_response_at, ?) WHERE id = ?""",
                    [stamp, stamp, ticket_id],
                )
        return int(cursor.lastrowid or 0)

    def find_by_staff_mid(self, thread_id: int, staff_mid: int) -> dict[str, Any] | None:
        """The mapped row of a message in a staff topic (any ticket of that topic)."""
        if not _fits(thread_id, staff_mid):
            return None
        rows = self.store.query(
            """SELECT m.* FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
               WHERE t.thread_id = ? AND m.staff_message_id = ? ORDER BY m.id DESC LIMIT 1""",
            [thread_id, staff_mid],
        )
        return rows[0] if rows else None

    def find_by_customer_mid(self, user_id: int, customer_mid: int) -> dict[str, Any] | None:
        """The mapped row of a message in the customer's private chat (any of their tickets)."""
        if not _fits(user_id, customer_mid):
            return None
        rows = self.store.query(
            """SELECT m.* FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
               WHERE t.user_id = ? AND m.customer_message_id = ? ORDER BY m.id DESC LIMIT 1""",
            [user_id, customer_mid],
        )
        return rows[0] if rows else None

    def update_text(self, message_row_id: int, text: str | None) -> None:
        self.store.db.execute(
            "UPDATE ticket_messages SET text = ? WHERE id = ?", [(text or None) and text[:4096], message_row_id]
        )

    # -- statistics ------------------------------------------------------------------------
    def stats(self, since: datetime | None = None, until: datetime | None = None, *, days: int = 30) -> SupportStats:
        """CSAT (mean, 1-5 distribution, share of 4-5) and first-response / resolution percentiles in
        minutes, over tickets opened in [since, until) (default: the last `days` days)."""
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=days)
        lo, hi = utc_text(start), utc_text(end)
        rows = self.store.query("SELECT * FROM tickets WHERE opened_at >= ? AND opened_at < ?", [lo, hi])
        out = SupportStats(since=lo, until=hi, opened=len(rows))
        ratings = [int(r["rating"]) for r in rows if r["rating"] is not None]
        out.rated = len(ratings)
        out.csat_distribution = {score: ratings.count(score) for score in range(1, 6)}
        if ratings:
            out.csat_mean = round(sum(ratings) / len(ratings), 2)
            out.csat_satisfied_pct = round(100.0 * sum(r >= 4 for r in ratings) / len(ratings), 1)
        first = [m for r in rows if (m := minutes_between(r["opened_at"], r["first_response_at"])) is not None]
        resolved = [
            m
            for r in rows
            if r["status"] == "closed" and r["closed_by"] in RESOLVED_BY
            and (m := minutes_between(r["opened_at"], r["closed_at"])) is not None
        ]
        out.first_response_p50_min = _round(percentile(first, 50))
        out.first_response_p90_min = _round(percentile(first, 90))
        out.resolution_p50_min = _round(percentile(resolved, 50))
        out.resolution_p90_min = _round(percentile(resolved, 90))
        out.closed = sum(r["status"] == "closed" for r in rows)
        out.open_now = len(rows) - out.closed
        out.unanswered = sum(r["first_response_at"] is None for r in rows)
        out.delivery_errors = sum(bool(r["delivery_error"]) for r in rows)
        by: dict[str, int] = {}
        for r in rows:
            if r["status"] == "closed":
                key = r["closed_by"] or "unknown"
                by[key] = by.get(key, 0) + 1
        out.closed_by = by
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class CannedReplyRepository:
    """Saved replies staff send with /canned <key>; managed by admins (CLI or /canned add in the staff chat)."""

    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def check_key(key: str) -> str:
        key = key.strip().lower()
        if not CANNED_KEY_RE.match(key):
            raise ValueError(f"canned reply key {key!r}: use 1-32 of a-z 0-9 _ - (starting with a letter or digit)")
        return key

    def list(self) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM canned_replies ORDER BY key")

    def get(self, key: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM canned_replies WHERE key = ?", [key.strip().lower()])
        return rows[0] if rows else None

    def set(self, key: str, text: str, updated_by: int | None = None) -> dict[str, Any]:
        key = self.check_key(key)
        text = text.strip()
        if not text:
            raise ValueError("canned reply text is empty")
        if len(text) > 4000:
            raise ValueError("canned reply text is longer than 4,000 characters (Telegram's limit is 4,096)")
        self.store.db.execute(
            """INSERT INTO canned_replies (key, text, updated_by) VALUES (?, ?, ?)
               ON CONFLICT(key) DO UPDATE SET text = excluded.text, updated_by = excluded.updated_by,
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')""",
            [key, text, updated_by],
        )
        row = self.get(key)
        assert row is not None
        return row

    def delete(self, key: str) -> bool:
        cursor = self.store.db.execute("DELETE FROM canned_replies WHERE key = ?", [key.strip().lower()])
        return bool(cursor.rowcount)
