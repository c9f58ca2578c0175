"""Benchmarks behind `xianke bench`: each returns rows of (metric, value, unit) from one run."""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    note: str = ""


_SUBJECTS = ["红烧肉", "清蒸鲈鱼", "麻婆豆腐", "戚风蛋糕", "酸菜鱼", "手擀面", "牛油果沙拉", "糖醋排骨", "小龙虾", "番茄牛腩"]
_VERBS = ["做法简单", "味道很正宗", "新手也能学会", "老师讲得很细", "食材很新鲜", "配送有点慢", "价格实惠", "包装很用心"]
_TAILS = ["，孩子很爱吃。", "，下次还会买！", "，就是有点咸。", "，推荐给大家。", "。", "，周末试试。"]


def sample_texts(n: int, seed: int = 7) -> list[str]:
    """Review-like Chinese sentences for throughput runs (deterministic, no data files needed)."""
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)}{rng.choice(_VERBS)}{rng.choice(_TAILS)}{i}" for i in range(n)]


def timed_ms(fn: Callable[[], object], repeat: int) -> np.ndarray:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return np.asarray(samples)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
