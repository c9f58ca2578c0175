"""`xianke doctor`: is this installation consistent? SQLite integrity, foreign keys, the app's own
invariants, and the files beside the database (catalog index, encoder, sentiment model).

Problems (exit code 1) are states the code never produces on purpose — a corrupt page, a dangling
reference, two open tickets for one customer, a redeemed coupon without a redemption time, a model
file that does not match its checksum. Warnings are states a restart or a rerun heals by itself
(a stale catalog index, a broadcast or ingest interrupted by a crash, a pending migration); each
line says what to do. The database is opened without migrating, so the doctor never changes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import typer

from core.migrations import MIGRATIONS
from core.settings import EMBEDDED_ENCODER, EMBEDDED_SENTIMENT, Settings
from core.store import Store

Level = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _count(store: Store, sql: str, params: list[object] | None = None) -> int:
    return int(store.scalar(sql, params) or 0)


def _table(store: Store, name: str) -> bool:
    return store.db[name].exists()


def check_sqlite(store: Store) -> list[Finding]:
    found: list[Finding] = []
    bad = [row[0] for row in store.db.execute("PRAGMA integrity_check") if row[0] != "ok"]
    found += [Finding("problem", "integrity", f"{msg} (restore the latest backup)") for msg in bad[:20]]
    fks = list(store.db.execute("PRAGMA foreign_key_check"))
    for table, rowid, parent, _ in fks[:20]:
        found.append(Finding("problem", "foreign keys", f"{table} row {rowid} points at a missing {parent} row"))
    if len(fks) > 20:
        found.append(Finding("problem", "foreign keys", f"… and {len(fks) - 20} more dangling references"))
    if not found:
        found.append(Finding("ok", "integrity", "SQLite integrity check and foreign keys ok"))
    return found


def check_schema(store: Store) -> list[Finding]:
    applied = set(store.applied_versions())
    known = {m.version for m in MIGRATIONS}
    found: list[Finding] = []
    if known - applied:
        found.append(Finding("warning", "schema", f"pending migrations {sorted(known - applied)}: run `xianke db migrate`"))
    if applied - known:
        found.append(Finding("warning", "schema", f"database has migrations {sorted(applied - known)} this code does not "
                                                  "know (written by a newer version?)"))
    trigger = store.scalar("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'events_no_update'")
    if applied and not trigger:
        found.append(Finding("problem", "schema", "the events append-only trigger is missing"))
    if not found:
        found.append(Finding("ok", "schema", f"schema at version {max(applied) if applied else 0}"))
    return found


def check_invariants(store: Store, now: datetime | None = None) -> list[Finding]:
    """The app's own rules, each one query."""
    now = now or datetime.now(UTC)
    found: list[Finding] = []

    def rule(level: Level, name: str, sql: str, message: str, params: list[object] | None = None) -> None:
        n = _count(store, sql, params)
        if n:
            found.append(Finding(level, name, message.format(n=n)))

    if _table(store, "tickets"):
        rule("problem", "tickets",
             "SELECT count(*) FROM (SELECT user_id FROM tickets WHERE status <> 'closed' GROUP BY user_id HAVING count(*) > 1)",
             "{n} customer(s) with more than one open ticket (close the older ones in the staff group)")
    rule("problem", "coupons", "SELECT count(*) FROM coupons WHERE status = 'redeemed' AND redeemed_at IS NULL",
         "{n} coupon(s) marked redeemed without a redemption time")
    rule("problem", "coupons", "SELECT count(*) FROM coupons WHERE status <> 'redeemed' AND redeemed_at IS NOT NULL",
         "{n} coupon(s) with a redemption time but status not 'redeemed'")
    rule("problem", "posts",
         "SELECT count(*) FROM (SELECT text_hash FROM posts GROUP BY text_hash HAVING count(*) > 1)",
         "{n} duplicated post text hash(es): the dedupe index is missing or was bypassed")
    if not store.scalar("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'posts_text_hash'"):
        found.append(Finding("problem", "posts", "unique index posts_text_hash is missing"))
    rule("problem", "conversation state", "SELECT count(*) FROM fsm_state WHERE data <> '' AND NOT json_valid(data)",
         "{n} FSM row(s) with data that is not JSON (those customers' conversations will reset)")
    rule("problem", "events", "SELECT count(*) FROM events WHERE NOT json_valid(payload)", "{n} event(s) with a payload that is not JSON")
    hour_ago, six_hours_ago = _utc(now - timedelta(hours=1)), _utc(now - timedelta(hours=6))
    rule("warning", "broadcasts",
         "SELECT count(*) FROM campaign_assignments WHERE send_status = 'sending' AND claimed_at < ?",
         "{n} broadcast message(s) left 'sending' by a crash: the next `xianke campaign send` marks them unknown",
         [hour_ago])
    rule("warning", "jobs", "SELECT count(*) FROM job_runs WHERE status = 'running' AND started_at < ?",
         "{n} job run(s) still 'running' after 6 h: the process died mid-run (the next run redoes the work)",
         [six_hours_ago])
    rule("warning", "ingest", "SELECT count(*) FROM ingest_files WHERE status = 'running' AND updated_at < ?",
         "{n} ingest file(s) interrupted: the next ingest resumes them at the last committed batch", [hour_ago])
    if not [f for f in found if f.level == "problem"]:
        found.append(Finding("ok", "invariants", "tickets, coupons, posts, events and FSM state consistent"))
    return found


def check_index(store: Store, settings: Settings, index_dir: Path | None = None) -> list[Finding]:
    """The persisted FAISS index against the catalog and the configured encoder."""
    from core.repos import CatalogRepository
    from nlp.embedder import Embedder
    from recsys.documents import build_documents

    folder = index_dir or settings.data_dir / "index"
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return [Finding("warning", "catalog index", f"no index at {folder}: it is built on the first start of the bot")]
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        items = {int(k): v for k, v in manifest["items"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [Finding("problem", "catalog index", f"{manifest_path} is unreadable ({exc}); delete {folder} to rebuild")]
    found: list[Finding] = []
    try:
        import faiss

        total = faiss.read_index(str(folder / "catalog.faiss")).ntotal
        if total != len(items):
            found.append(Finding("problem", "catalog index", f"index holds {total} vectors, manifest {len(items)}: "
                                                             f"delete {folder} to rebuild"))
    except (RuntimeError, OSError) as exc:
        found.append(Finding("problem", "catalog index", f"catalog.faiss unreadable ({str(exc)[:80]}); delete {folder}"))
    fingerprint = Embedder(settings.encoder_model, settings.models_dir).fingerprint
    if manifest.get("model") != fingerprint:
        found.append(Finding("warning", "catalog index", "built with another encoder: it is rebuilt at the next start"))
    expected = {doc.id: doc.content_hash for doc in build_documents(CatalogRepository(store))}
    if expected != items:
        changed = len(set(expected.items()) ^ set(items.items()))
        found.append(Finding("warning", "catalog index", f"{changed} item(s) differ from the catalog: synced at the next start"))
    if not found:
        found.append(Finding("ok", "catalog index", f"{len(items)} items, matches the catalog and the encoder"))
    return found


def check_models(settings: Settings) -> list[Finding]:
    """Checksums of the embedded encoder and the sentiment artifact (only the embedded defaults)."""
    found: list[Finding] = []
    if settings.encoder_model == EMBEDDED_ENCODER:
        from nlp import encoder_build

        folder = settings.models_dir / encoder_build.MODEL_DIRNAME
        if not folder.exists():
            found.append(Finding("warning", "encoder", f"not built yet: run `xianke models build` ({folder})"))
        elif not encoder_build.verify(folder):
            found.append(Finding("problem", "encoder", f"{folder} does not match its checksum: "
                                                       "run `xianke models build --force`"))
        else:
            found.append(Finding("ok", "encoder", "checksum ok"))
    if settings.sentiment_model == EMBEDDED_SENTIMENT:
        from nlp.sentiment import SentimentArtifactError, _read_manifest, artifact_dir

        folder = artifact_dir(settings.models_dir)
        try:
            _read_manifest(folder)
            found.append(Finding("ok", "sentiment model", f"checksums ok ({folder})"))
        except SentimentArtifactError as exc:
            found.append(Finding("problem", "sentiment model", str(exc)))
    return found


STALE_JOB_HOURS = 6  # no job runs this long; a row still 'running' means its process died


def repair_stale_job_runs(store: Store, now: datetime | None = None) -> int:
    """Close job_runs rows left 'running' by a killed process as errors; returns how many."""
    now = now or datetime.now(UTC)
    with store.transaction() as db:
        cursor = db.execute(
            "UPDATE job_runs SET status = 'error', finished_at = ?, error = ? WHERE status = 'running' AND started_at < ?",
            [_utc(now), "abandoned: the process died mid-run (closed by xianke doctor --repair)",
             _utc(now - timedelta(hours=STALE_JOB_HOURS))],
        )
    return cursor.rowcount


def run_checks(
    store: Store, settings: Settings, *, index_dir: Path | None = None, files: bool = True,
    now: datetime | None = None,
) -> list[Finding]:
    """Every check; `files=False` skips the index and model files (database only)."""
    checks: list[Callable[[], list[Finding]]] = [
        lambda: check_sqlite(store), lambda: check_schema(store), lambda: check_invariants(store, now),
    ]
    if files:
        checks += [lambda: check_index(store, settings, index_dir), lambda: check_models(settings)]
    found: list[Finding] = []
    for check in checks:
        try:
            found += check()
        except Exception as exc:  # a check that cannot run is itself a finding, not a crash
            found.append(Finding("problem", "doctor", f"a check failed to run: {type(exc).__name__}: {exc}"))
    return found


def doctor(
    db_only: bool = typer.Option(False, "--db-only", help="Check the database only (skip index and model files)."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON (for monitoring)."),
    repair: bool = typer.Option(False, "--repair", help="Close job runs left 'running' by a killed process, then check."),
) -> None:
    """Check the installation: database integrity, foreign keys, app invariants (one open ticket per
    customer, coupon states, unique posts), the catalog index, encoder and sentiment checksums.
    Exit code 1 when a problem is found; warnings say what heals by itself or what to run."""
    from xianke.context import console, fail, get_app

    app = get_app()
    settings = app.settings
    path = settings.database_path
    if not path.exists():
        raise fail(f"no database at {path}: set XIANKE_DB_PATH or run `xianke db migrate` to create one")
    store = Store(path, migrate=False)
    try:
        if repair:
            console.print(f"repaired {repair_stale_job_runs(store)} stale job run(s)")
        findings = run_checks(store, settings, index_dir=app.index_dir, files=not db_only)
    finally:
        store.close()
    problems = [f for f in findings if f.level == "problem"]
    if as_json:
        console.print_json(json.dumps([f.__dict__ for f in findings], ensure_ascii=False))
    else:
        marks = {"ok": "[green]✓[/green]", "warning": "[yellow]![/yellow]", "problem": "[red]✗[/red]"}
        console.print(f"xianke doctor: {path}")
        for finding in findings:
            console.print(f"{marks[finding.level]} {finding.check}: {finding.message}")
        warnings = sum(f.level == "warning" for f in findings)
        console.print(f"{len(problems)} problem(s), {warnings} warning(s)")
    if problems:
        raise typer.Exit(1)
