"""The append-only behaviour log that personalisation and campaign effects read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.domain import EventKind
from core.store import Store, dumps


class EventRepository:
    def __init__(self, store: Store):
        self.store = store

    def record(
        self,
        user_id: int | None,
        kind: EventKind | str,
        item_slug: str | None = None,
        *,
        campaign_id: int | None = None,
        payload: dict[str, Any] | None = None,
        created_at: str | None = None,
    ) -> int:
        kind = EventKind(kind)
        columns = ["user_id", "kind", "item_slug", "campaign_id", "payload"]
        values: list[Any] = [user_id, kind.value, item_slug, campaign_id, dumps(payload or {})]
        if created_at:
            columns.append("created_at")
            values.append(created_at)
        cursor = self.store.db.execute(
            f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(values))})", values
        )
        return int(cursor.lastrowid or 0)

    def record_many(self, rows: Iterable[dict[str, Any]]) -> int:
        count = 0
        with self.store.transaction():
            for row in rows:
                self.record(**row)
                count += 1
        return count

    def for_user(self, user_id: int, kinds: Iterable[EventKind | str] | None = None, limit: int = 500) -> list[dict[str, Any]]:
        if kinds is None:
            return self.store.query(
                "SELECT * FROM events WHERE user_id = ? ORDER BY id DESC LIMIT ?", [user_id, limit]
            )
        kind_list = [EventKind(k).value for k in kinds]
        marks = ", ".join("?" * len(kind_list))
        return self.store.query(
            f"SELECT * FROM events WHERE user_id = ? AND kind IN ({marks}) ORDER BY id DESC LIMIT ?",
            [user_id, *kind_list, limit],
        )

    def item_slugs(self, user_id: int, kinds: Iterable[EventKind | str]) -> set[str]:
        return {row["item_slug"] for row in self.for_user(user_id, kinds, limit=10_000) if row["item_slug"]}
