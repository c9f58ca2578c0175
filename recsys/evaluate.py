"""Offline evaluation on labelled query sets: hit/precision/nDCG@5, constraint violations, latency.

Three sets are reported side by side so a number shaped on one set is never read alone:
the tuning half and the held-out half of `dev_queries.jsonl` (a fixed-seed split, `split_halves`),
and `new_queries.jsonl` (customer questions written before the rules were changed, with
`forbidden` slugs for the questions that state a hard constraint and `kind` for support/small talk).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")

SPLIT_SEED = 12  # fixed: the held-out half must stay the same questions from run to run


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[str]
    forbidden: frozenset[str] = frozenset()
    kind: str = "shopping"  # "support" / "small_talk": the right answer shows no items


@dataclass(frozen=True)
class Answered:
    """What one query got: the message kind the dialogue saw and the slugs shown, best first."""

    kind: str
    slugs: list[str]


class DevSetError(ValueError):
    pass


def _record(path: Path, number: int, line: str) -> LabelledQuery:
    try:
        record = json.loads(line)
        query = record["query"]
        relevant = record.get("relevant", [])
        forbidden = record.get("forbidden", [])
        kind = record.get("kind", "shopping")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DevSetError(f"{path.name}:{number}: expected {{\"query\": str, \"relevant\": [slug, …]}} ({exc})") from None
    if not isinstance(query, str) or not isinstance(relevant, list) or not isinstance(forbidden, list):
        raise DevSetError(f"{path.name}:{number}: 'query' must be text, 'relevant' and 'forbidden' lists")
    if kind == "shopping" and not relevant:
        raise DevSetError(f"{path.name}:{number}: a shopping query needs a non-empty 'relevant' list")
    return LabelledQuery(query, frozenset(relevant), frozenset(forbidden), str(kind))


def load_queries(path: Path) -> list[LabelledQuery]:
    lines = path.read_text(encoding="utf-8").splitlines()
    queries = [_record(path, n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not queries:
        raise DevSetError(f"{path.name}: no queries")
    return queries


def split_halves(queries: Sequence[T], seed: int = SPLIT_SEED) -> tuple[list[T], list[T]]:
    """(tuning half, held-out half), the same every run for the same file."""
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    tune = sorted(order[:half])
    held = sorted(order[half:])
    return [queries[i] for i in tune], [queries[i] for i in held]


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant)


def precision_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / k


def hit_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    return 1.0 if set(ranked[:k]) & relevant else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: frozenset[str]) -> float:
    return next((1.0 / rank for rank, slug in enumerate(ranked, 1) if slug in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, slug in enumerate(ranked[:k], 1) if slug in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal if ideal else 0.0


def score_set(queries: Sequence[LabelledQuery], answer: Callable[[str], Answered], k: int = 5) -> dict[str, float]:
    """hit@k, precision@k, nDCG@k, recall@k, MRR over shopping queries; constraint violations
    (queries with a labelled `forbidden` slug in the top k, and how many such slugs); and for
    support/small-talk queries the share answered without items."""
    rows: list[tuple[float, float, float, float, float]] = []
    violating_queries = violating_items = 0
    quiet_ok: list[float] = []
    latencies: list[float] = []
    for item in queries:
        start = time.perf_counter()
        got = answer(item.query)
        latencies.append((time.perf_counter() - start) * 1000)
        top = got.slugs[:k]
        bad = [s for s in top if s in item.forbidden]
        violating_items += len(bad)
        violating_queries += bool(bad)
        if item.kind != "shopping":
            quiet_ok.append(1.0 if not top and got.kind != "shopping" else 0.0)
            continue
        rel = item.relevant
        rows.append((hit_at(top, rel, k), precision_at(top, rel, k), ndcg_at(top, rel, k), recall_at(top, rel, k), reciprocal_rank(got.slugs, rel)))
    means = np.mean(np.array(rows), axis=0) if rows else np.zeros(5)
    return {
        "queries": len(queries),
        f"hit@{k}": round(float(means[0]), 4),
        f"precision@{k}": round(float(means[1]), 4),
        f"ndcg@{k}": round(float(means[2]), 4),
        f"recall@{k}": round(float(means[3]), 4),
        "mrr": round(float(means[4]), 4),
        "violating_queries": violating_queries,
        "violating_items": violating_items,
        "no_items_for_support": round(float(np.mean(quiet_ok)), 4) if quiet_ok else 1.0,
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 2),
    }


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
        if item.kind != "shopping":
            continue
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


# -- pairing ------------------------------------------------------------------
@dataclass(frozen=True)
class PairingLabel:
    ingredient: str
    partners: frozenset[str]


def load_pairing_labels(path: Path) -> list[PairingLabel]:
    labels = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            labels.append(PairingLabel(str(record["ingredient"]), frozenset(record["partners"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DevSetError(f"{path.name}:{number}: expected {{\"ingredient\": slug, \"partners\": [slug, …]}} ({exc})") from None
    if not labels:
        raise DevSetError(f"{path.name}: no labels")
    return [x for x in labels if x.partners]


def score_pairing(labels: Sequence[PairingLabel], partners: Callable[[str], list[str]], k: int = 5) -> dict[str, float]:
    """precision@k, hit@k and recall@k of `partners(ingredient) -> ranked slugs` against the labels."""
    rows = []
    for label in labels:
        ranked = [s for s in partners(label.ingredient) if s != label.ingredient][:k]
        rows.append((precision_at(ranked, label.partners, k), hit_at(ranked, label.partners, k), recall_at(ranked, label.partners, k)))
    means = np.mean(np.array(rows), axis=0)
    return {"ingredients": len(labels), f"precision@{k}": round(float(means[0]), 4), f"hit@{k}": round(float(means[1]), 4),
            f"recall@{k}": round(float(means[2]), 4)}
