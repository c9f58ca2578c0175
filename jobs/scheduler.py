"""APScheduler 3 with a persistent SQLite job store, and a runner that records every run in `job_runs`.

Persistent jobs must be serialisable, so the scheduler stores only `run_scheduled(name)`; the live
`JobRunner` (with its settings, store opener and models) is registered in this process by
`build_scheduler`. A restart therefore keeps each job's next run time, and a job that was due while
the process was down runs once (coalesced) if it is within the misfire grace time.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

from core.logging import log_event
from core.settings import Settings
from core.store import Store, dumps, loads
from jobs.registry import JOBS, JobContext, JobSpec, Outbox, Progress, no_progress

log = logging.getLogger(__name__)

MISFIRE_GRACE_S = 15 * 60
RUN_FUNC_REF = "jobs.scheduler:run_scheduled"


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- persistent job store -----------------------------------------------------


class SQLiteJobStore(BaseJobStore):
    """APScheduler jobs in our own SQLite file (table `scheduler_jobs`, created by migration 6).

    Same layout and pickled job state as APScheduler's SQLAlchemy store, without SQLAlchemy. It owns
    its connection and serialises access with a lock, because the scheduler thread and callers
    (add_job, get_jobs) use it concurrently.
    """

    def __init__(self, path: Path | str, pickle_protocol: int = pickle.HIGHEST_PROTOCOL):
        super().__init__()
        self.path = Path(path)
        self.pickle_protocol = pickle_protocol
        self._store = Store(self.path)
        self._lock = threading.RLock()

    def _rows(self, where: str = "", params: list[Any] | None = None) -> list[dict[str, Any]]:
        # Paused jobs (NULL next run) sort last, as APScheduler expects.
        sql = (
            f"SELECT id, job_state FROM scheduler_jobs {where} ORDER BY next_run_time IS NULL, next_run_time"
        )
        with self._lock:
            return self._store.query(sql, params)

    def _reconstitute(self, state: bytes) -> Job:
        job_state = pickle.loads(state)
        job_state["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(job_state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _jobs(self, where: str = "", params: list[Any] | None = None) -> list[Job]:
        jobs, broken = [], []
        for row in self._rows(where, params):
            try:
                jobs.append(self._reconstitute(row["job_state"]))
            except Exception:  # a job whose function moved away: drop it rather than crash every tick
                self._logger.exception('Unable to restore job "%s" -- removing it', row["id"])
                broken.append(row["id"])
        for job_id in broken:
            self._execute("DELETE FROM scheduler_jobs WHERE id = ?", [job_id])
        return jobs

    def _execute(self, sql: str, params: list[Any]) -> int:
        with self._lock, self._store.transaction() as db:
            return db.execute(sql, params).rowcount

    def lookup_job(self, job_id: str) -> Job | None:
        with self._lock:
            state = self._store.scalar("SELECT job_state FROM scheduler_jobs WHERE id = ?", [job_id])
        return self._reconstitute(state) if state else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        return self._jobs("WHERE next_run_time <= ?", [datetime_to_utc_timestamp(now)])

    def get_next_run_time(self) -> datetime | None:
        with self._lock:
            value = self._store.scalar(
                "SELECT min(next_run_time) FROM scheduler_jobs WHERE next_run_time IS NOT NULL"
            )
        return utc_timestamp_to_datetime(value)

    def get_all_jobs(self) -> list[Job]:
        return self._jobs()

    def add_job(self, job: Job) -> None:
        state = pickle.dumps(job.__getstate__(), self.pickle_protocol)
        with self._lock:
            if self._store.scalar("SELECT 1 FROM scheduler_jobs WHERE id = ?", [job.id]):
                raise ConflictingIdError(job.id)
            self._execute(
                "INSERT INTO scheduler_jobs (id, next_run_time, job_state) VALUES (?, ?, ?)",
                [job.id, datetime_to_utc_timestamp(job.next_run_time), state],
            )

    def update_job(self, job: Job) -> None:
        state = pickle.dumps(job.__getstate__(), self.pickle_protocol)
        changed = self._execute(
            "UPDATE scheduler_jobs SET next_run_time = ?, job_state = ? WHERE id = ?",
            [datetime_to_utc_timestamp(job.next_run_time), state, job.id],
        )
        if changed == 0:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        if self._execute("DELETE FROM scheduler_jobs WHERE id = ?", [job_id]) == 0:
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        self._execute("DELETE FROM scheduler_jobs", [])

    def stored_states(self) -> dict[str, dict[str, Any]]:
        """Raw stored job states by id (no scheduler needed): trigger, func ref, next_run_time."""
        with self._lock:
            rows = self._store.query("SELECT id, job_state FROM scheduler_jobs")
        return {row["id"]: pickle.loads(row["job_state"]) for row in rows}

    def shutdown(self) -> None:
        with self._lock:
            self._store.close()

    def __repr__(self) -> str:
        return f"<SQLiteJobStore ({self.path})>"


# -- running and recording jobs ------------------------------------------------


@dataclass
class JobRunResult:
    job: str
    run_id: int
    status: str  # ok | error
    counts: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None


class JobRunner:
    """Runs a registered job with a fresh store connection and records it in `job_runs`."""

    def __init__(
        self,
        settings: Settings,
        open_store: Callable[[], Store],
        *,
        get_embedder: Callable[[], Any] | None = None,
        get_sentiment: Callable[[], Any] | None = None,
        specs: Mapping[str, JobSpec] | None = None,
        outbox: Outbox | None = None,
    ):
        self.settings = settings
        self.open_store = open_store
        self.get_embedder = get_embedder or _missing("embedder")
        self.get_sentiment = get_sentiment or _missing("sentiment model")
        self.specs = specs if specs is not None else JOBS
        self.outbox = outbox

    def run(self, name: str, progress: Progress = no_progress) -> JobRunResult:
        if name not in self.specs:
            raise KeyError(f"unknown job {name!r}; known: {', '.join(sorted(self.specs))}")
        store = self.open_store()
        try:
            started = datetime.now(UTC)
            with store.transaction() as db:
                run_id = db.execute(
                    "INSERT INTO job_runs (job, started_at, status) VALUES (?, ?, 'running')",
                    [name, format_utc(started)],
                ).lastrowid
            context = JobContext(
                self.settings, store, self.get_embedder, self.get_sentiment, progress, self.outbox
            )
            clock = time.perf_counter()
            try:
                counts = dict(self.specs[name].func(context) or {})
                result = JobRunResult(name, run_id, "ok", counts)
            except Exception as exc:  # any job failure is recorded, never allowed to kill the scheduler
                error = f"{type(exc).__name__}: {exc}"
                log_event(
                    log, "job failed", logging.ERROR, job=name, error=error, trace=traceback.format_exc()
                )
                result = JobRunResult(name, run_id, "error", error=error[:2000])
            result.duration_s = time.perf_counter() - clock
            with store.transaction() as db:
                db.execute(
                    """UPDATE job_runs SET finished_at = ?, status = ?, counts = ?, error = ?, duration_s = ?
                       WHERE id = ?""",
                    [
                        format_utc(datetime.now(UTC)),
                        result.status,
                        dumps(result.counts),
                        result.error,
                        round(result.duration_s, 3),
                        run_id,
                    ],
                )
            log_event(
                log,
                "job finished",
                job=name,
                status=result.status,
                duration_s=round(result.duration_s, 3),
                **{f"n_{k}": v for k, v in result.counts.items()},
            )
            return result
        finally:
            store.close()


def _missing(what: str) -> Callable[[], Any]:
    def fail() -> Any:
        raise RuntimeError(f"this job needs the {what}, but the runner was built without it")

    return fail


# One live runner per process: persisted jobs reference `run_scheduled` by name, not the runner.
_ACTIVE_RUNNER: JobRunner | None = None


def run_scheduled(name: str) -> None:
    """What the persistent store schedules. Runs the job with the runner registered by build_scheduler."""
    if _ACTIVE_RUNNER is None:
        raise RuntimeError("no job runner registered: build the scheduler with build_scheduler()")
    _ACTIVE_RUNNER.run(name)


# -- the scheduler ---------------------------------------------------------------


def build_scheduler(
    settings: Settings,
    runner: JobRunner,
    *,
    jobstore: BaseJobStore | None = None,
    misfire_grace_s: int = MISFIRE_GRACE_S,
) -> BackgroundScheduler:
    """A not-yet-started BackgroundScheduler with every job in `runner.specs` scheduled.

    Jobs already in the persistent store with the same trigger keep their next run time; jobs whose
    trigger changed are rescheduled; stored jobs no longer registered are removed.
    """
    global _ACTIVE_RUNNER
    _ACTIVE_RUNNER = runner
    store = jobstore if jobstore is not None else SQLiteJobStore(settings.database_path)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        # One worker: jobs share one SQLite file and the CPU; running them in turn is faster overall.
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "misfire_grace_time": misfire_grace_s, "max_instances": 1},
        timezone=settings.zone,
    )
    scheduler.add_listener(_log_missed, EVENT_JOB_MISSED)
    stored = store.stored_states() if isinstance(store, SQLiteJobStore) else {}
    for job_id in set(stored) - set(runner.specs):
        store.remove_job(job_id)
    for name, spec in runner.specs.items():
        trigger = spec.make_trigger(settings)
        old = stored.get(name)
        if old is not None and str(old["trigger"]) == str(trigger) and old["func"] == RUN_FUNC_REF:
            continue  # keep the persisted next run time
        scheduler.add_job(RUN_FUNC_REF, trigger, args=[name], id=name, name=name, replace_existing=True)
    return scheduler


def _log_missed(event: JobExecutionEvent) -> None:
    log_event(log, "job run missed (past misfire grace)", logging.WARNING, job=event.job_id)


# -- reporting ------------------------------------------------------------------


def next_runs(store: Store) -> dict[str, datetime | None]:
    """Next run time of each persisted job (None when paused); read without starting a scheduler."""
    if not store.db["scheduler_jobs"].exists():
        return {}
    return {
        row["id"]: utc_timestamp_to_datetime(row["next_run_time"])
        for row in store.query("SELECT id, next_run_time FROM scheduler_jobs")
    }


def last_runs(store: Store) -> dict[str, dict[str, Any]]:
    """The latest job_runs row per job, counts decoded."""
    rows = store.query(
        """SELECT r.* FROM job_runs r
           JOIN (SELECT job, max(id) AS id FROM job_runs GROUP BY job) last ON last.id = r.id"""
    )
    return {row["job"]: {**row, "counts": loads(row["counts"], {})} for row in rows}
