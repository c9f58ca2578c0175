"""Customers, staff and marketers, keyed by Telegram user id."""

from __future__ import annotations

from typing import Any

from core.domain import Profile
from core.store import Store, dumps, loads


class UserRepository:
    def __init__(self, store: Store):
        self.store = store

    def get(self, user_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM users WHERE id = ?", [user_id])
        return rows[0] if rows else None

    def ensure(self, user_id: int, *, first_name: str = "", username: str | None = None, language: str = "zh") -> dict[str, Any]:
        """Create on first contact; later calls refresh the display name only."""
        self.store.db.execute(
            """INSERT INTO users (id, first_name, username, language) VALUES (?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET first_name = excluded.first_name,
                   username = excluded.username,
                   updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')""",
            [user_id, first_name[:128], username, language],
        )
        user = self.get(user_id)
        assert user is not None
        return user

    def profile(self, user_id: int) -> Profile:
        user = self.get(user_id)
        return Profile.from_dict(loads(user["profile"], {}) if user else {})

    def save_profile(self, user_id: int, profile: Profile) -> None:
        self.store.db.execute(
            "UPDATE users SET profile = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?",
            [dumps(profile.to_dict()), user_id],
        )

    def set_language(self, user_id: int, language: str) -> None:
        self.store.db.execute("UPDATE users SET language = ? WHERE id = ?", [language, user_id])

    def set_flag(self, user_id: int, flag: str, value: bool) -> None:
        if flag not in {"opted_out", "blocked_bot", "banned"}:
            raise ValueError(f"unknown user flag {flag!r}")
        # Column name comes from the allow-list above, never from user text.
        self.store.db.execute(f"UPDATE users SET {flag} = ? WHERE id = ?", [int(value), user_id])
