"""Sentiment of reviews and social posts: positive / neutral / negative plus P(positive).

Two backends behind one protocol (`SentimentModel`), chosen by `Settings.sentiment_model`:

- `EmbeddedSentiment` (setting "embedded", the default): one logistic regression over the post's
  multilingual-e5 vector *and* TF-IDF of jieba words, word bigrams and character 1–3-grams. The
  listening pipeline embeds each post once and hands the vector in, so this model adds no second
  encoder pass. It is trained on binary labels; a neutral band around P(positive) = 0.5 (tuned on
  validation, stored with the model) gives the third label. Artifact: nlp/models/sentiment/
  (see MODEL_CARD.md there); rebuilt with `xianke train sentiment --data <csv>`.
- `TransformersSentiment` (any other setting): a Hugging Face text-classification model by id or
  path; its labels (LABEL_k, positive/negative/neutral, 1–5 stars, 正面/负面…) are mapped onto ours.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import jieba
import numpy as np
from scipy import sparse

from core.logging import log_event
from core.settings import EMBEDDED_SENTIMENT
from nlp.text import normalize

if TYPE_CHECKING:
    from nlp.embedder import Embedder

log = logging.getLogger(__name__)

Label = Literal["positive", "neutral", "negative"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
LABELS_ZH: dict[str, str] = {"positive": "正面", "neutral": "中性", "negative": "负面"}

PACKAGED_DIR = Path(__file__).resolve().parent / "models" / "sentiment"
MANIFEST = "xianke-sentiment.json"
WEIGHTS = "model.npz"
VOCABULARY = "vocab.txt"
SCHEMA_VERSION = 1
REBUILD_HINT = "rebuild it with `xianke train sentiment --data <labelled.csv> --out <folder>`"


class SentimentArtifactError(RuntimeError):
    """The trained sentiment model is missing, corrupt or does not fit the encoder; says how to fix."""


class SentimentModelError(RuntimeError):
    """A Hugging Face model could not be loaded or its labels could not be mapped."""


@dataclass(frozen=True)
class SentimentResult:
    """`score` is P(positive) in [0, 1]; `confidence` is how sure the model is of `label`."""

    label: Label
    score: float
    confidence: float

    @property
    def label_zh(self) -> str:
        return LABELS_ZH[self.label]


class SentimentModel(Protocol):
    name: str

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[SentimentResult]:
        """One result per text. `embeddings`: the texts' `embed_queries(..., cache=False)` rows, if at hand."""
        ...


# -- the neutral band ------------------------------------------------------------------------


@dataclass(frozen=True)
class NeutralBand:
    """P(positive) strictly between `low` and `high` is too close to call: label it neutral."""

    low: float = 0.35
    high: float = 0.65

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= 0.5 <= self.high <= 1.0:
            raise ValueError(f"neutral band must satisfy 0 <= low <= 0.5 <= high <= 1, got {self}")

    def result(self, p: float) -> SentimentResult:
        p = min(max(float(p), 0.0), 1.0)
        if self.low < p < self.high:
            # 1 at a coin flip, falling towards the band's edges.
            return SentimentResult("neutral", p, 1.0 - 2.0 * abs(p - 0.5))
        if p >= self.high:
            return SentimentResult("positive", p, p)
        return SentimentResult("negative", p, 1.0 - p)


# Nothing to judge: an empty post is neutral, and we are sure of that.
EMPTY_RESULT = SentimentResult("neutral", 0.5, 1.0)


def _has_content(text: str) -> bool:
    return bool(text.strip())


def _clean_texts(texts: Sequence[str]) -> list[str]:
    return [normalize(t) if isinstance(t, str) else "" for t in texts]


# -- long posts: head + tail -------------------------------------------------------------------

HEAD_CHARS = 96
TAIL_CHARS = 64


def head_tail(text: str, head: int = HEAD_CHARS, tail: int = TAIL_CHARS) -> str:
    """A long post's opening and its ending, where reviews put their verdicts; the middle is
    usually narrative. Short texts come back unchanged."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "…" + text[-tail:]


# -- lexical features ------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
CHAR_NGRAMS = (1, 3)


_JIEBA_LOCK = threading.Lock()
_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)


@lru_cache(maxsize=1)
def _sentiment_jieba() -> jieba.Tokenizer:
    # Stopwords stay: the shared list drops 不/没有/很/但是, which carry most of the sentiment.
    # No extra dictionary words either, so features do not shift when other modules add food terms.
    # (The same segmentation as nlp.text.Tokenizer(keep_stopwords=True), minus its second normalise.)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def lexical_terms(text: str, *, normalized: bool = False) -> list[str]:
    """Feature names of one text: w:<word>, b:<word>_<word>, c:<1–3 characters> (spaces removed).
    `normalized`: the text already went through `normalize` (the pipeline's text_norm)."""
    text = (text if normalized else normalize(text)).lower()
    with _JIEBA_LOCK:
        pieces = _sentiment_jieba().lcut(text, HMM=True)
    words = [p for p in (p.strip() for p in pieces) if p and _TOKEN_OK.search(p)]
    terms = ["w:" + w for w in words]
    terms += ["b:" + a + "_" + b for a, b in pairwise(words)]
    chars = _SPACES.sub("", text)
    low, high = CHAR_NGRAMS
    for n in range(low, high + 1):
        terms += ["c:" + chars[i : i + n] for i in range(len(chars) - n + 1)]
    return terms


class LexicalFeatures:
    """TF-IDF over `lexical_terms`, same formula as scikit-learn's TfidfVectorizer(sublinear_tf=True,
    smooth_idf=True, norm="l2"), kept in plain arrays so the artifact needs no pickle."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray):
        if len(vocabulary) != len(idf):
            raise ValueError(f"vocabulary has {len(vocabulary)} terms but idf has {len(idf)}")
        self.vocabulary = list(vocabulary)
        self.index = {term: i for i, term in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float32)

    @classmethod
    def fit(cls, docs: Iterable[list[str]], *, min_df: int = 2, max_terms: int = 100_000) -> LexicalFeatures:
        """Keep terms seen in >= min_df documents, the max_terms most frequent (ties by name)."""
        df: Counter[str] = Counter()
        n_docs = 0
        for terms in docs:
            df.update(set(terms))
            n_docs += 1
        kept = sorted((t for t, c in df.items() if c >= min_df and "\n" not in t), key=lambda t: (-df[t], t))
        vocabulary = sorted(kept[:max_terms])
        counts = np.array([df[t] for t in vocabulary], dtype=np.float64)
        idf = np.log((1 + n_docs) / (1 + counts)) + 1.0
        return cls(vocabulary, idf)

    def transform_terms(self, docs: Sequence[list[str]]) -> sparse.csr_matrix:
        indptr, indices, values = [0], [], []
        for terms in docs:
            counts = Counter(self.index[t] for t in terms if t in self.index)
            if counts:  # a text with no known term stays an all-zero row
                cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                weights = (1.0 + np.log(tf)) * self.idf[cols]
                indices.extend(cols.tolist())
                values.extend((weights / np.linalg.norm(weights)).tolist())
            indptr.append(len(indices))
        shape = (len(docs), len(self.vocabulary))
        return sparse.csr_matrix((np.asarray(values, np.float32), indices, indptr), shape=shape)

    def transform(self, texts: Sequence[str], *, normalized: bool = False) -> sparse.csr_matrix:
        return self.transform_terms([lexical_terms(t, normalized=normalized) for t in texts])


# -- the embedded model ----------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


class EmbeddedSentiment:
    """Logistic regression over [TF-IDF terms ; e5 query vector] with a neutral band."""

    name = "embedded"
    uses_embeddings = True  # evaluate_sentiment / the pipeline embed once and pass the rows in
    takes_normalized = True  # predict(..., normalized=True) skips a second normalise of text_norm

    def __init__(
        self,
        features: LexicalFeatures,
        term_weights: np.ndarray,
        vector_weights: np.ndarray,
        intercept: float,
        embedder: Embedder | None,
        *,
        band: NeutralBand = NeutralBand(),
        encoder: str | None = None,
        temperature: float = 1.0,
    ):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.features = features
        self.term_weights = np.asarray(term_weights, dtype=np.float32)
        self.vector_weights = np.asarray(vector_weights, dtype=np.float32)
        self.intercept = float(intercept)
        self.embedder = embedder
        self.band = band
        self.encoder = encoder

    @property
    def dim(self) -> int:
        return len(self.vector_weights)

    def probabilities(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """P(positive) per (already normalised, non-empty) text, temperature-scaled."""
        if embeddings is None:
            if self.embedder is None:
                raise SentimentArtifactError(
                    "embedded sentiment needs an Embedder when no embeddings are given"
                )
            embeddings = self.embedder.embed_queries(list(texts), cache=False)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), self.dim):
            raise ValueError(f"embeddings must have shape ({len(texts)}, {self.dim}), got {embeddings.shape}")
        terms = self.features.transform(texts, normalized=True)
        z = terms @ self.term_weights + embeddings @ self.vector_weights + self.intercept
        return _sigmoid(np.asarray(z, dtype=np.float64) / self.temperature)

    def predict(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None, *, normalized: bool = False
    ) -> list[SentimentResult]:
        """`normalized`: the texts already went through `normalize` (the pipeline's text_norm)."""
        clean = [t if isinstance(t, str) else "" for t in texts] if normalized else _clean_texts(texts)
        if embeddings is not None and len(embeddings) != len(clean):
            raise ValueError(f"got {len(embeddings)} embeddings for {len(clean)} texts")
        active = [i for i, text in enumerate(clean) if _has_content(text)]
        results = [EMPTY_RESULT] * len(clean)
        if not active:
            return results
        vectors = None if embeddings is None else np.asarray(embeddings)[active]
        for i, p in zip(active, self.probabilities([clean[i] for i in active], vectors), strict=True):
            results[i] = self.band.result(float(p))
        return results

    # -- artifact I/O ----------------------------------------------------------------------

    def save(self, folder: Path, extra: dict | None = None) -> None:
        """Write weights (.npz), vocabulary (.txt) and a manifest with checksums into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            folder / WEIGHTS,
            idf=self.features.idf.astype(np.float32),
            term_weights=self.term_weights,
            vector_weights=self.vector_weights,
            intercept=np.array([self.intercept], dtype=np.float64),
        )
        (folder / VOCABULARY).write_text("\n".join(self.features.vocabulary) + "\n", encoding="utf-8")
        manifest = {
            "schema": SCHEMA_VERSION,
            "kind": "xianke-embedded-sentiment",
            "encoder": self.encoder,
            "dim": self.dim,
            "terms": len(self.features.vocabulary),
            "char_ngrams": list(CHAR_NGRAMS),
            "neutral_band": {"low": self.band.low, "high": self.band.high},
            "temperature": self.temperature,
            "sha256": {name: _sha256(folder / name) for name in (WEIGHTS, VOCABULARY)},
            **(extra or {}),
        }
        (folder / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )

    @classmethod
    def load(
        cls, folder: Path, embedder: Embedder | None, *, band: NeutralBand | None = None
    ) -> EmbeddedSentiment:
        folder = Path(folder)
        manifest = _read_manifest(folder)
        encoder = manifest.get("encoder")
        if embedder is not None and encoder and embedder.model_name != encoder:
            raise SentimentArtifactError(
                f"sentiment model at {folder} was trained on {encoder} vectors but the encoder is "
                f"{embedder.model_name}; {REBUILD_HINT}, or set XIANKE_SENTIMENT_MODEL to a Hugging Face model"
            )
        try:
            with np.load(folder / WEIGHTS, allow_pickle=False) as weights:
                arrays = {k: weights[k] for k in ("idf", "term_weights", "vector_weights", "intercept")}
            vocabulary = (folder / VOCABULARY).read_text(encoding="utf-8").split("\n")[:-1]
            features = LexicalFeatures(vocabulary, arrays["idf"])
            stored_band = NeutralBand(**manifest["neutral_band"])
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise SentimentArtifactError(
                f"sentiment model at {folder} is corrupt ({exc}); {REBUILD_HINT}"
            ) from exc
        if len(arrays["term_weights"]) != len(vocabulary) or len(arrays["vector_weights"]) != manifest.get(
            "dim"
        ):
            raise SentimentArtifactError(
                f"sentiment model at {folder} has inconsistent shapes; {REBUILD_HINT}"
            )
        model = cls(
            features,
            arrays["term_weights"],
            arrays["vector_weights"],
            float(arrays["intercept"][0]),
            embedder,
            band=band or stored_band,
            encoder=encoder,
            temperature=float(manifest.get("temperature", 1.0)),
        )
        log_event(
            log, "sentiment model loaded", folder=str(folder), terms=len(vocabulary), band=str(model.band)
        )
        return model


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise SentimentArtifactError(f"no sentiment model at {folder} (missing {MANIFEST}); {REBUILD_HINT}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SentimentArtifactError(
            f"sentiment model at {folder} has a corrupt {MANIFEST}; {REBUILD_HINT}"
        ) from exc
    if manifest.get("schema") != SCHEMA_VERSION:
        raise SentimentArtifactError(
            f"sentiment model at {folder} has schema {manifest.get('schema')}, expected {SCHEMA_VERSION}; {REBUILD_HINT}"
        )
    for name, digest in manifest.get("sha256", {}).items():
        file = folder / name
        if not file.is_file() or _sha256(file) != digest:
            raise SentimentArtifactError(f"sentiment model file {file} is missing or corrupt; {REBUILD_HINT}")
    return manifest


def is_sentiment_artifact(folder: Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def artifact_dir(models_dir: Path | None) -> Path:
    """A model retrained into <models_dir>/sentiment wins over the packaged one."""
    if models_dir is not None and is_sentiment_artifact(Path(models_dir) / "sentiment"):
        return Path(models_dir) / "sentiment"
    return PACKAGED_DIR


# -- Hugging Face models ---------------------------------------------------------------------

_STARS = re.compile(r"^([1-5])\s*(?:stars?|星)$")
_INDEXED = re.compile(r"^(?:label[_\s-]?)?(\d+)$")
_BY_COUNT: dict[int, tuple[Label, ...]] = {
    2: ("negative", "positive"),
    3: ("negative", "neutral", "positive"),  # cardiffnlp / most 3-way sentiment heads
    5: ("negative", "negative", "neutral", "positive", "positive"),  # 1–5 stars
}
_KEYWORDS: tuple[tuple[Label, tuple[str, ...]], ...] = (
    ("negative", ("neg", "负", "消极", "差评", "bad")),
    ("positive", ("pos", "正", "积极", "好评", "good")),
    ("neutral", ("neu", "中性", "中立", "mixed")),
)


def map_label(name: str, index: int, n_labels: int) -> Label:
    """One model label → our polarity: names first, then stars, then LABEL_k by the label count."""
    key = str(name).strip().lower()
    for polarity, words in _KEYWORDS:
        if any(word in key for word in words):
            return polarity
    if stars := _STARS.match(key):
        return _BY_COUNT[5][int(stars.group(1)) - 1]
    indexed = _INDEXED.match(key)
    if indexed and n_labels in _BY_COUNT and int(indexed.group(1)) < n_labels:
        return _BY_COUNT[n_labels][int(indexed.group(1))]
    raise SentimentModelError(
        f"cannot map label {name!r} (index {index} of {n_labels}) to positive/neutral/negative: "
        "expected names like positive/negative/neutral, LABEL_0…, or 1–5 stars"
    )


def label_polarities(id2label: dict[int, str]) -> list[Label]:
    names = [str(id2label[i]).strip().lower() for i in range(len(id2label))]
    if sorted(names) == ["1", "2", "3", "4", "5"]:  # bare ratings, not 0-based indices
        names = [f"{name} stars" for name in names]
    return [map_label(name, i, len(names)) for i, name in enumerate(names)]


class TransformersSentiment:
    """A Hugging Face sequence classifier. Two-way models get the neutral band; three-way and star
    models label by the largest summed class probability. `score` is P(positive) + ½·P(neutral), so
    0.5 is the even point for every kind of head."""

    uses_embeddings = False

    def __init__(
        self,
        model_id_or_path: str,
        *,
        band: NeutralBand = NeutralBand(),
        batch_size: int = 32,
        max_length: int = 256,
        device: str = "cpu",
    ):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = str(model_id_or_path)
        self.band = band
        self.batch_size = batch_size
        self.max_length = max_length
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.name)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.name).to(device).eval()
        except Exception as exc:  # hub, file and config errors come in many types
            raise SentimentModelError(
                f"cannot load Hugging Face model {self.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self.device = device
        # Never feed more tokens than the model has positions (RoBERTa-style models reserve 2 of them).
        positions = getattr(self.model.config, "max_position_embeddings", None) or max_length + 2
        self.max_length = min(
            max_length, positions - 2, getattr(self.tokenizer, "model_max_length", max_length)
        )
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self.single_logit = len(id2label) == 1  # a sigmoid head scoring positivity
        self.polarities: list[Label] = ["positive"] if self.single_logit else label_polarities(id2label)
        self.three_way = "neutral" in self.polarities
        log_event(log, "sentiment model loaded", model=self.name, labels=self.polarities)

    def _class_probabilities(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                logits = self.model(**batch).logits.float()
            probs = torch.sigmoid(logits) if self.single_logit else torch.softmax(logits, dim=-1)
            out.append(probs.cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def _polarity_mass(self, probs: np.ndarray) -> np.ndarray:
        """(n, classes) → (n, 3) summed probability for negative, neutral, positive."""
        if self.single_logit:
            p = probs[:, 0]
            return np.stack([1 - p, np.zeros_like(p), p], axis=1)
        mass = np.zeros((len(probs), 3))
        for column, polarity in enumerate(self.polarities):
            mass[:, LABELS.index(polarity)] += probs[:, column]
        return mass

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[SentimentResult]:
        clean = _clean_texts(texts)
        active = [i for i, text in enumerate(clean) if _has_content(text)]
        results = [EMPTY_RESULT] * len(clean)
        if not active:
            return results
        mass = self._polarity_mass(self._class_probabilities([clean[i] for i in active]))
        for i, (neg, neu, pos) in zip(active, mass, strict=True):
            score = float(pos + 0.5 * neu)
            if self.three_way:
                label = LABELS[int(np.argmax([neg, neu, pos]))]
                results[i] = SentimentResult(label, score, float(max(neg, neu, pos)))
            else:
                results[i] = self.band.result(score)
        return results


# -- factory ---------------------------------------------------------------------------------


def load_sentiment(setting: str, embedder: Embedder | None, models_dir: Path | None) -> SentimentModel:
    """The model a setting names.

    "embedded" → the trained artifact (a retrained <models_dir>/sentiment wins over the packaged one);
    a folder holding our manifest → that artifact; anything else → a Hugging Face model id or path.
    """
    setting = (setting or EMBEDDED_SENTIMENT).strip()
    if setting == EMBEDDED_SENTIMENT:
        return EmbeddedSentiment.load(artifact_dir(models_dir), embedder)
    if is_sentiment_artifact(Path(setting)):
        return EmbeddedSentiment.load(Path(setting), embedder)
    return TransformersSentiment(setting)
