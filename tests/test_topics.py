"""Topics and analysis on the real encoder: clean groups, stable ids, emerging topics, vectors computed once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.store import Store
from listening.analysis import analyze_new_posts
from listening.ingest import PostIngestor
from listening.topic_refresh import refresh_topics
from nlp.sentiment import SentimentResult
from nlp.topics import CTfidf, match_centroids

FIXTURE = Path(__file__).parent / "data" / "posts_topics.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
GROUP = {row["external_id"]: row["group"] for row in ROWS}


class CountingEmbedder:
    """Wraps the session encoder and counts texts it is asked to encode."""

    def __init__(self, inner):
        self.inner = inner
        self.encoded = 0

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_queries(
        self, texts: Sequence[str], *, cache: bool = True, progress: bool = False
    ) -> np.ndarray:
        self.encoded += len(texts)
        return self.inner.embed_queries(texts, cache=cache, progress=progress)


class KeywordSentiment:
    """Test double for nlp.sentiment (the real model needs a trained artifact): checks it gets vectors."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[np.ndarray | None] = []

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[SentimentResult]:
        self.calls.append(embeddings)
        return [
            SentimentResult("negative", 0.1, 0.9)
            if ("慢" in t or "没到" in t)
            else SentimentResult("positive", 0.9, 0.9)
            for t in texts
        ]


def topic_groups(store: Store) -> dict[int, Counter]:
    out: dict[int, Counter] = {}
    for row in store.query("SELECT topic_id, external_id FROM posts WHERE topic_id IS NOT NULL"):
        out.setdefault(row["topic_id"], Counter())[GROUP[row["external_id"]]] += 1
    return out


def majority(store: Store) -> dict[str, int]:
    """group name → the topic id holding most of its posts."""
    return {counter.most_common(1)[0][0]: topic for topic, counter in topic_groups(store).items()}


@pytest.mark.slow
def test_topics_are_clean_stable_across_runs_and_flag_a_new_group(store: Store, embedder) -> None:
    counting = CountingEmbedder(embedder)
    ingest = PostIngestor(store, b"salt")
    phase1 = [r for r in ROWS if r["phase"] == 1]
    assert ingest.ingest_records(phase1).added == len(phase1)

    first = refresh_topics(store, counting, window_days=None)
    assert first.n_topics == 3 and first.emerging == []
    assert counting.encoded == len(phase1)
    groups = topic_groups(store)
    for counter in groups.values():  # each topic holds one group
        assert counter.most_common(1)[0][1] / sum(counter.values()) >= 0.9
    ids = majority(store)
    assert set(ids) == {"delivery", "cooking", "fruit"}
    keywords = {row["id"]: json.loads(row["keywords"]) for row in store.query("SELECT * FROM topics")}
    assert {"配送", "快递", "物流"} & set(keywords[ids["delivery"]][:5])
    assert {"老师", "课程", "烹饪", "火候"} & set(keywords[ids["cooking"]][:5])
    assert {"水果", "新鲜", "草莓", "芒果"} & set(keywords[ids["fruit"]][:5])
    for topic in store.query("SELECT * FROM topics"):
        assert topic["label"].count("·") == 2
        examples = json.loads(topic["examples"])
        assert len(examples) == 3
        members = {r["id"] for r in store.query("SELECT id FROM posts WHERE topic_id = ?", [topic["id"]])}
        assert {e["post_id"] for e in examples} <= members

    phase2 = [r for r in ROWS if r["phase"] == 2]
    added = ingest.ingest_records(phase2).added
    second = refresh_topics(store, counting, window_days=None)
    assert counting.encoded == len(phase1) + added  # old posts reuse their stored vectors
    assert second.n_topics == 4 and second.matched == 3 and second.new == 1
    again = majority(store)
    assert {k: again[k] for k in ids} == ids  # same ids for the same groups
    assert second.emerging == [again["mooncake"]]
    mooncake = store.query("SELECT * FROM topics WHERE id = ?", [again["mooncake"]])[0]
    assert mooncake["emerging"] == 1
    # The catalog's dish names stay whole (中秋月饼), so look for 月饼 inside the keywords.
    assert any("月饼" in word for word in json.loads(mooncake["keywords"])[:3])
    assert store.scalar("SELECT count(*) FROM topic_runs WHERE finished_at IS NOT NULL") == 2


@pytest.mark.slow
def test_analysis_reuses_stored_vectors_and_runs_once(store: Store, embedder) -> None:
    counting = CountingEmbedder(embedder)
    PostIngestor(store, b"salt").ingest_records(ROWS[:40])
    sentiment = KeywordSentiment()
    aspects_seen: list[list[str]] = []

    def aspects(texts: list[str]) -> list[list[dict]]:
        aspects_seen.append(texts)
        return [
            [{"aspect": "配送", "polarity": "negative", "span": (0, 2)}] if "配送" in t else [] for t in texts
        ]

    counts = analyze_new_posts(store, counting, sentiment, aspects=aspects, batch=16)
    assert counts["analyzed"] == 40 and counts["embedded"] == 40 and counting.encoded == 40
    assert all(call is not None and call.shape[1] == embedder.dim for call in sentiment.calls)
    assert store.scalar("SELECT count(*) FROM posts WHERE analyzed_at IS NULL") == 0
    negative = store.query("SELECT text_norm, sentiment, aspects FROM posts WHERE sentiment = 'negative'")
    assert negative and all("慢" in r["text_norm"] or "没到" in r["text_norm"] for r in negative)
    with_aspect = store.query("SELECT aspects FROM posts WHERE text_norm LIKE '%配送%' LIMIT 1")[0]
    assert json.loads(with_aspect["aspects"]) == [{"aspect": "配送", "polarity": "negative", "span": [0, 2]}]

    assert analyze_new_posts(store, counting, sentiment)["analyzed"] == 0  # nothing new
    refresh_topics(store, counting, window_days=None, min_posts=10)
    assert counting.encoded == 40  # topics reuse the vectors the analysis stored


def test_ctfidf_prefers_words_specific_to_a_topic() -> None:
    docs = [["草莓很甜很新鲜", "草莓新鲜多汁"], ["快递太慢", "快递三天才到"]]
    words = CTfidf().keywords(docs)
    assert words[0][0][0] in {"草莓", "新鲜"} and words[1][0][0] == "快递"


def test_centroid_matching_is_one_to_one_and_thresholded() -> None:
    old = np.eye(3, dtype=np.float32)
    new = np.array([[0.0, 0.99, 0.1], [0.98, 0.2, 0.0], [0.0, 0.0, -1.0]], dtype=np.float32)
    new /= np.linalg.norm(new, axis=1, keepdims=True)
    assert match_centroids(new, old, 0.9) == {0: 1, 1: 0}
    assert match_centroids(new[:0], old, 0.9) == {}


def test_refresh_skips_when_there_are_too_few_posts(store: Store) -> None:
    class NoEmbedder:
        fingerprint = "none"
        dim = 4

        def embed_queries(self, texts, *, cache=True, progress=False):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    PostIngestor(store, b"s").ingest_records(ROWS[:3])
    report = refresh_topics(store, NoEmbedder(), window_days=None)
    assert report.skipped and report.run_id is None
