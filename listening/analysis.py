"""Analysis of new posts (vector once → sentiment → aspects) and the topic refresh job.

Each post is embedded once; the stored vector is handed to the sentiment model (which reuses it
instead of encoding again) and later to topic clustering. Posts are processed in batches, each batch
written in one transaction, so a crash loses at most one batch of work and never leaves half a post.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from core.logging import log_event
from core.store import Store, dumps
from listening.topic_refresh import post_vectors
from nlp.embedder import Embedder

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
AspectFn = Callable[[list[str]], list[list[Any]]]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


class SentimentPredictor(Protocol):
    """What nlp.sentiment.SentimentModel offers: one result (label, score, confidence) per text."""

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[Any]: ...


def aspect_json(mentions: Sequence[Any]) -> str:
    """AspectMention objects (dataclass, namedtuple or dict) → the posts.aspects JSON column."""
    out = []
    for mention in mentions:
        if dataclasses.is_dataclass(mention) and not isinstance(mention, type):
            item = dataclasses.asdict(mention)
        elif hasattr(mention, "_asdict"):
            item = mention._asdict()
        elif isinstance(mention, dict):
            item = dict(mention)
        else:
            item = {k: getattr(mention, k, None) for k in ("aspect", "polarity", "span")}
        out.append({k: list(v) if isinstance(v, tuple) else v for k, v in item.items()})
    return dumps(out)


def default_aspects(sentiment: Any) -> AspectFn | None:
    """nlp.aspects.extract_aspects bound to the sentiment model, or None when that module is absent."""
    try:
        from nlp.aspects import extract_aspects
    except ImportError:
        log_event(log, "nlp.aspects not available; aspects skipped", logging.WARNING)
        return None
    return lambda texts: extract_aspects(texts, sentiment)


def analyze_new_posts(
    store: Store,
    embedder: Embedder,
    sentiment: SentimentPredictor,
    *,
    aspects: AspectFn | None = None,
    batch: int = 64,
    limit: int | None = None,
    progress: Progress = _no_progress,
) -> dict[str, int]:
    """Analyse posts with analyzed_at NULL (oldest first). Returns counts by stage and sentiment label."""
    pending = store.scalar("SELECT count(*) FROM posts WHERE analyzed_at IS NULL")
    total = min(pending, limit) if limit is not None else pending
    counts = {"analyzed": 0, "embedded": 0, "positive": 0, "neutral": 0, "negative": 0, "aspects": 0}
    last_id = 0
    progress("analyze", 0, total)
    while counts["analyzed"] < total:
        size = min(batch, total - counts["analyzed"])
        rows = store.query(
            """SELECT id, text_norm, embedding, embedding_model FROM posts
               WHERE analyzed_at IS NULL AND id > ? ORDER BY id LIMIT ?""",
            [last_id, size],
        )
        if not rows:
            break
        texts = [row["text_norm"] for row in rows]
        counts["embedded"] += sum(
            1 for r in rows if r["embedding"] is None or r["embedding_model"] != embedder.fingerprint
        )
        with store.transaction() as db:
            vectors = post_vectors(store, embedder, rows)
            results = sentiment.predict(texts, embeddings=vectors)
            mentions = aspects(texts) if aspects is not None else [[] for _ in texts]
            if len(results) != len(rows) or len(mentions) != len(rows):
                raise RuntimeError(
                    "sentiment/aspect models returned a different number of results than texts"
                )
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            db.conn.executemany(
                "UPDATE posts SET sentiment = ?, sentiment_score = ?, aspects = ?, analyzed_at = ? WHERE id = ?",
                [
                    (result.label, float(result.score), aspect_json(found), now, row["id"])
                    for row, result, found in zip(rows, results, mentions, strict=True)
                ],
            )
        for result, found in zip(results, mentions, strict=True):
            counts[result.label] = counts.get(result.label, 0) + 1
            counts["aspects"] += len(found)
        counts["analyzed"] += len(rows)
        last_id = rows[-1]["id"]
        progress("analyze", counts["analyzed"], total)
    log_event(log, "posts analyzed", **counts)
    return counts
