"""The embedded SQLite store: one file, WAL, foreign keys, versioned migrations."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from core.logging import log_event
from core.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)


class Store:
    """One SQLite database. Open one per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path | str, *, migrate: bool = True, migrations: tuple[Migration, ...] = MIGRATIONS):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA busy_timeout = 30000")
        if str(path) != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            self.migrate(migrations)

    # -- transactions -------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """All-or-nothing block; nests through savepoints.

        The outermost block takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction
        that reads and then writes fails at once with "database is locked" when another connection
        committed in between, because its WAL snapshot cannot be upgraded (busy_timeout does not help).
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():  # a savepoint inside the outer transaction
                yield self.db
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- migrations ---------------------------------------------------------
    def applied_versions(self) -> list[int]:
        if not self.db["schema_migrations"].exists():
            return []
        return [row[0] for row in self.db.execute("SELECT version FROM schema_migrations ORDER BY version")]

    def migrate(self, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
        self.db.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                   applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""
        )
        done = set(self.applied_versions())
        applied = []
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            with self.transaction() as db:
                for statement in migration.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    [migration.version, migration.name],
                )
            applied.append(migration.version)
            log_event(log, "migration applied", version=migration.version, name=migration.name)
        return applied

    # -- helpers ------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params or []))

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        row = self.db.execute(sql, params or []).fetchone()
        return row[0] if row else None

    def integrity_problems(self) -> list[str]:
        problems = [row[0] for row in self.db.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key: {tuple(row)}" for row in self.db.execute("PRAGMA foreign_key_check")]
        return problems

    def close(self) -> None:
        self.db.close()


def dumps(value: Any) -> str:
    """JSON for TEXT columns: Chinese kept readable, keys stable."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)
