"""Retention of raw social posts: after `posts_retention_days` the words go, the trend data stays.

A purged post keeps source, created_at, sentiment (label and score), aspect labels, topic and its
text hash — enough for volume/sentiment trends, share of voice and topic sizes, and for the ingestor
to still recognise a re-delivered copy as a duplicate. Text, normalised text, author hash, vector,
url and aspect spans are removed (`core.privacy.scrub_posts`). Work is done in batches, each its own
transaction, so a killed run keeps what it finished and the next run simply continues.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from core.logging import log_event
from core.privacy import scrub_posts, utc_now_text
from core.store import Store

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 180
BATCH = 500


def purge_raw_posts(
    store: Store, older_than_days: int, *, now: datetime | None = None, batch: int = BATCH
) -> dict[str, int]:
    """Scrub posts created more than `older_than_days` ago (not yet purged). Returns counts."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1 (XIANKE_POSTS_RETENTION_DAYS)")
    moment = now or datetime.now(UTC)
    cutoff = utc_now_text(moment - timedelta(days=older_than_days))
    stamp = utc_now_text(moment)
    purged = 0
    while True:
        ids = [row[0] for row in store.db.execute(
            "SELECT id FROM posts WHERE purged_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?",
            [cutoff, batch],
        )]
        if not ids:
            break
        with store.transaction():
            purged += scrub_posts(store, ids, now=stamp)
    kept = int(store.scalar("SELECT count(*) FROM posts WHERE purged_at IS NULL"))
    log_event(log, "raw posts purged", purged=purged, kept=kept, cutoff=cutoff)
    return {"purged": purged, "kept": kept}
