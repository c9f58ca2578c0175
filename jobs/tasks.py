"""The scheduled tasks: thin entry points that read a JobContext and call the domain packages.

Every `*_job` the registry names lives here, so no package below `jobs` needs to know what a job
context is (listening, analytics and commerce never import jobs). Each task reads its settings as
the typed fields pydantic validated, takes the notifier from the context, and returns the counts
recorded in `job_runs`. The registry imports this module lazily (see jobs.registry.lazy_job), and
this module imports heavy packages inside the tasks' own modules only when they run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from core.logging import log_event
from jobs.registry import JobContext

log = logging.getLogger(__name__)


# -- listening ----------------------------------------------------------------------------------


def ingest_job(ctx: JobContext) -> dict[str, int]:
    """Ingest everything waiting in the drop folder."""
    from listening.ingest import (
        FileIngestor,
        IngestReport,
        PostIngestor,
        drop_dir,
        drop_files,
        load_author_salt,
    )

    folder = drop_dir(ctx.settings)
    folder.mkdir(parents=True, exist_ok=True)
    files = drop_files(folder)
    ingestor = FileIngestor(PostIngestor(ctx.store, load_author_salt(ctx.settings), zone=ctx.settings.zone))
    total = IngestReport()
    quarantined = 0
    for number, path in enumerate(files, start=1):
        try:
            result = ingestor.ingest_file(path)
        except OSError as exc:  # unreadable now (permissions, vanished): the next run tries again
            log_event(log, "ingest file unreadable", path=str(path), error=str(exc))
            continue
        quarantined += result.file_rejected is not None
        total.merge(result.report)
        ctx.progress("files", number, len(files))
    return {"files": len(files), "quarantined": quarantined, **total.counts()}


def analyze_job(ctx: JobContext) -> dict[str, int]:
    """Embed, score sentiment and aspects of new posts."""
    from listening.analysis import analyze_new_posts
    from nlp.aspects import default_aspects

    sentiment = ctx.sentiment
    return analyze_new_posts(
        ctx.store, ctx.embedder, sentiment, aspects=default_aspects(sentiment), progress=ctx.progress
    )


def topics_job(ctx: JobContext) -> dict[str, int]:
    """Re-cluster posts into topics."""
    from listening.topic_refresh import refresh_topics

    report = refresh_topics(ctx.store, ctx.embedder, progress=ctx.progress)
    counts = report.counts()
    if report.skipped:
        counts["skipped"] = 1
    return counts


def alerts_job(ctx: JobContext) -> dict[str, int]:
    """Detect spikes now, then deliver new and still-undelivered alerts to marketers."""
    from listening.alerts import AlertConfig, check_alerts, pending_alerts, send_alerts

    config = AlertConfig.from_settings(ctx.settings)
    now = datetime.now(ctx.settings.zone)
    new = check_alerts(ctx.store, now, zone=ctx.settings.zone, config=config)
    chat_ids = list(ctx.settings.marketer_chat_ids)
    if ctx.notifier is None or not chat_ids:
        log_event(log, "alerts not sent: no notifier or no XIANKE_MARKETER_CHAT_IDS", logging.WARNING, fired=len(new))
        return {"fired": len(new), "sent": 0}
    pending = pending_alerts(ctx.store, now, config)
    deliveries = ctx.run_async(send_alerts(ctx.notifier, chat_ids, pending, store=ctx.store))
    sent = sum(d.status == "sent" for d in deliveries)
    return {"fired": len(new), "sent": sent, "failed": len(deliveries) - sent}


def digest_job(ctx: JobContext, kind: str) -> dict[str, int]:
    """Build, store and send the digest of `kind` unless every marketer chat already has it."""
    from listening.digest import build_for_settings, delivered_chats, period_for, record_digest, send_digest

    settings, store = ctx.settings, ctx.store
    now = datetime.now(settings.zone)
    chat_ids = list(settings.marketer_chat_ids)
    period = period_for(kind, now, settings.zone)
    if chat_ids and set(chat_ids) <= delivered_chats(store, kind, period):
        return {"built": 0, "sent": 0, "already_sent": 1}
    digest = build_for_settings(store, settings, kind, now)
    record_digest(store, digest)
    if ctx.notifier is None or not chat_ids:
        log_event(
            log, "digest stored but not sent: no notifier or no XIANKE_MARKETER_CHAT_IDS", logging.WARNING,
            kind=kind, digest=digest.id,
        )
        return {"built": 1, "sent": 0}
    deliveries = ctx.run_async(send_digest(ctx.notifier, chat_ids, digest, store=store))
    sent = sum(d.status == "sent" for d in deliveries)
    return {"built": 1, "sent": sent, "failed": len(deliveries) - sent}


def retention_job(ctx: JobContext) -> dict[str, int]:
    """Scrub raw post text older than XIANKE_POSTS_RETENTION_DAYS."""
    from listening.retention import purge_raw_posts

    return purge_raw_posts(ctx.store, ctx.settings.posts_retention_days)


def sentiment_retrain_job(ctx: JobContext) -> dict[str, Any]:
    """Weekly: retrain with the corrections if there are new ones since the last run."""
    from listening.sentiment_retrain import retrain_with_corrections

    return retrain_with_corrections(ctx.settings, ctx.store, lambda: ctx.embedder)


# -- commerce and analytics ----------------------------------------------------------------------


def expire_coupons_job(ctx: JobContext) -> dict[str, int]:
    """Mark coupons past their expiry as expired (one coupon_expired event each)."""
    from core.repos.coupons import CouponRepository

    return {"expired": CouponRepository(ctx.store).expire_due()}


def referral_notices_job(ctx: JobContext) -> dict[str, int]:
    """Deliver reward notices still pending (needs the notifier the composition root wires)."""
    from commerce.referral_notices import pending_notice_count, send_referral_notices

    if ctx.notifier is None:
        pending = pending_notice_count(ctx.store)
        if pending:
            log_event(log, "referral notices waiting: no notifier configured", logging.WARNING, pending=pending)
        return {"pending": pending, "sent": 0}
    return ctx.run_async(send_referral_notices(ctx.notifier, ctx.store))


def campaign_effects_job(ctx: JobContext) -> dict[str, int]:
    """Re-estimate active and recently ended campaigns; the reports are stored for `campaign show`."""
    from analytics.campaign_report import RECENT_DAYS, estimate_campaign
    from commerce.campaigns import CampaignRepository

    now = datetime.now(UTC)
    repo = CampaignRepository(ctx.store)
    due = [c for c in repo.list() if c.ends_at is None or c.ends_at >= now - timedelta(days=RECENT_DAYS)]
    for n, campaign in enumerate(due, start=1):
        estimate_campaign(ctx.store, campaign.campaign_id, now, zone=ctx.settings.zone, save=True)
        ctx.progress("campaigns", n, len(due))
    return {"campaigns": len(due)}


# -- support consultations -----------------------------------------------------------------------


def sla_job(ctx: JobContext) -> dict[str, int]:
    """Remind staff in the topic of every customer waiting longer than XIANKE_SLA_MINUTES."""
    from jobs.support_jobs import due_reminders, send_reminders

    now = datetime.now(UTC)
    due = due_reminders(ctx.store, now, ctx.settings.sla_minutes)
    if not due:
        return {"due": 0, "reminded": 0}
    staff_chat_id = ctx.settings.staff_chat_id
    if ctx.notifier is None or staff_chat_id is None:
        log_event(log, "sla reminders not sent: no notifier or no XIANKE_STAFF_CHAT_ID", logging.WARNING, due=len(due))
        return {"due": len(due), "reminded": 0}
    counts = ctx.run_async(send_reminders(ctx.notifier, staff_chat_id, ctx.store, due, now=now))
    return {"due": len(due), **counts}


def auto_close_job(ctx: JobContext) -> dict[str, int]:
    """Close consultations idle for XIANKE_TICKET_IDLE_CLOSE_HOURS, telling customer and staff."""
    from jobs.support_jobs import close_idle, idle_tickets

    hours = ctx.settings.ticket_idle_close_hours
    now = datetime.now(UTC)
    idle = idle_tickets(ctx.store, now, hours)
    if not idle:
        return {"idle": 0, "closed": 0}
    staff_chat_id = ctx.settings.staff_chat_id
    if ctx.notifier is None or staff_chat_id is None:
        # Closing without telling the customer would look like being hung up on: wait for a notifier.
        log_event(log, "idle tickets not closed: no notifier or no XIANKE_STAFF_CHAT_ID", logging.WARNING, idle=len(idle))
        return {"idle": len(idle), "closed": 0}
    counts = ctx.run_async(close_idle(ctx.notifier, staff_chat_id, ctx.store, idle, hours, now=now))
    return {"idle": len(idle), **counts}


