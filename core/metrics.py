"""Prometheus metrics shared by every front door (bot, ingest endpoint, jobs).

The metric objects live here, in the lowest layer, so `bot` and `jobs` can both record into them
without importing each other or `xianke`. Each process exposes its own registry at GET /metrics
(webhook app, ingest app) or on `XIANKE_METRICS_PORT` (polling mode, see xianke.metrics).

Job runs are read from the `job_runs` table at scrape time rather than counted in memory: the
scheduler is a separate process without an HTTP port, and the table is the durable record anyway,
so any process's /metrics shows every job's runs, status and durations, also across restarts.
With several webhook workers each one exposes the same job figures: aggregate them with max(), not sum().
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

UPDATES = Counter("xianke_updates_total", "Telegram updates received, by update type.", ["type"])
UPDATE_SECONDS = Histogram(
    "xianke_update_seconds",
    "Wall time to process one update (middlewares + handler + Bot API calls), by update type.",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
UPDATE_ERRORS = Counter(
    "xianke_update_errors_total", "Updates whose handler raised (answered by the error handler).", ["type", "error"]
)
TELEGRAM_RETRIES = Counter(
    "xianke_telegram_retries_total", "Bot API requests retried after a 429 (flood control).", ["method"]
)
INGEST_POSTS = Counter(
    "xianke_ingest_posts_total", "Posts received by the HTTP ingest endpoint, by outcome.", ["outcome"]
)


def render() -> tuple[bytes, str]:
    """The text exposition of this process's registry and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


async def metrics_view(request: Any) -> Any:
    """aiohttp handler for GET /metrics (aiohttp imported lazily: core stays light)."""
    from aiohttp import web

    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


class JobRunsCollector(Collector):
    """xianke_job_runs_total{job,status}, xianke_job_run_seconds{job} (count/sum) and the latest run's
    finish time, duration and success, read from `job_runs` in the SQLite file at scrape time."""

    def __init__(self, db_path: Path | str):
        self.db_path = str(db_path)

    def collect(self) -> Iterator[Any]:
        runs = CounterMetricFamily("xianke_job_runs", "Job runs recorded in job_runs, by job and status.",
                                   labels=["job", "status"])
        seconds = SummaryMetricFamily("xianke_job_run_seconds", "Duration of finished job runs.", labels=["job"])
        last_finish = GaugeMetricFamily("xianke_job_last_finished_timestamp_seconds",
                                        "When the latest finished run of each job ended (Unix time).", labels=["job"])
        last_ok = GaugeMetricFamily("xianke_job_last_success", "1 if the latest finished run succeeded.", labels=["job"])
        last_duration = GaugeMetricFamily("xianke_job_last_duration_seconds", "Duration of the latest finished run.",
                                          labels=["job"])
        try:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=2)
        except sqlite3.Error:
            return
        try:
            for job, status, n in conn.execute("SELECT job, status, count(*) FROM job_runs GROUP BY job, status"):
                runs.add_metric([job, status], n)
            for job, n, total in conn.execute(
                "SELECT job, count(*), coalesce(sum(duration_s), 0) FROM job_runs WHERE duration_s IS NOT NULL GROUP BY job"
            ):
                seconds.add_metric([job], n, total)
            for job, status, finished, duration in conn.execute(
                """SELECT r.job, r.status, CAST(strftime('%s', r.finished_at) AS REAL), r.duration_s FROM job_runs r
                   JOIN (SELECT job, max(id) AS id FROM job_runs WHERE finished_at IS NOT NULL GROUP BY job) last
                     ON last.id = r.id"""
            ):
                if finished is not None:
                    last_finish.add_metric([job], finished)
                last_ok.add_metric([job], 1.0 if status == "ok" else 0.0)
                if duration is not None:
                    last_duration.add_metric([job], duration)
        except sqlite3.Error:  # no job_runs table yet, or the file is busy: expose what we have
            pass
        finally:
            conn.close()
        yield from (runs, seconds, last_finish, last_ok, last_duration)

    def describe(self) -> list[Any]:
        return []  # collected lazily; describing would open the database at registration


_WATCHED: list[JobRunsCollector] = []


def watch_job_runs(db_path: Path | str) -> None:
    """Expose job runs of this SQLite file on this process's /metrics. A process serves one database;
    a later call (tests open many) points the one collector at the new file."""
    path = str(Path(db_path).resolve())
    if _WATCHED:
        _WATCHED[0].db_path = path
        return
    collector = JobRunsCollector(path)
    REGISTRY.register(collector)
    _WATCHED.append(collector)
