"""Crash safety: SIGKILL in the middle of analysis, a migration and the retention purge; after a restart
nothing is lost and nothing is done twice.

The kill is aimed, not timed: the worker process announces (in a marker file) that it is *inside* an
open transaction and then stalls there, and the test kills it at that moment. So every run tests the
hard case — work half-written in SQLite's WAL — rather than a lucky gap between transactions.

The other two crash paths the issue names already have their tests, which this file does not repeat:
- ingest: tests/test_ingest.py::test_sigkill_mid_file_then_rerun_loses_nothing_and_duplicates_nothing
- broadcast: tests/test_broadcast.py::test_killed_process_resumes_without_sending_twice (and the
  cancelled-run variant above it), plus the 429 storm in tests/test_flood_control.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import pytest

from core.migrations import MIGRATIONS, Migration
from core.store import Store
from listening.analysis import analyze_new_posts
from listening.retention import purge_raw_posts
from tests.hardening_helpers import HashEmbedder

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]


def _spawn(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill_when(proc: subprocess.Popen[str], marker: Path, timeout: float = 60) -> None:
    """SIGKILL `proc` as soon as `marker` exists (it is written from inside an open transaction)."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"worker ended before the kill point (rc={proc.returncode}):\n{err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("worker never reached the kill point")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


# -- analysis ---------------------------------------------------------------------------

N_POSTS, BATCH, KILL_IN_BATCH = 200, 16, 5

_ANALYSIS_WORKER = """
    import sys, time
    from collections import namedtuple
    from pathlib import Path
    from core.store import Store
    from listening.analysis import analyze_new_posts
    from tests.hardening_helpers import HashEmbedder

    db, marker, kill_in = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    Result = namedtuple("Result", "label score")

    class StallingSentiment:
        batches = 0
        def predict(self, texts, embeddings=None):
            self.batches += 1
            if self.batches == kill_in:  # inside analyze's transaction: vectors written, labels not yet
                marker.write_text("in transaction")
                time.sleep(60)
            return [Result("positive" if len(t) % 2 else "negative", 0.9) for t in texts]

    analyze_new_posts(Store(db), HashEmbedder(), StallingSentiment(), batch=int(sys.argv[4]))
"""

Result = namedtuple("Result", "label score")


class CountingSentiment:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, texts: list[str], embeddings: object = None) -> list[Result]:
        self.seen += texts
        return [Result("positive" if len(t) % 2 else "negative", 0.9) for t in texts]


def _posts(store: Store, n: int) -> None:
    with store.transaction() as db:
        for i in range(n):
            text = f"第{i}条 红烧肉做法简单 post-{i}"
            db.execute(
                """INSERT INTO posts (source, external_id, text, text_norm, text_hash, created_at)
                   VALUES ('weibo', ?, ?, ?, ?, '2026-11-20T02:00:00.000Z')""",
                [f"p{i}", text, text, f"h{i}"],
            )


def test_sigkill_mid_analysis_then_rerun_analyses_every_post_exactly_once(tmp_path: Path) -> None:
    db_path, marker = tmp_path / "a.db", tmp_path / "in-txn"
    store = Store(db_path)
    _posts(store, N_POSTS)
    # Evidence table: one row per committed analysis of a post. A trigger writes it inside the same
    # transaction, so work rolled back by the crash leaves no row, and a post analysed twice leaves two.
    store.db.execute("CREATE TABLE analysis_log (post_id INTEGER NOT NULL)")
    store.db.execute(
        """CREATE TRIGGER log_analysis AFTER UPDATE OF analyzed_at ON posts WHEN NEW.analyzed_at IS NOT NULL
           BEGIN INSERT INTO analysis_log VALUES (NEW.id); END"""
    )
    store.close()

    _kill_when(_spawn(_ANALYSIS_WORKER, db_path, marker, KILL_IN_BATCH, BATCH), marker)

    store = Store(db_path)
    try:
        assert store.integrity_problems() == []
        done = store.scalar("SELECT count(*) FROM posts WHERE analyzed_at IS NOT NULL")
        assert done == (KILL_IN_BATCH - 1) * BATCH, "committed batches survive, the open one is rolled back"
        assert store.scalar("SELECT count(*) FROM posts WHERE analyzed_at IS NULL AND embedding IS NOT NULL") == 0

        sentiment = CountingSentiment()
        counts = analyze_new_posts(store, HashEmbedder(), sentiment, batch=BATCH)
        assert counts["analyzed"] == N_POSTS - done
        assert len(sentiment.seen) == N_POSTS - done  # the rerun touches only what was not committed
        per_post = dict(store.db.execute("SELECT post_id, count(*) FROM analysis_log GROUP BY post_id").fetchall())
        assert len(per_post) == N_POSTS and set(per_post.values()) == {1}
        assert store.scalar("SELECT count(*) FROM posts WHERE sentiment IS NULL OR embedding IS NULL") == 0
        assert analyze_new_posts(store, HashEmbedder(), sentiment, batch=BATCH)["analyzed"] == 0
    finally:
        store.close()


# -- migration --------------------------------------------------------------------------

SLOW_STEPS = 120
SLOW_MIGRATION = Migration(
    999, "crash_probe",
    ("CREATE TABLE crash_probe (step INTEGER PRIMARY KEY, note TEXT)",
     "ALTER TABLE users ADD COLUMN crash_probe_flag INTEGER NOT NULL DEFAULT 0",
     *(f"INSERT INTO crash_probe VALUES ({i}, xk_tick({i}))" for i in range(SLOW_STEPS)),
     "CREATE INDEX crash_probe_note ON crash_probe(note)"),
)

_MIGRATION_WORKER = """
    import sys, time
    from pathlib import Path
    from core.migrations import MIGRATIONS, Migration
    from core.store import Store
    from tests.test_crash_safety import SLOW_MIGRATION

    db, marker = sys.argv[1], Path(sys.argv[2])

    def tick(step):
        if step == 60:  # half of the statements ran inside the migration's transaction
            marker.write_text("mid-migration")
            time.sleep(60)
        return f"step {step}"

    store = Store(db, migrate=False)
    store.db.conn.create_function("xk_tick", 1, tick)
    store.migrate((*MIGRATIONS, SLOW_MIGRATION))
"""


def test_sigkill_mid_migration_leaves_no_half_migration_and_reapplies_cleanly(tmp_path: Path) -> None:
    db_path, marker = tmp_path / "m.db", tmp_path / "mid"
    store = Store(db_path)  # the real schema, fully applied
    store.db.execute("INSERT INTO users (id, first_name) VALUES (1, '小美')")
    before = store.applied_versions()
    store.close()

    _kill_when(_spawn(_MIGRATION_WORKER, db_path, marker), marker)

    store = Store(db_path, migrate=False)
    try:
        assert store.integrity_problems() == []
        assert store.applied_versions() == before  # 999 not recorded …
        assert not store.db["crash_probe"].exists()  # … and none of its statements survived
        assert "crash_probe_flag" not in {c.name for c in store.db["users"].columns}
        assert store.query("SELECT first_name FROM users") == [{"first_name": "小美"}]

        store.db.conn.create_function("xk_tick", 1, lambda step: f"step {step}")
        assert store.migrate((*MIGRATIONS, SLOW_MIGRATION)) == [999]
        assert store.scalar("SELECT count(*) FROM crash_probe") == SLOW_STEPS
        assert store.applied_versions() == [*before, 999]
        assert store.migrate((*MIGRATIONS, SLOW_MIGRATION)) == []  # idempotent from now on
    finally:
        store.close()


# -- retention --------------------------------------------------------------------------

_RETENTION_WORKER = """
    import sys, time
    from pathlib import Path
    from core.store import Store
    from listening import retention

    db, marker = sys.argv[1], Path(sys.argv[2])
    real = retention.scrub_posts
    calls = []

    def stalling(store, ids, **kwargs):
        changed = real(store, ids, **kwargs)
        calls.append(1)
        if len(calls) == 3:  # the third batch is scrubbed but its transaction not yet committed
            marker.write_text("in transaction")
            time.sleep(60)
        return changed

    retention.scrub_posts = stalling
    retention.purge_raw_posts(Store(db), 30, batch=10)
"""


def test_sigkill_mid_retention_keeps_finished_batches_and_the_rerun_completes(tmp_path: Path) -> None:
    db_path, marker = tmp_path / "r.db", tmp_path / "in-txn"
    store = Store(db_path)
    _posts(store, 60)
    store.db.execute("UPDATE posts SET sentiment = 'positive', created_at = '2025-01-01T00:00:00.000Z' WHERE id <= 45")
    store.close()

    _kill_when(_spawn(_RETENTION_WORKER, db_path, marker), marker)

    store = Store(db_path)
    try:
        assert store.scalar("SELECT count(*) FROM posts WHERE purged_at IS NOT NULL") == 20
        assert store.scalar("SELECT count(*) FROM posts WHERE purged_at IS NOT NULL AND text <> ''") == 0
        counts = purge_raw_posts(store, 30)
        assert counts["purged"] == 25 and counts["kept"] == 15
        assert store.scalar("SELECT count(*) FROM posts WHERE sentiment = 'positive'") == 45  # trends survive
        assert purge_raw_posts(store, 30)["purged"] == 0
    finally:
        store.close()
