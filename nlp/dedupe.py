"""Spam rules and near-duplicate detection for social posts (pure Python + numpy, no extra deps).

Exact duplicates are caught by the store's unique `text_hash`. Near duplicates (the same post with
a changed emoji, a price, a shop name) are caught here with MinHash over character 5-grams and
banded locality-sensitive hashing: a candidate from the bands is confirmed only when the estimated
Jaccard similarity of the shingle sets reaches `threshold`.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Hashable, Iterable

import numpy as np

# A Mersenne prime larger than any 32-bit shingle hash keeps (a·x + b) mod p a universal hash.
_PRIME = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)
_KEEP = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)


def shingles(text: str, n: int = 5) -> set[str]:
    """Character n-grams of the text without spaces and punctuation (what a copy-paster keeps)."""
    core = "".join(ch for ch in text.lower() if _KEEP.match(ch))
    if len(core) <= n:
        return {core} if core else set()
    return {core[i : i + n] for i in range(len(core) - n + 1)}


class MinHasher:
    """`num_perm` MinHash values from random affine hashes of the CRC32 of each shingle."""

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1):
        rng = np.random.default_rng(seed)
        # Coefficients below 2**32 keep a·x (x < 2**32) below 2**64, so uint64 arithmetic is exact.
        self.a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm
        self.ngram = ngram

    def signature(self, text: str) -> np.ndarray | None:
        grams = shingles(text, self.ngram)
        if not grams:
            return None
        x = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))
        hashed = (x[:, None] * self.a[None, :] + self.b[None, :]) % _PRIME
        return (hashed & _MASK32).min(axis=0).astype(np.uint32)


class NearDuplicateIndex:
    """Banded LSH over MinHash signatures; `find` returns the key of a stored near duplicate.

    With 128 hashes in 16 bands of 8 rows, pairs at Jaccard 0.8 collide in some band with
    probability ≈ 0.9996, pairs at 0.4 with ≈ 0.01 — candidates are then confirmed on the full
    signature, so the band settings only trade speed for recall.
    """

    def __init__(
        self,
        threshold: float = 0.8,
        *,
        num_perm: int = 128,
        bands: int = 16,
        ngram: int = 5,
        min_chars: int = 12,
        seed: int = 1,
    ):
        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        self.threshold = threshold
        self.min_chars = min_chars
        self.hasher = MinHasher(num_perm, ngram, seed)
        self.bands = bands
        self.rows = num_perm // bands
        self._buckets: list[dict[bytes, list[Hashable]]] = [defaultdict(list) for _ in range(bands)]
        self._signatures: dict[Hashable, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._signatures)

    def _eligible(self, text: str) -> bool:
        # Short posts ("好吃！", "已收到") share most 5-grams by chance; the exact hash covers them.
        return len(text) >= self.min_chars

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        return [signature[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]

    def find(self, text: str) -> tuple[Hashable, float] | None:
        """(key, estimated Jaccard) of the most similar stored text at or above the threshold."""
        if not self._eligible(text):
            return None
        signature = self.hasher.signature(text)
        return None if signature is None else self._find(signature)

    def _find(self, signature: np.ndarray) -> tuple[Hashable, float] | None:
        candidates: set[Hashable] = set()
        for band, key in enumerate(self._band_keys(signature)):
            candidates.update(self._buckets[band].get(key, ()))
        best: tuple[Hashable, float] | None = None
        for candidate in candidates:
            similarity = float(np.mean(self._signatures[candidate] == signature))
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (candidate, similarity)
        return best

    def add(self, key: Hashable, text: str) -> None:
        if not self._eligible(text) or key in self._signatures:
            return
        signature = self.hasher.signature(text)
        if signature is None:
            return
        self._signatures[key] = signature
        for band, band_key in enumerate(self._band_keys(signature)):
            self._buckets[band][band_key].append(key)

    def find_or_add(self, key: Hashable, text: str) -> tuple[Hashable, float] | None:
        """The near duplicate if there is one; otherwise remember `text` under `key`."""
        if not self._eligible(text):
            return None
        signature = self.hasher.signature(text)
        if signature is None:
            return None
        match = self._find(signature)
        if match is None:
            self._signatures[key] = signature
            for band, band_key in enumerate(self._band_keys(signature)):
                self._buckets[band][band_key].append(key)
        return match

    def extend(self, items: Iterable[tuple[Hashable, str]]) -> None:
        for key, text in items:
            self.add(key, text)


# -- spam rules -------------------------------------------------------------------

# Phrases that on their own mark an advert or scam in food/shop communities.
STRONG_SPAM = (
    "加微信",
    "加微",
    "加v",
    "加vx",
    "加q",
    "加qq",
    "威信",
    "薇信",
    "v信",
    "私信领取",
    "点击领取",
    "免费领取",
    "扫码领取",
    "刷单",
    "日赚",
    "日结",
    "躺赚",
    "兼职招聘",
    "招兼职",
    "代理加盟",
    "稳赚",
    "返利群",
    "领红包",
)
# Words that are normal in reviews but add up to an ad when combined with links or contact ids.
WEAK_SPAM = (
    "代购",
    "兼职",
    "优惠券",
    "私聊",
    "私我",
    "微商",
    "团购群",
    "低价",
    "包邮",
    "秒杀",
    "招代理",
    "联系我",
)
_LINK = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|cn|net|top|xyz|vip|cc)\b", re.IGNORECASE)
_CONTACT = re.compile(
    r"(?:微信|扣扣|电话|手机|(?<![a-z])(?:vx|wx|qq))号?\s*[:：]?\s*[a-z0-9_-]{5,}"
    r"|(?<![a-z])v\s*[:：]\s*[a-z0-9_-]{5,}|(?<!\d)1[3-9]\d{9}(?!\d)",
    re.IGNORECASE,
)
_REPEAT_RUN = re.compile(r"(.)\1{11,}")


def spam_reasons(text: str) -> list[str]:
    """Why `text` looks like spam (empty list when it does not). Rules, not a model: cheap and explainable."""
    lowered = re.sub(r"\s+", "", text.lower())
    reasons: list[str] = []
    strong = [p for p in STRONG_SPAM if p in lowered]
    if strong:
        reasons.append(f"advert phrase {strong[0]!r} / 广告用语")
    score = sum(1 for w in WEAK_SPAM if w in lowered)
    links = _LINK.findall(text)
    link_chars = sum(len(link) for link in links)
    if len(links) >= 3 or (links and link_chars > 0.5 * max(len(text), 1)):
        reasons.append("mostly links / 主要是链接")
    elif links:
        score += 1
    if _CONTACT.search(text):
        score += 1
    if not strong and score >= 2:
        reasons.append("advert words with links or contact ids / 广告词加联系方式")
    if _REPEAT_RUN.search(lowered):
        reasons.append("one character repeated many times / 重复字符")
    elif len(lowered) >= 20 and len(set(lowered)) / len(lowered) < 0.15:
        reasons.append("very few distinct characters / 字符重复过多")
    return reasons
