"""Tickets: repository rules, the message-id map, SLA / idle selections, stats, the support jobs."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.notify import DeliveryError, DeliveryUnknown, RecipientBlocked
from core.repos import CannedReplyRepository, TicketRepository, UserRepository
from core.repos.tickets import percentile, utc_text
from core.settings import Settings
from core.store import Store
from jobs.registry import JOBS, JobContext, Outbox
from jobs.support_jobs import (
    close_idle,
    due_reminders,
    idle_tickets,
    send_reminders,
)
from jobs.tasks import auto_close_job, sla_job
from tests.fakes import RecordingNotifier

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def repo(store: Store) -> TicketRepository:
    users = UserRepository(store)
    for uid in (1, 2, 3, 4):
        users.ensure(uid, first_name=f"U{uid}", language="en" if uid == 4 else "zh")
    return TicketRepository(store)


def test_one_open_ticket_per_customer(repo: TicketRepository, store: Store) -> None:
    first, created = repo.create(1, "complaint", now=at(0))
    again, created_again = repo.create(1, "handoff")
    assert created and not created_again and again.id == first.id
    with pytest.raises(sqlite3.IntegrityError):  # the index, not the code, is the guarantee
        store.db.execute("INSERT INTO tickets (user_id, status) VALUES (1, 'assigned')")
    assert repo.close(first.id, "staff") is not None
    assert repo.close(first.id, "staff") is None  # a double /close acts once
    second, created = repo.create(1)
    assert created and second.id != first.id
    assert repo.reopen(first.id) is None  # the customer has another open ticket
    repo.close(second.id, "customer")
    reopened = repo.reopen(first.id)
    assert reopened is not None and reopened.status == "open" and reopened.closed_at is None


def test_assign_rate_comment_and_history(repo: TicketRepository) -> None:
    ticket, _ = repo.create(2, now=at(0))
    assigned = repo.assign(ticket.id, 900, "Alice Wang")
    assert assigned is not None and assigned.status == "assigned" and assigned.assignee_name == "Alice Wang"
    assert repo.rate(ticket.id, 5) is None  # only closed tickets are rated
    repo.close(ticket.id)
    with pytest.raises(ValueError):
        repo.rate(ticket.id, 6)
    rated = repo.rate(ticket.id, 4)
    assert rated is not None and rated.rating == 4
    repo.comment(ticket.id, "  很耐心  ")
    reopened = repo.reopen(ticket.id)
    assert reopened is not None and reopened.status == "assigned"  # back to the same person
    [row] = repo.history(2)
    assert row["rating_comment"] == "很耐心" and row["messages"] == 0
    assert repo.assign(999_999, 1) is None


def test_message_map_threads_both_ways_and_tracks_waiting(repo: TicketRepository) -> None:
    ticket, _ = repo.create(3, now=at(0))
    repo.set_thread(ticket.id, 77)
    repo.map_message(ticket.id, "in", 10, 500, "text", "你好", now=at(1))
    repo.map_message(ticket.id, "in", 11, 501, "photo", None, now=at(3))
    waiting = repo.get(ticket.id)
    assert waiting is not None and waiting.waiting_since == utc_text(at(1)) and waiting.first_response_at is None
    repo.map_message(ticket.id, "out", 12, 502, "text", "您好", now=at(6))
    answered = repo.get(ticket.id)
    assert answered is not None and answered.waiting_since is None
    assert answered.first_response_at == utc_text(at(6)) and answered.last_staff_at == utc_text(at(6))
    assert repo.find_by_staff_mid(77, 500)["customer_message_id"] == 10
    assert repo.find_by_customer_mid(3, 12)["staff_message_id"] == 502
    assert repo.find_by_staff_mid(78, 500) is None  # another topic
    assert repo.find_by_customer_mid(2, 10) is None  # another customer
    assert repo.get_by_thread(77).id == ticket.id and repo.topic_of(3) == 77
    with pytest.raises(ValueError):
        repo.map_message(ticket.id, "sideways", 1, 2)  # type: ignore[arg-type]
    huge = 2**70  # forged callback data or fuzzed updates: no match instead of an OverflowError
    assert repo.get(huge) is None and repo.get_by_thread(huge) is None and repo.open_for(huge) is None
    assert repo.find_by_staff_mid(77, huge) is None and repo.find_by_customer_mid(3, -huge) is None


def test_due_reminders_once_per_waiting_episode(repo: TicketRepository, store: Store) -> None:
    ticket, _ = repo.create(1, now=at(0))
    repo.set_thread(ticket.id, 5)
    assert due_reminders(store, at(30), 15) == []  # nobody has written yet
    repo.map_message(ticket.id, "in", 1, 101, now=at(10))
    repo.map_message(ticket.id, "in", 2, 102, now=at(20))  # still the same episode: waiting since 10
    assert due_reminders(store, at(24), 15) == []
    [due] = due_reminders(store, at(26), 15)
    assert due["id"] == ticket.id and due["waited_minutes"] == 16
    repo.mark_reminded(ticket.id, now=at(26))
    assert due_reminders(store, at(60), 15) == []
    repo.map_message(ticket.id, "out", 3, 103, now=at(61))
    repo.map_message(ticket.id, "in", 4, 104, now=at(70))
    assert [r["id"] for r in due_reminders(store, at(86), 15)] == [ticket.id]  # a new episode
    repo.close(ticket.id)
    assert due_reminders(store, at(200), 15) == []


def test_idle_tickets_count_every_kind_of_activity(repo: TicketRepository, store: Store) -> None:
    quiet, _ = repo.create(1, now=at(0))
    busy, _ = repo.create(2, now=at(0))
    repo.map_message(busy.id, "out", 1, 2, now=at(23 * 60))
    ids = [r["id"] for r in idle_tickets(store, at(24 * 60 + 1), 24)]
    assert ids == [quiet.id]
    assert [r["id"] for r in idle_tickets(store, at(47 * 60 + 1), 24)] == [quiet.id, busy.id]
    repo.close(quiet.id)
    assert [r["id"] for r in idle_tickets(store, at(48 * 60), 24)] == [busy.id]


def test_percentile_known_answers() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 90) == 7
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 90) == pytest.approx(3.7)
    assert percentile(list(range(1, 101)), 50) == 50.5


def test_stats_csat_and_response_times(repo: TicketRepository) -> None:
    plan = [  # (user, first response after min, closed after min, by, rating)
        (1, 2, 30, "staff", 5),
        (2, 4, 60, "customer", 4),
        (3, 10, 90, "staff", 2),
        (4, None, 24 * 60, "idle", None),
    ]
    for user, first, closed, by, rating in plan:
        ticket, _ = repo.create(user, now=at(0))
        repo.map_message(ticket.id, "in", 1, 1, now=at(0))
        if first is not None:
            repo.map_message(ticket.id, "out", 2, 2, now=at(first))
        repo.close(ticket.id, by, now=at(closed))
        if rating:
            repo.rate(ticket.id, rating)
    repo.create(1, now=at(5))  # still open
    stats = repo.stats(since=at(-60), until=at(60))
    assert (stats.opened, stats.closed, stats.open_now, stats.rated) == (5, 4, 1, 3)
    assert stats.csat_mean == pytest.approx(3.67) and stats.csat_satisfied_pct == pytest.approx(66.7)
    assert stats.csat_distribution == {1: 0, 2: 1, 3: 0, 4: 1, 5: 1}
    assert stats.first_response_p50_min == 4.0 and stats.first_response_p90_min == pytest.approx(8.8)
    # Idle closes are not resolutions: only 30, 60 and 90 minutes count.
    assert stats.resolution_p50_min == 60.0 and stats.resolution_p90_min == 84.0
    assert stats.unanswered == 2 and stats.closed_by == {"staff": 2, "customer": 1, "idle": 1}
    assert json.loads(json.dumps(stats.to_dict()))["csat_distribution"]["5"] == 1
    assert repo.stats(since=at(120), until=at(240)).opened == 0


def test_canned_replies(store: Store) -> None:
    canned = CannedReplyRepository(store)
    canned.set("Hello", "你好 {name}，我是客服小鲜～", updated_by=9)
    canned.set("hello", "你好 {name}！")
    assert [r["key"] for r in canned.list()] == ["hello"] and canned.get("HELLO")["text"] == "你好 {name}！"
    with pytest.raises(ValueError):
        canned.set("bad key!", "x")
    with pytest.raises(ValueError):
        canned.set("empty", "   ")
    assert canned.delete("hello") and not canned.delete("hello")


def test_send_reminders_topic_then_general_fallback(repo: TicketRepository, store: Store) -> None:
    a, _ = repo.create(1, now=at(0))
    b, _ = repo.create(2, now=at(0))
    repo.set_thread(a.id, 11)
    repo.set_thread(b.id, 12)
    repo.assign(b.id, 900, "Alice <A>")
    for ticket in (a, b):
        repo.map_message(ticket.id, "in", 1, 1, now=at(1))
    c, _ = repo.create(3, now=at(0))
    repo.set_thread(c.id, 13)
    repo.map_message(c.id, "in", 1, 1, now=at(1))
    notifier = (
        RecordingNotifier()
        .fail(lambda m: m.thread_id == 12, DeliveryError("Bad Request: message thread not found"))
        .fail(lambda m: m.thread_id == 13, DeliveryUnknown("Request timeout error"))  # maybe in the topic
    )
    due = due_reminders(store, at(20), 15)
    counts = asyncio.run(send_reminders(notifier, -100, store, due, now=at(20)))
    assert counts == {"reminded": 3, "failed": 0}
    topic, general = notifier.sent  # no second copy for the unknown one
    assert topic.thread_id == 11 and "19 分钟" in topic.text and topic.chat_id == -100
    assert general.thread_id is None and f"#{b.id}" in general.text
    assert due_reminders(store, at(40), 15) == []


def test_close_idle_tells_customer_and_marks_blocked(repo: TicketRepository, store: Store) -> None:
    zh, _ = repo.create(1, now=at(0))
    en, _ = repo.create(4, now=at(0))
    gone, _ = repo.create(2, now=at(0))
    notifier = RecordingNotifier().fail(2, RecipientBlocked("Forbidden: bot was blocked"))
    idle = idle_tickets(store, at(25 * 60), 24)
    counts = asyncio.run(close_idle(notifier, -100, store, idle, 24, now=at(25 * 60)))
    assert counts == {"closed": 3, "notified": 2}
    texts = {m.chat_id: m.text for m in notifier.sent}
    assert "自动结束" in texts[1] and "closed" in texts[4]
    assert all(repo.get(t.id).closed_by == "idle" for t in (zh, en, gone))
    assert "blocked" in (repo.get(gone.id).delivery_error or "")
    assert store.scalar("SELECT blocked_bot FROM users WHERE id = 2") == 1
    assert sum(m.chat_id == -100 for m in notifier.sent) == 3


def test_jobs_are_registered_and_wait_for_a_notifier(repo: TicketRepository, store: Store, tmp_path: Path) -> None:
    assert {"support_sla", "support_auto_close"} <= set(JOBS)
    ticket, _ = repo.create(1, now=datetime.now(UTC) - timedelta(days=3))
    repo.map_message(ticket.id, "in", 1, 1, now=datetime.now(UTC) - timedelta(days=2))
    settings = Settings(_env_file=None, data_dir=tmp_path, staff_chat_id=-100)  # type: ignore[call-arg]

    def missing() -> Any:
        raise AssertionError("support jobs need no models")

    bare = JobContext(settings, store, missing, missing)
    assert sla_job(bare) == {"due": 1, "reminded": 0}
    assert auto_close_job(bare) == {"idle": 1, "closed": 0}  # never closed without telling the customer
    notifier = RecordingNotifier()
    wired = JobContext(settings, store, missing, missing, outbox=Outbox(notifier))
    assert sla_job(wired)["reminded"] == 1
    assert auto_close_job(wired)["closed"] == 1 and repo.get(ticket.id).status == "closed"


def test_cli_stats_and_canned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xianke.cli import app as cli_app

    if "support" not in {group.name for group in cli_app.registered_groups}:
        from xianke.commands import support

        cli_app.add_typer(support.app, name="support")
    monkeypatch.setenv("XIANKE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("xianke.context._app", None)
    store = Store(tmp_path / "xianke.db")
    UserRepository(store).ensure(1)
    repo = TicketRepository(store)
    ticket, _ = repo.create(1)
    repo.map_message(ticket.id, "in", 1, 1)
    repo.map_message(ticket.id, "out", 2, 2)
    repo.close(ticket.id)
    repo.rate(ticket.id, 5)
    store.close()
    runner = CliRunner()
    added = runner.invoke(cli_app, ["support", "canned", "add", "hi", "你好 {name}"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli_app, ["support", "canned", "list"])
    assert "hi" in listed.output
    result = runner.invoke(cli_app, ["support", "stats", "--days", "7"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["days"] == 7 and last["opened"] == 1 and last["csat_mean"] == 5.0
    assert last["csat_distribution"]["5"] == 1 and last["first_response_p50_min"] is not None
