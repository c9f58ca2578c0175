"""Topic keywords and labels that are words: tokenizer, collocations, c-TF-IDF and the label.

- `TopicTokenizer`: jieba with the catalog's food vocabulary (dish, ingredient, kit and course names,
  nlp.vocabulary) and **without the HMM**, so it never invents a "word" from unknown characters
  (宫保鸡丁 → 宫保鸡/丁要 came from the HMM guessing at 丁要); every token it returns is in its
  dictionary. Stop list: the shared stopwords plus nlp/data/topic_stopwords_zh.txt (function words,
  pronouns, adverbs, time words, generic verbs and review filler).
- `Collocations`: adjacent word pairs merged when they co-occur far more than chance (PMI), e.g.
  番茄 + 牛腩 → 番茄牛腩 where the catalog lacks the dish.
- `CTfidf`: class-based TF-IDF over those terms; words in more than `max_df` of all posts (the
  campaign keyword every mention carries, the shop name) and `ignore` words never label a topic.
- `TopicLabeler`: the best food word first (the thing discussed), then the next best terms that do
  not repeat it (宫保鸡丁·调料·客服).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import pairwise

import jieba

from nlp.text import normalize, stopwords
from nlp.vocabulary import catalog_vocabulary, food_vocabulary

_CJK_OR_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
_CJK_ONLY = re.compile(r"^[\u4e00-\u9fff]+$")


@lru_cache(maxsize=1)
def topic_stopwords() -> frozenset[str]:
    """The shared stop list plus the topic one (lines starting with # are comments)."""
    path = resources.files("nlp") / "data" / "topic_stopwords_zh.txt"
    extra = {
        word
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
        for word in line.split()
    }
    return stopwords() | frozenset(extra)


class TopicTokenizer:
    """Content words of a post, in runs of adjacent words (a stopword or punctuation ends a run)."""

    def __init__(self, words: Iterable[str] = (), *, food: Iterable[str] | None = None, min_len: int = 2):
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self.min_len = min_len
        self.stop = topic_stopwords()
        self.food = frozenset(normalize(w) for w in (food_vocabulary() if food is None else food))
        with self._lock:
            self._jieba.initialize()
            for word in (*self.food, *(normalize(w) for w in words)):
                if 1 < len(word) <= 20 and " " not in word:
                    self._jieba.add_word(word, freq=50_000)

    def is_word(self, token: str) -> bool:
        """In the dictionary (jieba's own words plus the food vocabulary)."""
        return self._jieba.FREQ.get(token, 0) > 0

    def runs(self, text: str) -> list[list[str]]:
        with self._lock:
            pieces = self._jieba.lcut(normalize(text).lower(), HMM=False)
        out: list[list[str]] = [[]]
        for piece in (p.strip() for p in pieces):
            if not piece or not _CJK_OR_WORD.search(piece) or piece in self.stop or piece.isdigit():
                if out[-1]:
                    out.append([])
                continue
            out[-1].append(piece)
        return [run for run in out if run]

    def tokens(self, text: str) -> list[str]:
        return [t for run in self.runs(text) for t in run if self.keeps(t)]

    def keeps(self, token: str) -> bool:
        return len(token) >= self.min_len and token not in self.stop


@dataclass
class Collocations:
    """Adjacent pairs of dictionary words with count >= min_count and PMI >= min_pmi (natural log)."""

    min_count: int = 3
    min_pmi: float = 3.5
    pairs: dict[tuple[str, str], float] = field(default_factory=dict)

    def fit(self, runs_per_doc: Iterable[list[list[str]]]) -> Collocations:
        unigrams: Counter[str] = Counter()
        bigrams: Counter[tuple[str, str]] = Counter()
        for runs in runs_per_doc:
            for run in runs:
                unigrams.update(run)
                bigrams.update(pairwise(run))
        total = sum(unigrams.values()) or 1
        self.pairs = {}
        for (a, b), n in bigrams.items():
            if n < self.min_count or len(a) < 2 or len(b) < 2 or not _CJK_ONLY.match(a + b):
                continue
            pmi = math.log(n * total / (unigrams[a] * unigrams[b]))
            if pmi >= self.min_pmi:
                self.pairs[(a, b)] = pmi
        return self

    def merge(self, run: list[str]) -> list[str]:
        """Left to right; where two pairs overlap (a b c), the one with the higher PMI wins."""
        out, i = [], 0
        while i < len(run):
            here = self.pairs.get((run[i], run[i + 1])) if i + 1 < len(run) else None
            after = self.pairs.get((run[i + 1], run[i + 2])) if i + 2 < len(run) else None
            if here is not None and (after is None or here >= after):
                out.append(run[i] + run[i + 1])
                i += 2
            else:
                out.append(run[i])
                i += 1
        return out

    def is_collocation(self, term: str) -> bool:
        return any(a + b == term for a, b in self.pairs)


@lru_cache(maxsize=1)
def default_topic_tokenizer() -> TopicTokenizer:
    return TopicTokenizer()


class CTfidf:
    """Class-based TF-IDF (BERTopic): a term scores high when frequent in one topic and rare overall."""

    def __init__(
        self,
        tokenizer: TopicTokenizer | None = None,
        *,
        top_n: int = 10,
        max_df: float = 0.3,
        ignore: Iterable[str] = (),
        collocations: Collocations | None = None,
    ):
        self.tokenizer = tokenizer or default_topic_tokenizer()
        self.top_n = top_n
        self.max_df = max_df
        self.ignore = frozenset(normalize(w) for w in ignore)
        self.collocations = collocations if collocations is not None else Collocations()

    def _ignored(self, term: str) -> bool:
        # An ignored phrase (秋季食材包) also silences its pieces (秋季, 食材包) and terms holding it.
        return any(term in phrase or phrase in term for phrase in self.ignore)

    def terms(self, runs: list[list[str]]) -> list[str]:
        merged = [t for run in runs for t in self.collocations.merge(run)]
        return [t for t in merged if self.tokenizer.keeps(t) and not self._ignored(t)]

    def keywords(self, docs_per_topic: Sequence[Sequence[str]]) -> list[list[tuple[str, float]]]:
        runs = [[self.tokenizer.runs(doc) for doc in docs] for docs in docs_per_topic]
        self.collocations.fit(r for topic in runs for r in topic)
        terms = [[self.terms(r) for r in topic] for topic in runs]
        n_docs = sum(len(topic) for topic in terms)
        df: Counter[str] = Counter(t for topic in terms for doc in topic for t in set(doc))
        # Only on enough posts: in a handful, a topic's own word can sit in a third of them.
        common = {t for t, n in df.items() if n > self.max_df * n_docs} if n_docs >= 30 else set()
        counts = [Counter(t for doc in topic for t in doc if t not in common) for topic in terms]
        overall: Counter[str] = Counter()
        for c in counts:
            overall.update(c)
        if not overall:
            return [[] for _ in counts]
        avg_words = sum(overall.values()) / len(counts)
        out = []
        for c in counts:
            total = sum(c.values()) or 1
            scored = [(w, (n / total) * math.log(1 + avg_words / overall[w])) for w, n in c.items()]
            scored.sort(key=lambda item: (-item[1], item[0]))
            out.append([(w, round(s, 4)) for w, s in scored[: self.top_n]])
        return out

    def is_label_term(self, term: str) -> bool:
        """A dictionary word or a merged collocation: what every label token must be."""
        return self.tokenizer.is_word(term) or self.collocations.is_collocation(term)


class TopicLabeler:
    """`n` terms joined by ·: the best-scoring food word first, then terms that do not repeat it."""

    def __init__(self, food: Iterable[str] | None = None, n: int = 3, promote_from: int = 5):
        self.food = frozenset(catalog_vocabulary() if food is None else food)  # dishes, not 冰袋
        self.n = n
        self.promote_from = promote_from

    def __call__(self, keywords: Sequence[str]) -> str:
        chosen: list[str] = []
        # Promote a food word only from the head of the list: a dish far down is not this topic's.
        first = next((w for w in keywords[: self.promote_from] if self.names_food(w)), None)
        for word in ([first] if first else []) + list(keywords):
            if len(chosen) == self.n:
                break
            if all(word not in c and c not in word for c in chosen):
                chosen.append(word)
        return "·".join(chosen) or "（未命名）"

    def names_food(self, term: str) -> bool:
        """A food word, part of one (红烧肉 in 本帮红烧肉) or holding one (番茄牛腩 = 番茄 + 牛腩)."""
        if term in self.food:
            return True
        if len(term) >= 3 and any(term in word for word in self.food):  # two characters: too loose
            return True
        pieces = (term[i:j] for i in range(len(term)) for j in range(i + 2, len(term) + 1))
        return any(piece in self.food for piece in pieces)


def keyword_label(keywords: Sequence[str], n: int = 3) -> str:
    return TopicLabeler(n=n)(keywords)
