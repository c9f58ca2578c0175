"""Topics over social posts, BERTopic-style: embeddings → (reduce) → cluster → c-TF-IDF → label.

Each stage is a constructor argument of `TopicModel` with a sensible default, so one stage can be
swapped (say HDBSCAN for KMeans, or an LLM labeller) without touching the others. `refresh_topics`
is the I/O edge: it reads stored post vectors (computing them once for posts that lack them),
clusters, keeps topic ids stable across runs by centroid similarity, flags emerging topics and
writes everything in one transaction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nlp.embedder import Embedder
from nlp.topic_labels import CTfidf, TopicLabeler, keyword_label

__all__ = ["CTfidf", "TopicLabeler", "TopicModel", "compute_post_vectors", "keyword_label"]

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


# -- matching topics between runs (the store side lives in listening/topic_refresh.py) ----------


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
