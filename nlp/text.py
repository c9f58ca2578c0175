"""Chinese text handling: normalisation for social posts and jieba tokens with a food dictionary."""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import jieba

jieba.setLogLevel(60)  # silence the 'Building prefix dict' chatter on stderr

_URL = re.compile(r"(?:https?://|www\.)[^\s\u3000<>\"'，。！？]+", re.IGNORECASE)
_REPOST_CHAIN = re.compile(r"//\s*@[^:：\s]{1,30}\s*[:：].*$", re.DOTALL)
_MENTION = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}")
_HASHTAG = re.compile(r"#([^#\n]{1,40})#")
_EMOTICON_CODE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,8}\]")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_SPACES = re.compile(r"\s+")
_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN = re.compile(r"[A-Za-z]")
_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def normalize(text: str) -> str:
    """Width-fold, drop control characters, Traditional → Simplified, collapse spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    text = to_simplified(text)
    return _SPACES.sub(" ", text).strip()


@dataclass
class CleanPost:
    text: str
    tags: list[str] = field(default_factory=list)
    lang: str = "und"


def clean_post(raw: str) -> CleanPost:
    """Strip URLs, @mentions, //@ repost chains and [表情] codes; keep #话题# as tags."""
    text = normalize(raw)
    text = _REPOST_CHAIN.sub("", text)
    tags = [t.strip() for t in _HASHTAG.findall(text) if t.strip()]
    text = _HASHTAG.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _EMOTICON_CODE.sub(" ", text)
    text = _SPACES.sub(" ", text).strip(" :：,，")
    return CleanPost(text=text, tags=list(dict.fromkeys(tags)), lang=detect_language(text))


def detect_language(text: str) -> str:
    """zh / en / mixed / und from the script mix — enough to route Chinese-only analysis."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0 and latin == 0:
        return "und"
    if cjk and latin / (cjk + latin) > 0.5:
        return "mixed"
    return "zh" if cjk else "en"


def text_hash(text: str) -> str:
    """Hash of the normalised text with spaces and punctuation removed (near-exact duplicates collide)."""
    core = "".join(ch for ch in normalize(text).lower() if _TOKEN_OK.match(ch))
    return hashlib.sha256(core.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    path = resources.files("nlp") / "data" / "stopwords_zh.txt"
    return frozenset(w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip())


class Tokenizer:
    """A private jieba instance (so dictionaries never leak between users) plus stopword filtering."""

    def __init__(self, words: Iterable[str] = (), *, keep_stopwords: bool = False):
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self.keep_stopwords = keep_stopwords
        self.add_words(words)

    def add_words(self, words: Iterable[str]) -> None:
        with self._lock:
            for word in words:
                word = normalize(word)
                if 1 < len(word) <= 20 and " " not in word:
                    self._jieba.add_word(word, freq=50_000)

    def tokens(self, text: str) -> list[str]:
        text = normalize(text).lower()
        with self._lock:
            pieces = self._jieba.lcut(text, HMM=True)
        stop = frozenset() if self.keep_stopwords else stopwords()
        return [p for p in (p.strip() for p in pieces) if p and _TOKEN_OK.search(p) and p not in stop]

    def tokens_with_chars(self, text: str) -> list[str]:
        """Words plus the single CJK characters of longer words: helps 番茄炒蛋 ↔ 炒鸡蛋 match."""
        words = self.tokens(text)
        chars = [ch for w in words if len(w) > 1 for ch in w if _CJK.match(ch) and ch not in stopwords()]
        return words + chars


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    return Tokenizer()


@lru_cache(maxsize=1)
def _glossary() -> list[tuple[re.Pattern[str], str]]:
    path = resources.files("nlp") / "data" / "food_glossary_en_zh.tsv"
    pairs = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line]
    pairs.sort(key=lambda p: -len(p[0]))  # "gluten free" before "free"
    return [(re.compile(rf"\b{re.escape(en)}\b", re.IGNORECASE), zh.strip()) for en, zh in pairs]


def expand_english(text: str) -> str:
    """Append Chinese equivalents of English food words, so "learn dumplings" also searches 饺子.

    The multilingual encoder bridges languages only loosely at this size, and BM25 not at all.
    """
    if not _LATIN.search(text):
        return text
    extra = [zh for pattern, zh in _glossary() if pattern.search(text)]
    return f"{text} {' '.join(dict.fromkeys(extra))}" if extra else text
