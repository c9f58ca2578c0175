"""The job registry: what can run on a schedule, how often, and what each run gets to work with.

Issues add jobs with `register_job("digest", JobSpec(func, trigger, description))`. A job function
takes a `JobContext` and returns counts (e.g. {"added": 12}) that are recorded in `job_runs`.
Job functions are imported lazily so `xianke jobs list` does not load jieba, torch or sklearn.
"""

from __future__ import annotations

import asyncio
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


# -- digests and alerts (issue 7) ---------------------------------------------------


def _digest_daily(ctx: JobContext) -> Counts:
    from jobs.digest import digest_job

    return digest_job(ctx, "daily")


def _digest_weekly(ctx: JobContext) -> Counts:
    from jobs.digest import digest_job

    return digest_job(ctx, "weekly")


def _alerts(ctx: JobContext) -> Counts:
    from jobs.alerts import alerts_job

    return alerts_job(ctx)


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
    JobSpec(_digest_daily, _cron_at("digest_daily_at", "09:00"), "Daily listening digest to marketer chats."),
)
register_job(
    "digest_weekly",
    JobSpec(
        _digest_weekly,
        _cron_at("digest_weekly_at", "mon 09:30"),
        "Weekly listening digest to marketer chats.",
    ),
)
register_job(
    "alerts",
    JobSpec(
        _alerts, _minutes("alerts_every_min", 30), "Negative-spike alerts to marketer chats (deduplicated)."
    ),
)


# -- campaigns (issue 7) --------------------------------------------------------------


def _coupons_expire(ctx: JobContext) -> Counts:
    from jobs.orders import expire_coupons_job

    return expire_coupons_job(ctx)


def _campaign_effects(ctx: JobContext) -> Counts:
    from jobs.campaign_report import campaign_effects_job

    return campaign_effects_job(ctx)


register_job("coupons_expire", JobSpec(_coupons_expire, _minutes("coupons_every_min", 60), "Expire coupons past their date."))
register_job(
    "campaign_effects",
    JobSpec(_campaign_effects, _minutes("effects_every_min", 360), "Re-estimate active campaigns' effects and ROI."),
)


# -- support consultations (issue 5) ------------------------------------------------------


def _support_sla(ctx: JobContext) -> Counts:
    from jobs.support_jobs import sla_job

    return sla_job(ctx)


def _support_auto_close(ctx: JobContext) -> Counts:
    from jobs.support_jobs import auto_close_job

    return auto_close_job(ctx)


register_job(
    "support_sla",
    JobSpec(_support_sla, _minutes("support_sla_every_min", 1), "Remind staff in the topic when a customer waits past XIANKE_SLA_MINUTES."),
)
register_job(
    "support_auto_close",
    JobSpec(
        _support_auto_close,
        _minutes("support_close_every_min", 15),
        "Close consultations idle for XIANKE_TICKET_IDLE_CLOSE_HOURS and tell the customer.",
    ),
)


# -- referrals and sentiment corrections --------------------------------------------------


def _referral_notices(ctx: JobContext) -> Counts:
    from jobs.referral_notices import referral_notices_job

    return referral_notices_job(ctx)


def _sentiment_retrain(ctx: JobContext) -> Counts:
    from jobs.sentiment_retrain import sentiment_retrain_job

    return sentiment_retrain_job(ctx)


register_job(
    "referral_notices",
    JobSpec(_referral_notices, _minutes("referral_notices_every_min", 5), "Tell both sides of a rewarded referral about their coupons."),
)
register_job(
    "sentiment_retrain",
    JobSpec(
        _sentiment_retrain,
        _cron_at("sentiment_retrain_at", "sun 03:00"),
        "Retrain sentiment with marketers' corrections; promote only if validation accuracy does not drop.",
    ),
)


# -- privacy (issue 8) -----------------------------------------------------------------


def _retention(ctx: JobContext) -> Counts:
    from jobs.retention import retention_job

    return retention_job(ctx)


register_job(
    "retention",
    JobSpec(
        _retention,
        _cron_at("retention_at", "04:00"),
        "Scrub raw post text older than XIANKE_POSTS_RETENTION_DAYS (trends and sentiment are kept).",
    ),
)
