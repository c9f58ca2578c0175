"""The job registry: what can run on a schedule, how often, and what each run gets to work with.

Issues add jobs with `register_job("digest", JobSpec(func, trigger, description))`. A job function
takes a `JobContext` and returns counts (e.g. {"added": 12}) that are recorded in `job_runs`.
Job functions are imported lazily so `xianke jobs list` does not load jieba, torch or sklearn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.settings import Settings
from core.store import Store

if TYPE_CHECKING:
    from nlp.embedder import Embedder

Counts = Mapping[str, Any]
# (stage, done, total or None): a CLI progress bar or a no-op in the scheduler.
Progress = Callable[[str, int, int | None], None]


def no_progress(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass
class JobContext:
    """Everything a job run may use. `store` is opened for this run, in the thread that runs it."""

    settings: Settings
    store: Store
    get_embedder: Callable[[], Embedder]
    get_sentiment: Callable[[], Any]  # nlp.sentiment.SentimentModel, loaded only by jobs that need it
    progress: Progress = no_progress
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. a notifier wired by the composition root

    @property
    def embedder(self) -> Embedder:
        return self.get_embedder()

    @property
    def sentiment(self) -> Any:
        return self.get_sentiment()


TriggerFactory = Callable[[Settings], BaseTrigger]


@dataclass(frozen=True)
class JobSpec:
    func: Callable[[JobContext], Counts]
    trigger: BaseTrigger | TriggerFactory  # a factory lets the schedule come from settings
    description: str

    def make_trigger(self, settings: Settings) -> BaseTrigger:
        return self.trigger if isinstance(self.trigger, BaseTrigger) else self.trigger(settings)


JOBS: dict[str, JobSpec] = {}


def register_job(name: str, spec: JobSpec) -> JobSpec:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"job name {name!r}: use letters, digits, - and _")
    JOBS[name] = spec
    return spec


# -- the listening jobs ---------------------------------------------------------


def _ingest(ctx: JobContext) -> Counts:
    from jobs.ingest import ingest_job

    return ingest_job(ctx)


def _analyze(ctx: JobContext) -> Counts:
    from jobs.analysis import analyze_job

    return analyze_job(ctx)


def _topics(ctx: JobContext) -> Counts:
    from jobs.analysis import topics_job

    return topics_job(ctx)


def _minutes(setting: str, default: int) -> TriggerFactory:
    # Interval settings are optional: read them if the Settings class has them, else use the default.
    def make(settings: Settings) -> BaseTrigger:
        minutes = int(getattr(settings, setting, None) or default)
        return IntervalTrigger(minutes=minutes, timezone=settings.zone)

    return make


register_job(
    "ingest",
    JobSpec(
        _ingest,
        _minutes("ingest_every_min", 5),
        "Ingest files waiting in the drop folder (<data_dir>/inbox).",
    ),
)
register_job(
    "analyze",
    JobSpec(_analyze, _minutes("analyze_every_min", 10), "Embed, score sentiment and aspects of new posts."),
)
register_job(
    "topics",
    JobSpec(
        _topics,
        _minutes("topics_every_min", int(timedelta(hours=6).total_seconds() // 60)),
        "Re-cluster posts into topics (stable ids, emerging topics flagged).",
    ),
)
