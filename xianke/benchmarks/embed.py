"""Encoder throughput: batched passages vs single queries, cold and cached, from one run."""

from __future__ import annotations

import time

import numpy as np

from nlp.embedder import Embedder
from xianke.benchmarks import Row, peak_rss_mb, sample_texts


def run(embedder: Embedder, n_passages: int = 256, n_queries: int = 40) -> list[Row]:
    embedder.embed_passages(sample_texts(8, seed=1))  # load + warm up
    passages = sample_texts(n_passages)
    start = time.perf_counter()
    embedder.embed_passages(passages)
    batch_s = time.perf_counter() - start

    queries = [f"想学{t[:6]}" for t in sample_texts(n_queries, seed=3)]
    cold = []
    for query in queries:
        start = time.perf_counter()
        embedder.embed_query(query)
        cold.append((time.perf_counter() - start) * 1000)
    warm = []
    for query in queries:
        start = time.perf_counter()
        embedder.embed_query(query)
        warm.append((time.perf_counter() - start) * 1000)
    return [
        Row("embed.passages_batched", n_passages / batch_s, "texts/s", f"batch_size={embedder.batch_size}"),
        Row("embed.query_single_p50", float(np.percentile(cold, 50)), "ms", "uncached"),
        Row("embed.query_single_p95", float(np.percentile(cold, 95)), "ms", "uncached"),
        Row("embed.query_cached_p50", float(np.percentile(warm, 50)), "ms", "LRU hit"),
        Row("embed.peak_rss", peak_rss_mb(), "MB", "process"),
    ]
