"""Listening pipeline throughput: whole pipeline posts/s next to the raw embedding rate, from one run.

Pipeline = validate + normalise + dedupe/spam (ingest) → embed once → sentiment (+ aspects) → topics,
on a temporary SQLite file, exactly as the scheduled jobs run it.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.store import Store
from listening.analysis import analyze_new_posts, default_aspects
from listening.ingest import PostIngestor
from listening.topic_refresh import refresh_topics
from nlp.embedder import Embedder
from nlp.text import default_tokenizer
from xianke.benchmarks import Row, peak_rss_mb

_DISHES = [
    "红烧肉",
    "清蒸鲈鱼",
    "麻婆豆腐",
    "戚风蛋糕",
    "酸菜鱼",
    "手擀面",
    "糖醋排骨",
    "小龙虾",
    "番茄牛腩",
    "榴莲",
    "车厘子",
    "草莓礼盒",
    "冰皮月饼",
    "羊排",
    "蓝莓",
    "芒果",
]
_OPINIONS = [
    "味道很正宗",
    "老师讲得很细",
    "食材特别新鲜",
    "配送有点慢",
    "价格实惠",
    "包装很用心",
    "有点咸了",
    "分量太少",
    "冷链做得好",
    "客服回复很快",
    "火候没掌握好",
    "孩子很爱吃",
    "送到时已经化了",
    "性价比一般",
]
_CONTEXT = [
    "周末在家",
    "第一次跟着视频课",
    "给爸妈做",
    "公司团建",
    "减脂期间",
    "下班路上下单",
    "朋友推荐",
    "看直播买的",
    "生日那天",
    "趁活动囤的",
]
_TAILS = [
    "下次还会买",
    "推荐给大家",
    "有点失望",
    "希望改进",
    "整体满意",
    "会继续关注",
    "不会再买了",
    "值得一试",
]


def bench_posts(n: int, seed: int = 11) -> list[str]:
    """Varied review-like posts: four independent slots, so few are near duplicates of each other."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_CONTEXT)}买了{rng.choice(_DISHES)}，{rng.choice(_OPINIONS)}，"
        f"{rng.choice(_OPINIONS)}，{rng.choice(_TAILS)}。"
        for _ in range(n)
    ]


def run(embedder: Embedder, sentiment: Any, n: int = 512) -> list[Row]:
    texts = bench_posts(n)
    # Warm up: model load, jieba dictionary, opencc tables, sklearn import are not throughput.
    warm = embedder.embed_queries(texts[:8], cache=False)
    sentiment.predict(texts[:8], embeddings=warm)
    default_tokenizer().tokens(texts[0])
    import sklearn.cluster  # noqa: F401 - a one-off import, not per-post work

    def raw_embedding_seconds() -> float:
        start = time.perf_counter()
        embedder.embed_queries(texts, cache=False)
        return time.perf_counter() - start

    # Raw encoding is timed before and after the pipeline and averaged, so a busy shared machine
    # skews both figures alike.
    raw_before = raw_embedding_seconds()

    now = datetime.now(UTC)
    records = [
        {
            "source": "bench",
            "external_id": str(i),
            "text": text,
            "created_at": (now - timedelta(minutes=i)).isoformat(),
        }
        for i, text in enumerate(texts)
    ]
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db")
        try:
            clock = time.perf_counter()
            report = PostIngestor(store, b"bench-salt").ingest_records(records)
            ingest_s = time.perf_counter() - clock
            clock = time.perf_counter()
            counts = analyze_new_posts(store, embedder, sentiment, aspects=default_aspects(sentiment))
            analyze_s = time.perf_counter() - clock
            clock = time.perf_counter()
            topics = refresh_topics(store, embedder, window_days=None)
            topics_s = time.perf_counter() - clock
        finally:
            store.close()
    raw_s = (raw_before + raw_embedding_seconds()) / 2
    total_s = ingest_s + analyze_s + topics_s
    raw_rate = n / raw_s
    pipeline_rate = n / total_s
    kept = report.added
    return [
        Row(
            "listen.embed_raw",
            raw_rate,
            "posts/s",
            f"embed_queries only, {n} posts, batch {embedder.batch_size}, mean of 2 runs",
        ),
        Row(
            "listen.pipeline",
            pipeline_rate,
            "posts/s",
            f"ingest→embed→sentiment→aspects→topics, {n} posts in",
        ),
        Row(
            "listen.pipeline_vs_raw",
            pipeline_rate / raw_rate,
            "ratio",
            "1.0 = pipeline as fast as embedding alone",
        ),
        Row(
            "listen.ingest",
            n / ingest_s,
            "posts/s",
            f"validate+normalise+dedupe: {kept} kept, "
            f"{report.duplicates + report.near_duplicates} dup, {len(report.spam)} spam",
        ),
        Row(
            "listen.analyze",
            counts["analyzed"] / analyze_s if analyze_s else 0.0,
            "posts/s",
            f"embed once + sentiment ({getattr(sentiment, 'name', type(sentiment).__name__)}) + aspects",
        ),
        Row(
            "listen.topics",
            topics_s,
            "s",
            f"{topics.n_topics} topics over {topics.n_posts} posts (vectors reused)",
        ),
        Row("listen.peak_rss", peak_rss_mb(), "MB", "process"),
    ]
