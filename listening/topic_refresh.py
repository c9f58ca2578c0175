"""Topic refresh: the store side of topic modelling (moved unchanged from nlp/topics.py, so `nlp`
does no SQL). Post vectors are computed once and stored on the post; `refresh_topics` re-clusters
recent posts with nlp.topics.TopicModel and keeps topic ids stable across runs."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from core.clock import utc_text
from core.logging import log_event
from core.store import Store, dumps
from nlp.embedder import Embedder
from nlp.topic_labels import CTfidf
from nlp.topics import (
    Progress,
    TopicModel,
    compute_post_vectors,
    decode_vectors,
    encode_vector,
    match_centroids,
)

log = logging.getLogger(__name__)


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


def store_post_vectors(
    db: Store, rows: Sequence[dict[str, Any]], vectors: np.ndarray, stale: Sequence[int], fingerprint: str
) -> None:
    """Write the freshly computed rows of `vectors` (inside the caller's transaction)."""
    if stale:
        db.conn.executemany(
            "UPDATE posts SET embedding = ?, embedding_model = ? WHERE id = ?",
            [(encode_vector(vectors[i]), fingerprint, rows[i]["id"]) for i in stale],
        )


def post_vectors(
    store: Store, embedder: Embedder, rows: Sequence[dict[str, Any]], *, progress: bool = False
) -> np.ndarray:
    """Vectors for post rows; missing or stale ones are computed (no transaction open) and then stored
    in one short transaction."""
    vectors, stale = compute_post_vectors(embedder, rows)
    if stale:
        with store.transaction() as db:
            store_post_vectors(db, rows, vectors, stale, embedder.fingerprint)
    return vectors


def embed_missing_posts(
    store: Store, embedder: Embedder, *, batch: int = 256, progress: Progress = _no_progress
) -> int:
    """Embed every post without a vector from the current encoder; returns how many were embedded."""
    fingerprint = embedder.fingerprint
    where = "embedding IS NULL OR embedding_model IS NOT ?"
    total = store.scalar(f"SELECT count(*) FROM posts WHERE {where}", [fingerprint])
    done, last_id = 0, 0
    while True:
        rows = store.query(
            f"SELECT id, text_norm, embedding, embedding_model FROM posts WHERE ({where}) AND id > ? "
            "ORDER BY id LIMIT ?",
            [fingerprint, last_id, batch],
        )
        if not rows:
            return done
        post_vectors(store, embedder, rows)
        done += len(rows)
        last_id = rows[-1]["id"]
        progress("embed", done, total)


@dataclass
class TopicRefreshReport:
    run_id: int | None
    n_posts: int
    n_topics: int
    matched: int = 0
    new: int = 0
    emerging: list[int] = field(default_factory=list)  # topic ids flagged this run
    topic_ids: list[int] = field(default_factory=list)  # in fit order (largest first)
    skipped: str | None = None

    def counts(self) -> dict[str, int]:
        return {
            "posts": self.n_posts,
            "topics": self.n_topics,
            "matched": self.matched,
            "new": self.new,
            "emerging": len(self.emerging),
        }


def refresh_topics(
    store: Store,
    embedder: Embedder,
    model: TopicModel | None = None,
    *,
    window_days: int | None = 90,
    max_posts: int = 20_000,
    min_posts: int = 10,
    match_threshold: float = 0.6,
    growth_factor: float = 2.0,
    min_emerging_size: int = 3,
    progress: Progress = _no_progress,
    now: datetime | None = None,
    ignore_words: Sequence[str] | None = None,
) -> TopicRefreshReport:
    """Re-cluster recent posts; reuse topic ids whose centroid matches (centred cosine ≥ `match_threshold`).

    A topic is flagged emerging when a previous run exists and it is either new (no match) with at
    least `min_emerging_size` posts, or its share of posts grew by `growth_factor` since that run.
    """
    if model is None:
        # Campaign keywords never label a topic: every mention carries them, so they say nothing.
        ignore = campaign_keywords(store) if ignore_words is None else list(ignore_words)
        model = TopicModel(keywords=CTfidf(ignore=ignore))
    progress("embed", 0, None)
    embed_missing_posts(store, embedder, progress=progress)
    now = now or datetime.now(UTC)
    params: list[Any] = []
    where = ""
    if window_days is not None:
        where = "WHERE created_at >= ?"
        params.append((now - timedelta(days=window_days)).strftime("%Y-%m-%dT%H:%M:%S"))
    rows = store.query(
        f"SELECT id, text_norm, embedding FROM posts {where} ORDER BY created_at DESC, id DESC LIMIT ?",
        [*params, max_posts],
    )
    if len(rows) < min_posts:
        return TopicRefreshReport(None, len(rows), 0, skipped=f"only {len(rows)} posts (need {min_posts})")
    vectors = decode_vectors([r["embedding"] for r in rows])
    texts = [r["text_norm"] for r in rows]
    progress("cluster", 0, None)
    fit = model.fit(texts, vectors)
    progress("cluster", len(rows), len(rows))

    previous = store.query(
        "SELECT id, n_posts FROM topic_runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1"
    )
    old = store.query(
        "SELECT id, centroid, size, last_run_id FROM topics WHERE centroid IS NOT NULL ORDER BY id"
    )
    old_centroids = (
        np.stack([np.frombuffer(t["centroid"], dtype=np.float32) for t in old]) if old else np.zeros((0, 1))
    )
    new_centroids = np.stack([t.centroid for t in fit.topics]) if fit.topics else np.zeros((0, 1))
    matches = match_centroids(new_centroids, old_centroids, match_threshold, center=vectors.mean(axis=0))

    report = TopicRefreshReport(None, len(rows), len(fit.topics))
    started = utc_text(datetime.now(UTC))
    with store.transaction() as db:
        run_id = db.execute(
            "INSERT INTO topic_runs (started_at, n_posts, params) VALUES (?, ?, ?)",
            [
                started,
                len(rows),
                dumps(
                    {
                        "window_days": window_days,
                        "match_threshold": match_threshold,
                        "encoder": embedder.fingerprint,
                        "clusterer": type(model.clusterer).__name__,
                    }
                ),
            ],
        ).lastrowid
        report.run_id = run_id
        topic_ids: list[int] = []
        for position, topic in enumerate(fit.topics):
            size = len(topic.members)
            examples = [{"post_id": rows[i]["id"], "text": texts[i][:140]} for i in topic.examples]
            fields = {
                "label": topic.label,
                "keywords": dumps([w for w, _ in topic.keywords]),
                "centroid": topic.centroid.astype(np.float32).tobytes(),
                "size": size,
                "last_run_id": run_id,
                "examples": dumps(examples),
            }
            if position in matches:
                prior = old[matches[position]]
                grew = (
                    previous
                    and prior["last_run_id"] == previous[0]["id"]
                    and size / len(rows) >= growth_factor * prior["size"] / max(previous[0]["n_posts"], 1)
                )
                fields["emerging"] = int(bool(grew) and size >= min_emerging_size)
                db["topics"].update(prior["id"], fields)
                topic_id = prior["id"]
                report.matched += 1
            else:
                fields["emerging"] = int(bool(previous) and size >= min_emerging_size)
                fields["first_run_id"] = run_id
                topic_id = db["topics"].insert(fields).last_pk
                report.new += 1
            if fields["emerging"]:
                report.emerging.append(topic_id)
            topic_ids.append(topic_id)
        # Topics that did not come back this run are no longer emerging (history stays).
        db.execute("UPDATE topics SET emerging = 0 WHERE last_run_id IS NOT ?", [run_id])
        db.conn.executemany(
            "UPDATE posts SET topic_id = ? WHERE id = ?",
            [(topic_ids[label] if label >= 0 else None, rows[i]["id"]) for i, label in enumerate(fit.labels)],
        )
        db.execute(
            "UPDATE topic_runs SET finished_at = ?, n_topics = ? WHERE id = ?",
            [utc_text(datetime.now(UTC)), len(fit.topics), run_id],
        )
    report.topic_ids = topic_ids
    log_event(log, "topics refreshed", run_id=run_id, **report.counts())
    return report


def campaign_keywords(store: Store) -> list[str]:
    """Every campaign's tracked keywords (JSON lists in campaigns.keywords)."""
    out: list[str] = []
    for row in store.query("SELECT keywords FROM campaigns"):
        try:
            words = json.loads(row["keywords"] or "[]")
        except ValueError:
            continue
        if isinstance(words, list):
            out.extend(w for w in words if isinstance(w, str) and w.strip())
    return out
