"""The job registry: what can run on a schedule, how often, and what each run gets to work with.

Issues add jobs with `register_job("digest", JobSpec(func, trigger, description))`. A job function
takes a `JobContext` and returns counts (e.g. {"added": 12}) that are recorded in `job_runs`.
Job functions are imported lazily so `xianke jobs list` does not load jieba, torch or sklearn.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine, Mapping
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

    def run_async(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine from the scheduler thread: on the bot's loop when the composition root gives
        `extras["run_async"]` (an aiohttp session is bound to its loop), else in a fresh loop."""
        runner = self.extras.get("run_async")
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


def _minutes(setting: str, default: int) -> TriggerFactory:
    # Interval settings are optional: read them if the Settings class has them, else use the default.
    def make(settings: Settings) -> BaseTrigger:
        minutes = int(getattr(settings, setting, None) or default)
        return IntervalTrigger(minutes=minutes, timezone=settings.zone)

    return make


register_job(
    "ingest",
    JobSpec(
        lazy_job("listening.ingest", "ingest_job"),
        _minutes("ingest_every_min", 5),
        "Ingest files waiting in the drop folder (<data_dir>/inbox).",
    ),
)
register_job(
    "analyze",
    JobSpec(lazy_job("listening.analysis", "analyze_job"), _minutes("analyze_every_min", 10), "Embed, score sentiment and aspects of new posts."),
)
register_job(
    "topics",
    JobSpec(
        lazy_job("listening.analysis", "topics_job"),
        _minutes("topics_every_min", int(timedelta(hours=6).total_seconds() // 60)),
        "Re-cluster posts into topics (stable ids, emerging topics flagged).",
    ),
)


# -- digests and alerts (issue 7) ---------------------------------------------------


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _cron_at(setting: str, default: str) -> TriggerFactory:
    """A cron trigger from "HH:MM" (every day) or "mon HH:MM" (weekly), in the configured zone."""

    def make(settings: Settings) -> BaseTrigger:
        from apscheduler.triggers.cron import CronTrigger

        value = str(getattr(settings, setting, None) or default).strip().lower()
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
    JobSpec(lazy_job("listening.digest", "digest_job", "daily"), _cron_at("digest_daily_at", "09:00"), "Daily listening digest to marketer chats."),
)
register_job(
    "digest_weekly",
    JobSpec(
        lazy_job("listening.digest", "digest_job", "weekly"),
        _cron_at("digest_weekly_at", "mon 09:30"),
        "Weekly listening digest to marketer chats.",
    ),
)
register_job(
    "alerts",
    JobSpec(
        lazy_job("listening.alerts", "alerts_job"), _minutes("alerts_every_min", 30), "Negative-spike alerts to marketer chats (deduplicated)."
    ),
)


# -- campaigns (issue 7) --------------------------------------------------------------


register_job("coupons_expire", JobSpec(lazy_job("commerce.orders", "expire_coupons_job"), _minutes("coupons_every_min", 60), "Expire coupons past their date."))
register_job(
    "campaign_effects",
    JobSpec(lazy_job("analytics.campaign_report", "campaign_effects_job"), _minutes("effects_every_min", 360), "Re-estimate active campaigns' effects and ROI."),
)


# -- support consultations (issue 5) ------------------------------------------------------


register_job(
    "support_sla",
    JobSpec(lazy_job("jobs.support_jobs", "sla_job"), _minutes("support_sla_every_min", 1), "Remind staff in the topic when a customer waits past XIANKE_SLA_MINUTES."),
)
register_job(
    "support_auto_close",
    JobSpec(
        lazy_job("jobs.support_jobs", "auto_close_job"),
        _minutes("support_close_every_min", 15),
        "Close consultations idle for XIANKE_TICKET_IDLE_CLOSE_HOURS and tell the customer.",
    ),
)


# -- referrals and sentiment corrections --------------------------------------------------


register_job(
    "referral_notices",
    JobSpec(lazy_job("commerce.referral_notices", "referral_notices_job"), _minutes("referral_notices_every_min", 5), "Tell both sides of a rewarded referral about their coupons."),
)
register_job(
    "sentiment_retrain",
    JobSpec(
        lazy_job("listening.sentiment_retrain", "sentiment_retrain_job"),
        _cron_at("sentiment_retrain_at", "sun 03:00"),
        "Retrain sentiment with marketers' corrections; promote only if validation accuracy does not drop.",
    ),
)


# -- privacy (issue 8) -----------------------------------------------------------------


register_job(
    "retention",
    JobSpec(
        lazy_job("listening.retention", "retention_job"),
        _cron_at("retention_at", "04:00"),
        "Scrub raw post text older than XIANKE_POSTS_RETENTION_DAYS (trends and sentiment are kept).",
    ),
)
