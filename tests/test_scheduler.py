"""APScheduler with our SQLite job store: persistence across restarts, misfires, run records, failures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.settings import Settings
from core.store import Store
from jobs.registry import JOBS, JobContext, JobSpec
from jobs.scheduler import JobRunner, build_scheduler, last_runs, next_runs


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, db_path=tmp_path / "sched.db")


def runner_for(settings: Settings, specs: dict[str, JobSpec]) -> JobRunner:
    return JobRunner(settings, lambda: Store(settings.database_path), specs=specs)


@pytest.fixture
def schedulers() -> Iterator[list[BackgroundScheduler]]:
    started: list[BackgroundScheduler] = []
    yield started
    for scheduler in started:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def start(settings: Settings, specs: dict[str, JobSpec], schedulers: list) -> BackgroundScheduler:
    scheduler = build_scheduler(settings, runner_for(settings, specs))
    scheduler.start()
    schedulers.append(scheduler)
    return scheduler


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def runs(settings: Settings, job: str) -> list[dict]:
    store = Store(settings.database_path)
    try:
        return store.query("SELECT * FROM job_runs WHERE job = ? ORDER BY id", [job])
    finally:
        store.close()


def counting_job(ctx: JobContext) -> dict:
    ctx.progress("work", 1, 1)
    return {"processed": 3}


def failing_job(ctx: JobContext) -> dict:
    raise ValueError("feed is down")


def test_next_run_time_survives_a_restart(settings: Settings, schedulers: list) -> None:
    specs = {"hourly": JobSpec(counting_job, IntervalTrigger(hours=1), "test job")}
    first = start(settings, specs, schedulers)
    planned = first.get_job("hourly").next_run_time
    first.shutdown(wait=True)
    time.sleep(0.1)  # a re-added job would now be planned 0.1 s later

    second = start(settings, specs, schedulers)
    assert second.get_job("hourly").next_run_time == planned
    store = Store(settings.database_path)
    try:
        assert next_runs(store)["hourly"] == planned.astimezone(UTC)
    finally:
        store.close()
    second.shutdown(wait=True)

    # A changed schedule replaces the stored one; jobs no longer registered are dropped.
    third = start(settings, {"hourly": JobSpec(counting_job, IntervalTrigger(hours=2), "")}, schedulers)
    assert third.get_job("hourly").next_run_time > planned
    third.shutdown(wait=True)
    fourth = start(settings, {"other": JobSpec(counting_job, IntervalTrigger(hours=1), "")}, schedulers)
    assert [job.id for job in fourth.get_jobs()] == ["other"]


def test_missed_runs_while_down_are_coalesced_into_one(settings: Settings, schedulers: list) -> None:
    specs = {"every5": JobSpec(counting_job, IntervalTrigger(minutes=5), "")}
    # Pretend the process was down for 12 minutes: three runs were missed, all within the misfire grace.
    paused = build_scheduler(settings, runner_for(settings, specs))
    paused.start(paused=True)
    paused.get_job("every5").modify(next_run_time=datetime.now(UTC) - timedelta(minutes=12))
    paused.shutdown(wait=True)

    scheduler = start(settings, specs, schedulers)
    wait_for(lambda: len(runs(settings, "every5")) >= 1)
    time.sleep(0.5)
    assert len(runs(settings, "every5")) == 1  # one catch-up run, not three
    assert scheduler.get_job("every5").next_run_time > datetime.now(UTC)


def test_runs_are_recorded_and_a_failing_job_does_not_stop_the_scheduler(
    settings: Settings, schedulers: list
) -> None:
    specs = {
        "good": JobSpec(counting_job, IntervalTrigger(hours=1), ""),
        "bad": JobSpec(failing_job, IntervalTrigger(hours=1), ""),
    }
    scheduler = start(settings, specs, schedulers)
    now = datetime.now(UTC)
    scheduler.get_job("bad").modify(next_run_time=now)
    wait_for(lambda: any(r["status"] == "error" for r in runs(settings, "bad")))
    scheduler.get_job("good").modify(next_run_time=datetime.now(UTC))
    wait_for(lambda: any(r["status"] == "ok" for r in runs(settings, "good")))
    assert scheduler.running

    bad = runs(settings, "bad")[-1]
    assert bad["error"] == "ValueError: feed is down" and bad["finished_at"] and bad["duration_s"] is not None
    good = runs(settings, "good")[-1]
    assert json.loads(good["counts"]) == {"processed": 3} and good["duration_s"] >= 0
    store = Store(settings.database_path)
    try:
        latest = last_runs(store)
    finally:
        store.close()
    assert latest["bad"]["status"] == "error" and latest["good"]["counts"] == {"processed": 3}


def test_run_now_reports_progress_and_result(settings: Settings) -> None:
    seen: list[tuple] = []
    runner = runner_for(settings, {"count": JobSpec(counting_job, IntervalTrigger(hours=1), "")})
    result = runner.run("count", progress=lambda *args: seen.append(args))
    assert result.status == "ok" and result.counts == {"processed": 3}
    assert seen == [("work", 1, 1)]
    with pytest.raises(KeyError, match="unknown job"):
        runner.run("nope")


def test_registry_has_the_listening_jobs_and_ingest_runs_from_the_drop_folder(settings: Settings) -> None:
    assert {"ingest", "analyze", "topics"} <= set(JOBS)
    for spec in JOBS.values():
        assert spec.description and spec.make_trigger(settings)
    inbox = settings.data_dir / "inbox"
    inbox.mkdir()
    row = {
        "source": "weibo",
        "external_id": "1",
        "text": "今天的鲈鱼很新鲜",
        "created_at": "2026-11-27T08:00:00Z",
    }
    (inbox / "a.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    result = JobRunner(settings, lambda: Store(settings.database_path)).run("ingest")
    assert result.status == "ok", result.error
    assert result.counts["added"] == 1 and result.counts["files"] == 1
    assert (inbox / "processed" / "a.jsonl").exists()
