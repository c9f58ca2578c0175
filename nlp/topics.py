"""Topics over social posts, BERTopic-style: embeddings → (reduce) → cluster → c-TF-IDF → label.

Each stage is a constructor argument of `TopicModel` with a sensible default, so one stage can be
swapped (say HDBSCAN for KMeans, or an LLM labeller) without touching the others. `refresh_topics`
is the I/O edge: it reads stored post vectors (computing them once for posts that lack them),
clusters, keeps topic ids stable across runs by centroid similarity, flags emerging topics and
writes everything in one transaction.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from core.logging import log_event
from core.store import Store, dumps
from nlp.embedder import Embedder
from nlp.topic_labels import CTfidf, TopicLabeler, keyword_label

__all__ = ["CTfidf", "TopicLabeler", "TopicModel", "keyword_label", "refresh_topics"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


# -- post vectors: computed once, stored on the post ------------------------------

# float16 halves the store size; cosine similarities move by < 1e-3, far below any threshold here.
VECTOR_DTYPE = np.float16


def encode_vector(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def decode_vectors(blobs: Sequence[bytes]) -> np.ndarray:
    """Stored blobs → float32 rows, re-normalised (rounding to float16 nudges the length)."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    matrix = np.stack([np.frombuffer(b, dtype=VECTOR_DTYPE) for b in blobs]).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def compute_post_vectors(embedder: Embedder, rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, list[int]]:
    """Vectors for post rows (id, text_norm, embedding, embedding_model) and the row indexes that were
    missing or stale and so were encoded now (one `embed_queries` call). Pure: writes nothing, so
    callers keep model inference out of their write transactions."""
    fingerprint = embedder.fingerprint
    if not rows:
        return np.zeros((0, embedder.dim), dtype=np.float32), []
    stale = [
        i for i, r in enumerate(rows) if r.get("embedding") is None or r.get("embedding_model") != fingerprint
    ]
    stale_set = set(stale)
    kept = [i for i in range(len(rows)) if i not in stale_set]
    fresh = embedder.embed_queries([rows[i]["text_norm"] for i in stale], cache=False) if stale else None
    stored = decode_vectors([rows[i]["embedding"] for i in kept]) if kept else None
    dim = (fresh if fresh is not None else stored).shape[1]  # type: ignore[union-attr]
    out = np.empty((len(rows), dim), dtype=np.float32)
    if fresh is not None:
        out[stale] = fresh
    if stored is not None:
        out[kept] = stored
    return out, stale


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
    """Vectors for post rows; missing or stale ones are computed and stored in one short transaction."""
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


# -- stages -------------------------------------------------------------------------


class Reducer(Protocol):
    def fit_transform(self, vectors: np.ndarray) -> np.ndarray: ...


class Clusterer(Protocol):
    def fit_predict(self, vectors: np.ndarray) -> np.ndarray:
        """A cluster label per row; -1 marks an outlier."""
        ...


class CenterNormalize:
    """Subtract the mean and re-normalise: E5 vectors share a large common direction that otherwise
    dominates every distance (all posts look ~0.8 similar), which blurs the clusters."""

    def fit_transform(self, vectors: np.ndarray) -> np.ndarray:
        centred = vectors - vectors.mean(axis=0, keepdims=True)
        return centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-12)


class SilhouetteKMeans:
    """KMeans with k picked by the silhouette score over `k_range` (on a sample for large inputs)."""

    def __init__(
        self,
        k_range: tuple[int, int] = (2, 15),
        *,
        min_per_cluster: int = 5,
        sample_size: int = 2000,
        seed: int = 0,
    ):
        self.k_range = k_range
        self.min_per_cluster = min_per_cluster
        self.sample_size = sample_size
        self.seed = seed
        self.scores: dict[int, float] = {}

    def fit_predict(self, vectors: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        n = len(vectors)
        # Small inputs: OpenMP threads cost more than they save (and torch's and sklearn's OpenMP
        # runtimes spin against each other) — single-threaded is ~7x faster on a few hundred posts.
        if n < 5000:
            with threadpool_limits(limits=1):
                return self._fit_predict(vectors)
        return self._fit_predict(vectors)

    def _fit_predict(self, vectors: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score

        n = len(vectors)
        low, high = self.k_range
        # More than ~sqrt(n) topics is never readable; the cap also bounds the search time.
        high = min(high, n // self.min_per_cluster, max(low, math.isqrt(n)))
        if n < 2 * self.min_per_cluster or high < low:
            return np.zeros(n, dtype=np.int64)
        best: tuple[float, np.ndarray] | None = None
        self.scores = {}
        for k in range(low, high + 1):
            labels = KMeans(n_clusters=k, n_init=3, random_state=self.seed).fit_predict(vectors)
            if len(set(labels.tolist())) < 2:
                continue
            score = float(
                silhouette_score(
                    vectors,
                    labels,
                    metric="cosine",
                    sample_size=min(n, self.sample_size),
                    random_state=self.seed,
                )
            )
            self.scores[k] = score
            if best is None or score > best[0]:
                best = (score, labels)
        return best[1] if best is not None else np.zeros(n, dtype=np.int64)


# -- the model -------------------------------------------------------------------------


@dataclass
class FoundTopic:
    members: np.ndarray  # row indexes into the fitted texts
    centroid: np.ndarray  # unit vector in the *original* embedding space (comparable across runs)
    keywords: list[tuple[str, float]]
    label: str
    examples: list[int]  # row indexes of the posts closest to the centroid


@dataclass
class TopicFit:
    labels: np.ndarray  # topic position per row, -1 for outliers and posts in too-small clusters
    topics: list[FoundTopic]


class TopicModel:
    def __init__(
        self,
        *,
        reducer: Reducer | None = None,
        clusterer: Clusterer | None = None,
        keywords: CTfidf | None = None,
        labeler: Callable[[Sequence[str]], str] | None = None,
        min_topic_size: int = 3,
        n_examples: int = 3,
    ):
        self.reducer = reducer if reducer is not None else CenterNormalize()
        self.clusterer = clusterer if clusterer is not None else SilhouetteKMeans()
        self.keywords = keywords if keywords is not None else CTfidf()
        self.labeler = labeler if labeler is not None else TopicLabeler()
        self.min_topic_size = min_topic_size
        self.n_examples = n_examples

    def fit(self, texts: Sequence[str], vectors: np.ndarray) -> TopicFit:
        """Pure: cluster `vectors` (unit rows, one per text) and describe each cluster."""
        n = len(texts)
        if n == 0:
            return TopicFit(np.zeros(0, dtype=np.int64), [])
        reduced = self.reducer.fit_transform(vectors)
        raw = np.asarray(self.clusterer.fit_predict(reduced))
        groups = [np.flatnonzero(raw == c) for c in sorted(set(raw.tolist())) if c != -1]
        groups = [g for g in groups if len(g) >= self.min_topic_size]
        groups.sort(key=len, reverse=True)
        labels = np.full(n, -1, dtype=np.int64)
        for position, members in enumerate(groups):
            labels[members] = position
        described = self.keywords.keywords([[texts[i] for i in g] for g in groups])
        topics = []
        for members, words in zip(groups, described, strict=True):
            mean = vectors[members].mean(axis=0)
            centroid = mean / max(float(np.linalg.norm(mean)), 1e-12)
            closest = members[np.argsort(-(vectors[members] @ centroid))[: self.n_examples]]
            topics.append(
                FoundTopic(
                    members,
                    centroid.astype(np.float32),
                    words,
                    self.labeler([w for w, _ in words]),
                    closest.tolist(),
                )
            )
        return TopicFit(labels, topics)


# -- refresh: the I/O edge -----------------------------------------------------------------


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


def match_centroids(
    new: np.ndarray, old: np.ndarray, threshold: float, *, center: np.ndarray | None = None
) -> dict[int, int]:
    """Greedy one-to-one matching, most similar pairs first: new row → old row, cosine ≥ threshold.

    With `center` (the mean post vector of this run) both sides are compared after subtracting it:
    raw E5 centroids of unrelated food topics sit at cosine ≈ 0.92-0.95, the same topic one run
    later at ≈ 0.99-1.0; centred, they are ≈ -0.5-0.0 versus ≈ 0.99, so a threshold is safe.
    """
    if len(new) == 0 or len(old) == 0:
        return {}
    if center is not None:
        new, old = _unit(new - center), _unit(old - center)
    sims = new @ old.T
    pairs = sorted(
        ((float(sims[i, j]), i, j) for i in range(len(new)) for j in range(len(old))), reverse=True
    )
    matched: dict[int, int] = {}
    used: set[int] = set()
    for sim, i, j in pairs:
        if sim < threshold:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


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

    Campaign keywords (or `ignore_words`) never label a topic: every mention carries them, so they
    say nothing about what a cluster discusses.

    A topic is flagged emerging when a previous run exists and it is either new (no match) with at
    least `min_emerging_size` posts, or its share of posts grew by `growth_factor` since that run.
    """
    if model is None:
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
    started = _utc(datetime.now(UTC))
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
            [_utc(datetime.now(UTC)), len(fit.topics), run_id],
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


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
