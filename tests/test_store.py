from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.migrations import MIGRATIONS, Migration
from core.repos import EventRepository, UserRepository
from core.store import Store


def test_fresh_database_gets_every_migration_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.db")
    assert store.applied_versions() == [m.version for m in MIGRATIONS]
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA foreign_keys") == 1
    for table in ("courses", "ingredients", "kits", "users", "events", "posts", "tickets", "campaigns", "coupons"):
        assert store.db[table].exists(), table


def test_rerunning_migrations_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    Store(path).close()
    again = Store(path)
    assert again.migrate() == []
    assert again.scalar("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)


def test_failed_migration_rolls_back_and_is_not_recorded(tmp_path: Path) -> None:
    broken = (*MIGRATIONS, Migration(999, "broken", ("CREATE TABLE half (id INTEGER)", "CREATE TABLE nope (")))
    with pytest.raises(sqlite3.OperationalError):
        Store(tmp_path / "x.db", migrations=broken)
    store = Store(tmp_path / "x.db")
    assert 999 not in store.applied_versions()
    assert not store.db["half"].exists()


def test_transaction_rolls_back_every_row_on_error(store: Store) -> None:
    users = UserRepository(store)
    users.ensure(1, first_name="小明")
    events = EventRepository(store)
    with pytest.raises(ValueError):
        events.record_many([
            {"user_id": 1, "kind": "view", "item_slug": "course/a"},
            {"user_id": 1, "kind": "not-a-kind"},
        ])
    assert store.scalar("SELECT count(*) FROM events") == 0


def test_nested_transaction_failure_keeps_outer_work_atomic(store: Store) -> None:
    users = UserRepository(store)
    with pytest.raises(RuntimeError), store.transaction():
        users.ensure(2, first_name="甲")
        with store.transaction():
            users.ensure(3, first_name="乙")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM users") == 0


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("INSERT INTO tickets (user_id) VALUES (424242)")


def test_events_are_append_only(store: Store) -> None:
    UserRepository(store).ensure(5)
    event_id = EventRepository(store).record(5, "like", "course/x")
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("UPDATE events SET kind = 'dislike' WHERE id = ?", [event_id])


def test_user_text_is_stored_verbatim(store: Store) -> None:
    nasty = "'); DROP TABLE users; --"
    UserRepository(store).ensure(9, first_name=nasty)
    assert UserRepository(store).get(9)["first_name"] == nasty
    assert store.db["users"].exists()
