"""Recommendation latency and memory on synthetic catalogs of 1k, 10k and 100k items.

Synthetic items are copies of the shipped catalog with varied titles and perturbed
vectors (real passage embeddings + Gaussian noise, renormalised), so retrieval,
fusion and ranking work at scale without embedding 100k passages. The query is
embedded by the real model every time (cache off), measured separately.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from bot.cards import card_text
from bot.reasons import render_reasons
from core.domain import ItemKind
from nlp.embedder import Embedder
from nlp.text import Tokenizer
from recsys.documents import KIND_BASE, ItemDoc, food_words
from recsys.index import CatalogIndex
from recsys.query import QueryParser
from recsys.recommender import Recommender
from recsys.sparse import SparseIndex
from xianke.benchmarks import Row

_VARIANTS = ["家庭版", "快手版", "升级版", "经典款", "周末特辑", "名师版", "轻盈版", "节日款", "地方风味", "私房做法"]
QUERIES = [
    "零基础想学几道家常川菜", "减脂期间适合吃什么", "周末给孩子烤个生日蛋糕", "牛腩怎么炖才软烂",
    "100块以内的烘焙课", "想买新鲜的三文鱼做刺身", "火锅食材包", "素食的家常菜课程",
    "广式早茶点心怎么做", "适合新手的西餐课", "想学做面条", "低糖甜品",
]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def synthetic_catalog(docs: Sequence[ItemDoc], vectors: np.ndarray, size: int, seed: int = 11) -> tuple[list[ItemDoc], np.ndarray]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(docs), size)
    out: list[ItemDoc] = []
    for n, pick in enumerate(picks):
        base = docs[pick]
        variant = _VARIANTS[n % len(_VARIANTS)]
        out.append(
            dataclasses.replace(
                base,
                id=KIND_BASE[base.kind] + 10_000_000 + n,
                slug=f"{base.slug}-{n}",
                title=f"{base.title}·{variant}",
                keywords=f"{base.keywords} {variant}",
            )
        )
    noisy = vectors[picks] + rng.normal(0, 0.04, (size, vectors.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return out, noisy.astype(np.float32)


def run(docs: Sequence[ItemDoc], embedder: Embedder, sizes: Sequence[int] = (1_000, 10_000, 100_000)) -> list[Row]:
    base_vectors = embedder.embed_passages([d.text for d in docs], progress=True)
    rows: list[Row] = []
    for size in tqdm(sizes, desc="synthetic catalogs", unit="catalog"):
        before = rss_mb()
        items, vectors = synthetic_catalog(docs, base_vectors, size)
        start = time.perf_counter()
        index = CatalogIndex.from_vectors(np.array([d.id for d in items]), vectors, "hnsw" if size > 20_000 else "flat")
        sparse = SparseIndex([d.id for d in items], [d.keywords for d in items], Tokenizer(food_words(list(docs))))
        build_s = time.perf_counter() - start
        engine = Recommender(items, index, sparse, embedder)
        parser = QueryParser({n: d.slug for d in docs if d.kind == ItemKind.INGREDIENT for n in d.ingredient_names},
                             {d.cuisine for d in docs}, sparse.tokenizer)
        parts: dict[str, list[float]] = {"embed": [], "retrieve": [], "rank": [], "render": []}
        for round_ in range(3):
            for query in QUERIES:
                embedder.clear_cache()  # every query pays for its embedding, as a new customer's would
                start = time.perf_counter()
                parsed = parser.parse(f"{query}{'' if round_ == 0 else '呀' * round_}")
                parse_ms = (time.perf_counter() - start) * 1000
                result = engine.recommend(parsed, k=5)
                start = time.perf_counter()
                for n, item in enumerate(result.items, 1):
                    card_text(n, item.kind, item.title, item.price_cents, render_reasons(item.reasons, "zh"), item.summary)
                parts["render"].append((time.perf_counter() - start) * 1000 + parse_ms)  # parsing counts as overhead
                for key in ("embed", "retrieve", "rank"):
                    parts[key].append(result.timings_ms[key])
        p50 = {k: float(np.percentile(v, 50)) for k, v in parts.items()}
        p95 = {k: float(np.percentile(v, 95)) for k, v in parts.items()}
        label = f"recsys.{size // 1000}k"
        for key in ("embed", "retrieve", "rank", "render"):
            rows.append(Row(f"{label}.{key}_p50", p50[key], "ms", f"p95 {p95[key]:.2f} ms"))
        overhead = p50["retrieve"] + p50["rank"] + p50["render"]
        rows.append(Row(f"{label}.overhead_ratio", overhead / p50["embed"], "×embed", "(retrieve+rank+render)/embed, p50"))
        rows.append(Row(f"{label}.index_build", build_s, "s", index.kind))
        rows.append(Row(f"{label}.rss_delta", rss_mb() - before, "MB", f"rss {rss_mb():.0f} MB"))
    return rows
