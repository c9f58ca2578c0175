"""aiogram FSM storage over the `fsm_state` table, so a half-finished onboarding survives a restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey

from core.store import Store


class SQLiteStorage(BaseStorage):
    """One row per FSM key: (state, JSON data). Values must be JSON-serialisable.

    Give it its own `Store` (connection) for the event-loop thread; every call is one short
    autocommitted statement, so it never holds SQLite's write lock for long.
    """

    def __init__(self, store: Store, key_builder: KeyBuilder | None = None):
        self.store = store
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        self.store.db.execute(
            """INSERT INTO fsm_state (key, state) VALUES (?, ?)
               ON CONFLICT(key) DO UPDATE SET state = excluded.state,
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')""",
            [self._key(key), value],
        )

    async def get_state(self, key: StorageKey) -> str | None:
        row = self.store.db.execute("SELECT state FROM fsm_state WHERE key = ?", [self._key(key)]).fetchone()
        return row[0] if row else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        self.store.db.execute(
            """INSERT INTO fsm_state (key, data) VALUES (?, ?)
               ON CONFLICT(key) DO UPDATE SET data = excluded.data,
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')""",
            [self._key(key), json.dumps(data, ensure_ascii=False)],
        )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = self.store.db.execute("SELECT data FROM fsm_state WHERE key = ?", [self._key(key)]).fetchone()
        if not row or not row[0]:
            return {}
        data = json.loads(row[0])
        return data if isinstance(data, dict) else {}

    async def close(self) -> None:
        """The store belongs to whoever built it; nothing to release here."""
