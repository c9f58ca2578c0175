"""Offline retrieval evaluation on a labelled query set: recall@k, MRR, nDCG@10, latency."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[str]


class DevSetError(ValueError):
    pass


def load_queries(path: Path) -> list[LabelledQuery]:
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            query, relevant = record["query"], record["relevant"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DevSetError(f"{path.name}:{number}: expected {{\"query\": str, \"relevant\": [slug, …]}} ({exc})") from None
        if not isinstance(query, str) or not isinstance(relevant, list) or not relevant:
            raise DevSetError(f"{path.name}:{number}: 'query' must be text and 'relevant' a non-empty list")
        queries.append(LabelledQuery(query, frozenset(relevant)))
    if not queries:
        raise DevSetError(f"{path.name}: no queries")
    return queries


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: frozenset[str]) -> float:
    return next((1.0 / rank for rank, slug in enumerate(ranked, 1) if slug in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, slug in enumerate(ranked[:k], 1) if slug in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal if ideal else 0.0


def evaluate(queries: Sequence[LabelledQuery], rank: Callable[[str], list[str]]) -> dict[str, float]:
    """Mean metrics of `rank(query) -> ranked slugs` over the set, plus latency percentiles in ms."""
    return evaluate_side_by_side(queries, {"only": rank})["only"]


def evaluate_side_by_side(
    queries: Sequence[LabelledQuery], rankers: dict[str, Callable[[str], list[str]]]
) -> dict[str, dict[str, float]]:
    """Like `evaluate` for several rankers, interleaved query by query so that load on a shared
    machine hits every ranker alike and their latencies can be compared."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in rankers}
    latencies: dict[str, list[float]] = {name: [] for name in rankers}
    for item in queries:
        for name, rank in rankers.items():
            start = time.perf_counter()
            ranked = rank(item.query)
            latencies[name].append((time.perf_counter() - start) * 1000)
            rows[name].append(
                (
                    recall_at(ranked, item.relevant, 5),
                    recall_at(ranked, item.relevant, 10),
                    reciprocal_rank(ranked, item.relevant),
                    ndcg_at(ranked, item.relevant, 10),
                )
            )
    results = {}
    for name in rankers:
        means = np.mean(np.array(rows[name]), axis=0)
        results[name] = {
            "recall@5": round(float(means[0]), 4),
            "recall@10": round(float(means[1]), 4),
            "mrr": round(float(means[2]), 4),
            "ndcg@10": round(float(means[3]), 4),
            "latency_p50_ms": round(float(np.percentile(latencies[name], 50)), 2),
            "latency_p95_ms": round(float(np.percentile(latencies[name], 95)), 2),
        }
    return results
