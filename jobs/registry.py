"""The job registry: what can run on a schedule, how often, and what each run gets to work with.

Issues add jobs with `register_job("digest", JobSpec(func, trigger, description))`. A job function
(in jobs/tasks.py) takes a `JobContext` and returns counts (e.g. {"added": 12}) that are recorded in
`job_runs`. Job functions are imported lazily so `xianke jobs list` does not load jieba, torch or sklearn.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.notify import Notifier
from core.settings import Settings
from core.store import Store

if TYPE_CHECKING:
    from nlp.embedder import Embedder
    from nlp.sentiment import SentimentModel

Counts = Mapping[str, Any]
# (stage, done, total or None): a CLI progress bar or a no-op in the scheduler.
Progress = Callable[[str, int, int | None], None]


def no_progress(stage: str, done: int, total: int | None) -> None:
    return None


RunAsync = Callable[[Coroutine[Any, Any, Any]], Any]


@dataclass(frozen=True)
class Outbox:
    """How jobs reach Telegram, wired by the composition root: a notifier and, when its aiohttp
    session lives on another event loop (the bot's), the function that runs a coroutine there."""

    notifier: Notifier
    run_async: RunAsync | None = None


@dataclass
class JobContext:
    """Everything a job run may use. `store` is opened for this run, in the thread that runs it;
    `settings` are the validated Settings (read their fields, never re-parse them)."""

    settings: Settings
    store: Store
    get_embedder: Callable[[], Embedder]
    get_sentiment: Callable[[], SentimentModel]  # loaded only by jobs that need it
    progress: Progress = no_progress
    outbox: Outbox | None = None  # None: nothing can be sent (no XIANKE_TELEGRAM_TOKEN)

    @property
    def embedder(self) -> Embedder:
        return self.get_embedder()

    @property
    def sentiment(self) -> SentimentModel:
        return self.get_sentiment()

    @property
    def notifier(self) -> Notifier | None:
        return self.outbox.notifier if self.outbox is not None else None

    def run_async(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine from the scheduler thread: on the bot's loop when the outbox says so (an
        aiohttp session is bound to its loop), else in a fresh loop."""
        runner = self.outbox.run_async if self.outbox is not None else None
        return runner(coroutine) if runner is not None else asyncio.run(coroutine)


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


def lazy_job(module: str, function: str, *args: Any) -> Callable[[JobContext], Counts]:
    """A job that imports its module only when it runs: `xianke --help` and the bot stay light
    (statsmodels, sklearn and the encoder load only in the jobs that need them)."""

    def run(ctx: JobContext) -> Counts:
        return getattr(importlib.import_module(module), function)(ctx, *args)

    run.__name__ = f"{function}{''.join('_' + str(a) for a in args)}"
    return run


TASKS = "jobs.tasks"


def _minutes(setting: str) -> TriggerFactory:
    """An interval trigger from a validated `*_every_min` field of Settings."""

    def make(settings: Settings) -> BaseTrigger:
        minutes: int = getattr(settings, setting)  # a declared Settings field: a typo fails loudly
        return IntervalTrigger(minutes=minutes, timezone=settings.zone)

    return make


register_job(
    "ingest",
    JobSpec(
        lazy_job(TASKS, "ingest_job"),
        _minutes("ingest_every_min"),
        "Ingest files waiting in the drop folder (<data_dir>/inbox).",
    ),
)
register_job(
    "analyze",
    JobSpec(lazy_job(TASKS, "analyze_job"), _minutes("analyze_every_min"), "Embed, score sentiment and aspects of new posts."),
)
register_job(
    "topics",
    JobSpec(
        lazy_job(TASKS, "topics_job"),
        _minutes("topics_every_min"),
        "Re-cluster posts into topics (stable ids, emerging topics flagged).",
    ),
)


# -- digests and alerts (issue 7) ---------------------------------------------------


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _cron_at(setting: str) -> TriggerFactory:
    """A cron trigger from "HH:MM" (every day) or "mon HH:MM" (weekly), in the configured zone."""

    def make(settings: Settings) -> BaseTrigger:
        from apscheduler.triggers.cron import CronTrigger

        value = str(getattr(settings, setting)).strip().lower()
        parts = value.split()
        day = parts[0][:3] if len(parts) == 2 else None
        try:
            hour, minute = (int(x) for x in parts[-1].split(":"))
            bad_day = day is not None and day not in _WEEKDAYS
            if bad_day or len(parts) > 2 or not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"XIANKE_{setting.upper()}={value!r}: use HH:MM (e.g. 09:00) "
                "or a weekday and HH:MM (e.g. mon 09:30)"
            ) from None
        return CronTrigger(day_of_week=day, hour=hour, minute=minute, timezone=settings.zone)

    return make


register_job(
    "digest_daily",
    JobSpec(lazy_job(TASKS, "digest_job", "daily"), _cron_at("digest_daily_at"), "Daily listening digest to marketer chats."),
)
register_job(
    "digest_weekly",
    JobSpec(
        lazy_job(TASKS, "digest_job", "weekly"),
        _cron_at("digest_weekly_at"),
        "Weekly listening digest to marketer chats.",
    ),
)
register_job(
    "alerts",
    JobSpec(
        lazy_job(TASKS, "alerts_job"), _minutes("alerts_every_min"), "Negative-spike alerts to marketer chats (deduplicated)."
    ),
)


# -- campaigns (issue 7) --------------------------------------------------------------


register_job("coupons_expire", JobSpec(lazy_job(TASKS, "expire_coupons_job"), _minutes("coupons_every_min"), "Expire coupons past their date."))
register_job(
    "campaign_effects",
    JobSpec(lazy_job(TASKS, "campaign_effects_job"), _minutes("effects_every_min"), "Re-estimate active campaigns' effects and ROI."),
)


# -- support consultations (issue 5) ------------------------------------------------------


register_job(
    "support_sla",
    JobSpec(lazy_job(TASKS, "sla_job"), _minutes("support_sla_every_min"), "Remind staff in the topic when a customer waits past XIANKE_SLA_MINUTES."),
)
register_job(
    "support_auto_close",
    JobSpec(
        lazy_job(TASKS, "auto_close_job"),
        _minutes("support_close_every_min"),
        "Close consultations idle for XIANKE_TICKET_IDLE_CLOSE_HOURS and tell the customer.",
    ),
)


# -- referrals and sentiment corrections --------------------------------------------------


register_job(
    "referral_notices",
    JobSpec(lazy_job(TASKS, "referral_notices_job"), _minutes("referral_notices_every_min"), "Tell both sides of a rewarded referral about their coupons."),
)
register_job(
    "sentiment_retrain",
    JobSpec(
        lazy_job(TASKS, "sentiment_retrain_job"),
        _cron_at("sentiment_retrain_at"),
        "Retrain sentiment with marketers' corrections; promote only if validation accuracy does not drop.",
    ),
)


# -- privacy (issue 8) -----------------------------------------------------------------


register_job(
    "retention",
    JobSpec(
        lazy_job(TASKS, "retention_job"),
        _cron_at("retention_at"),
        "Scrub raw post text older than XIANKE_POSTS_RETENTION_DAYS (trends and sentiment are kept).",
    ),
)
