"""Operations: `xianke doctor` finds what is wrong (and only that), Prometheus metrics are exposed, the
Redis FSM switch fails clearly without the package."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client import generate_latest
from typer.testing import CliRunner

from core.metrics import REGISTRY, watch_job_runs
from core.settings import load_settings
from core.store import Store
from web.ingest import make_ingest_app
from xianke.commands.doctor import check_invariants, check_sqlite, doctor, repair_stale_job_runs, run_checks
from xianke.hardening import FsmStorageError, fsm_storage_kwargs
from xianke.metrics import serve_metrics_port

# -- doctor ---------------------------------------------------------------------------------


def break_things(store: Store) -> None:
    db = store.db
    db.execute("INSERT INTO users (id, first_name) VALUES (1, 'a'), (2, 'b')")
    db.execute("DROP INDEX IF EXISTS tickets_one_open")  # what a bad manual fix could do
    db.execute("INSERT INTO tickets (user_id, status) VALUES (1, 'open'), (1, 'assigned'), (2, 'open')")
    db.execute("INSERT INTO coupons (code, status) VALUES ('A', 'redeemed')")
    db.execute("INSERT INTO coupons (code, status, redeemed_at) VALUES ('B', 'issued', '2026-11-01T00:00:00.000Z')")
    db.execute("INSERT INTO fsm_state (key, data) VALUES ('fsm:1:1:1:default', '{not json')")
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("INSERT INTO orders (external_id, user_id, created_at) VALUES ('X', 999, '2026-11-01')")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("""INSERT INTO campaigns (id, slug, name) VALUES (1, 'c', 'c')""")
    db.execute("""INSERT INTO campaign_assignments (campaign_id, user_id, arm, send_status, claimed_at)
                  VALUES (1, 2, 'treatment', 'sending', '2020-01-01T00:00:00.000Z')""")


def test_doctor_is_quiet_on_a_healthy_database(store: Store) -> None:
    findings = run_checks(store, load_settings(), files=False)
    assert [f for f in findings if f.level != "ok"] == []


def test_doctor_finds_each_broken_invariant(store: Store) -> None:
    break_things(store)
    problems = [(f.check, f.message.split(" ")[0]) for f in
                [*check_sqlite(store), *check_invariants(store)] if f.level == "problem"]
    assert ("tickets", "1") in problems  # one customer with two open tickets
    assert {c for c, _ in problems} >= {"tickets", "coupons", "conversation state", "foreign keys"}
    assert sum(1 for c, _ in problems if c == "coupons") == 2
    warnings = [f for f in check_invariants(store) if f.level == "warning"]
    assert [w.check for w in warnings] == ["broadcasts"]


def test_doctor_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xianke.context

    cli = typer.Typer()
    cli.command("doctor")(doctor)
    cli.command("noop")(lambda: None)  # a second command keeps typer from flattening the app
    db = tmp_path / "x.db"
    Store(db).close()
    monkeypatch.setenv("XIANKE_DB_PATH", str(db))
    monkeypatch.setenv("XIANKE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(xianke.context, "_app", None)
    runner = CliRunner()
    ok = runner.invoke(cli, ["doctor", "--db-only"])
    assert ok.exit_code == 0, ok.output
    assert "0 problem(s)" in ok.output
    store = Store(db)
    break_things(store)
    store.close()
    bad = runner.invoke(cli, ["doctor", "--db-only", "--json"])
    assert bad.exit_code == 1
    findings = json.loads(bad.output)
    assert any(f["level"] == "problem" and f["check"] == "tickets" for f in findings)


def test_doctor_checks_the_index_and_models(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.db")
    findings = run_checks(store, load_settings(data_dir=tmp_path), index_dir=tmp_path / "index")
    store.close()
    by_check = {f.check: f for f in findings}
    assert by_check["catalog index"].level == "warning"  # not built yet: built at first start
    assert by_check["encoder"].level == "warning" and "xianke models build" in by_check["encoder"].message
    assert by_check["sentiment model"].level == "ok"  # the packaged artifact and its checksums


# -- metrics --------------------------------------------------------------------------------


def test_job_runs_are_exposed_from_the_database(store: Store) -> None:
    store.db.execute(
        """INSERT INTO job_runs (job, started_at, finished_at, status, duration_s) VALUES
           ('ingest', '2026-11-28T10:00:00.000Z', '2026-11-28T10:00:02.000Z', 'ok', 2.0),
           ('ingest', '2026-11-28T10:05:00.000Z', '2026-11-28T10:05:01.000Z', 'error', 1.0),
           ('analyze', '2026-11-28T10:00:00.000Z', '2026-11-28T10:00:05.500Z', 'ok', 5.5)"""
    )
    watch_job_runs(store.path)
    text = generate_latest(REGISTRY).decode()
    assert 'xianke_job_runs_total{job="ingest",status="ok"} 1.0' in text
    assert 'xianke_job_runs_total{job="ingest",status="error"} 1.0' in text
    assert 'xianke_job_run_seconds_sum{job="analyze"} 5.5' in text
    assert 'xianke_job_last_success{job="ingest"} 0.0' in text
    assert 'xianke_job_last_success{job="analyze"} 1.0' in text


@pytest.mark.asyncio
async def test_ingest_endpoint_serves_metrics(tmp_path: Path) -> None:
    path = tmp_path / "i.db"
    Store(path).close()
    server = TestServer(make_ingest_app(lambda: Store(path), "tok", salt=b"s"))
    await server.start_server()
    try:
        async with ClientSession() as client:
            body = [{"source": "weibo", "external_id": "m1", "text": "红烧肉好吃", "created_at": "2026-11-20"},
                    {"source": "weibo", "text": ""}]
            async with client.post(server.make_url("/v1/posts"), json=body, headers={"Authorization": "Bearer tok"}) as r:
                assert r.status == 422
            async with client.get(server.make_url("/metrics")) as r:
                text = await r.text()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert 'xianke_ingest_posts_total{outcome="added"}' in text
        assert 'xianke_ingest_posts_total{outcome="rejected"}' in text
    finally:
        await server.close()


def test_metrics_port_for_polling_mode() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_metrics_port(port, host="127.0.0.1")
    serve_metrics_port(port, host="127.0.0.1")  # idempotent
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert b"xianke_updates_total" in resp.read()


# -- Redis FSM switch -----------------------------------------------------------------------


def test_fsm_storage_is_sqlite_unless_redis_is_configured() -> None:
    assert fsm_storage_kwargs(load_settings()) == {}
    assert fsm_storage_kwargs(load_settings(fsm_redis_url="")) == {}
    try:
        import redis  # noqa: F401
    except ImportError:
        with pytest.raises(FsmStorageError, match="pip install"):
            fsm_storage_kwargs(load_settings(fsm_redis_url="redis://localhost:6379/0"))
    else:
        kwargs = fsm_storage_kwargs(load_settings(fsm_redis_url="redis://localhost:6379/0"))
        assert type(kwargs["storage"]).__name__ == "RedisStorage"
        asyncio.run(kwargs["storage"].close())


# -- a store finding the fuzz made (see the issue-8 note) -----------------------------------


def test_read_then_write_transaction_survives_a_concurrent_commit(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "x.db"), Store(tmp_path / "x.db")
    looked = threading.Event()

    def other_connection() -> None:  # e.g. the event loop's connection claiming an update id
        looked.wait(10)
        second.db.execute("INSERT INTO processed_updates (update_id) VALUES (1)")

    thread = threading.Thread(target=other_connection)
    thread.start()
    try:
        with first.transaction():
            first.db.execute("SELECT count(*) FROM users").fetchone()  # like tickets.create: look, then write
            looked.set()
            time.sleep(0.3)  # deferred: the other commits now; immediate: it queues behind this transaction
            first.db.execute("INSERT INTO users (id) VALUES (1)")
        thread.join(10)
        assert first.scalar("SELECT count(*) FROM users") == 1
        assert first.scalar("SELECT count(*) FROM processed_updates") == 1
    finally:
        looked.set()
        thread.join(10)
        first.close()
        second.close()


def test_doctor_repair_closes_stale_job_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.db")
    store.db.execute("INSERT INTO job_runs (job, started_at) VALUES ('analyze', '2026-01-01T00:00:00.000Z')")
    store.db.execute("INSERT INTO job_runs (job, started_at) VALUES ('ingest', '2026-12-02T11:59:00.000Z')")
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert any(f.check == "jobs" and f.level == "warning" for f in check_invariants(store, now))
    assert repair_stale_job_runs(store, now) == 1
    assert not any(f.check == "jobs" for f in check_invariants(store, now))
    rows = store.query("SELECT job, status FROM job_runs ORDER BY id")
    assert [(r["job"], r["status"]) for r in rows] == [("analyze", "error"), ("ingest", "running")]
    store.close()
