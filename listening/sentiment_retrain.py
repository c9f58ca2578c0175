"""Weekly sentiment retrain with marketers' corrections, promoted only when it does not get worse.

    1. Train a candidate (nlp.sentiment_train.train_sentiment, corrections weighted ×CORRECTION_WEIGHT)
       into a temporary folder beside <models_dir>/sentiment.
    2. Score the candidate and the model in use on the *same* validation rows: the seeded validation
       split of the training CSV minus every corrected post (corrections are training data, never
       grading data).
    3. Promote (rename into <models_dir>/sentiment; the model it replaces stays in
       <models_dir>/.sentiment-previous for a manual rollback) only if validation accuracy does not
       drop; otherwise the candidate is deleted and the current model kept. Either way the numbers are
       returned as the job's counts and so land in `job_runs`.

Embedding the whole CSV dominates a retrain, so `VectorCache` keeps e5 vectors per text in
<data_dir>/cache: after the first run only new texts (the corrections) reach the encoder.
A running bot or scheduler keeps the model it loaded; the promoted one is used after a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.logging import log_event
from core.repos.corrections import CorrectionRepository
from core.settings import EMBEDDED_SENTIMENT, Settings
from core.store import Store, loads
from nlp.embedder import Embedder
from nlp.sentiment import PACKAGED_DIR, EmbeddedSentiment, SentimentArtifactError, is_sentiment_artifact
from nlp.sentiment_train import (
    LabelledText,
    binary_metrics,
    read_labelled_csv,
    split_rows,
    train_sentiment,
)
from nlp.text import normalize, text_hash

log = logging.getLogger(__name__)

JOB_NAME = "sentiment_retrain"
RETRAIN_FILE = "retrain.json"
PREVIOUS_DIR = ".sentiment-previous"


# -- a per-text vector cache -------------------------------------------------------------------


class VectorCache:
    """Wraps an Embedder: e5 `query:` vectors remembered per text (in memory, and in an .npz file when
    `path` is given), so repeated retrains embed only texts they have not seen. It answers the parts of
    the Embedder interface that training and the embedded model use."""

    def __init__(self, embedder: Any, path: Path | None = None):
        self.embedder = embedder
        self.model_name = embedder.model_name
        self.path = Path(path) if path else None
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path is not None and self.path.is_file():
            self._read()

    @property
    def fingerprint(self) -> str:
        return str(self.embedder.fingerprint)

    def _key(self, text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def _read(self) -> None:
        assert self.path is not None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["fingerprint"]) != self.fingerprint:
                    return  # vectors of another encoder: start afresh
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        except (OSError, KeyError, ValueError) as exc:
            log_event(log, "vector cache unreadable, starting afresh", logging.WARNING, path=str(self.path), error=str(exc))

    def save(self) -> None:
        if self.path is None or not self._dirty or not self._vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self._vectors)
        staging = self.path.with_name(f".{self.path.stem}-new.npz")
        np.savez(staging, fingerprint=np.array(self.fingerprint), keys=np.array(keys),
                 vectors=np.stack([self._vectors[k] for k in keys]))
        staging.replace(self.path)  # readers see the old file or the new one, never half of one
        self._dirty = False

    def embed_queries(self, texts: Sequence[str], *, cache: bool = True, progress: bool = False) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}
        if missing:
            vectors = self.embedder.embed_queries(list(missing.values()), cache=False, progress=progress)
            self._vectors.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
            self._dirty = True
            self.save()
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys])


# -- the gated retrain -------------------------------------------------------------------------


@dataclass
class RetrainResult:
    promoted: bool
    reason: str  # promoted | no_current_model | accuracy_dropped
    candidate_accuracy: float
    current_accuracy: float | None
    validation_n: int
    corrections: int
    seconds: float
    model_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, Any]:
        return {
            "promoted": int(self.promoted),
            "reason": self.reason,
            "val_acc_candidate": self.candidate_accuracy,
            "val_acc_current": self.current_accuracy,
            "validation_n": self.validation_n,
            "corrections": self.corrections,
            "seconds": self.seconds,
        }


def validation_rows(csv_path: Path, seed: int, exclude_texts: Iterable[str] = ()) -> list[LabelledText]:
    """The validation rows `train_sentiment` tunes on, for the same CSV, seed and corrected texts."""
    excluded = {text_hash(t) for t in exclude_texts if t}
    rows = split_rows(read_labelled_csv(csv_path), seed).validation
    return [r for r in rows if text_hash(r.text) not in excluded]


def validation_accuracy(model: EmbeddedSentiment, rows: Sequence[LabelledText], vectors: np.ndarray) -> float:
    """Accuracy of the binary call (P(positive) >= 0.5) — the number train_sentiment selects on."""
    scores = np.array([r.score for r in model.predict([r.text for r in rows], embeddings=vectors)])
    return float(binary_metrics(np.array([r.label for r in rows]), scores, [r.domain for r in rows])["accuracy"])


def retrain_sentiment(
    csv_path: Path,
    embedder: Any,
    model_dir: Path,
    *,
    corrections: Sequence[tuple[str, int | str]],
    exclude_texts: Iterable[str] = (),
    current_dir: Path | None = None,
    seed: int = 13,
    min_gain: float = 0.0,
    correction_weight: int | None = None,
    progress: bool = False,
    note: dict[str, Any] | None = None,
) -> RetrainResult:
    """Train a candidate with `corrections`; swap it into `model_dir` only if its validation accuracy
    is at least the current model's + `min_gain` (0: "does not drop"). The current model is the one in
    `current_dir`, else `model_dir` if it holds one, else the packaged model."""
    started = time.perf_counter()
    model_dir = Path(model_dir).resolve()
    excluded = [*exclude_texts, *(text for text, _ in corrections)]
    if current_dir is None:
        current_dir = model_dir if is_sentiment_artifact(model_dir) else PACKAGED_DIR
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sentiment-candidate-", dir=model_dir.parent))
    try:
        candidate_dir = staging / "sentiment"
        extra = {} if correction_weight is None else {"correction_weight": correction_weight}
        metrics = train_sentiment(
            csv_path, embedder, candidate_dir, seed=seed, corrections=list(corrections),
            exclude_texts=excluded, progress=progress, **extra,
        )
        rows = validation_rows(csv_path, seed, excluded)
        vectors = embedder.embed_queries([normalize(r.text) for r in rows], cache=False)
        candidate_acc = validation_accuracy(EmbeddedSentiment.load(candidate_dir, embedder), rows, vectors)
        try:
            current_acc: float | None = validation_accuracy(EmbeddedSentiment.load(current_dir, embedder), rows, vectors)
        except SentimentArtifactError as exc:  # nothing usable in place: any trained model is better
            log_event(log, "no usable current sentiment model", logging.WARNING, error=str(exc))
            current_acc = None
        promoted = current_acc is None or candidate_acc >= current_acc + min_gain
        reason = "no_current_model" if current_acc is None else ("promoted" if promoted else "accuracy_dropped")
        result = RetrainResult(
            promoted, reason, round(candidate_acc, 4), None if current_acc is None else round(current_acc, 4),
            len(rows), len(corrections), 0.0, model_dir, metrics,
        )
        result.seconds = round(time.perf_counter() - started, 1)
        if promoted:
            record = {**result.counts(), "current_dir": str(current_dir), **(note or {})}
            (candidate_dir / RETRAIN_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")
            _swap_in(candidate_dir, model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log_event(
        log, "sentiment retrain " + ("promoted" if result.promoted else "rejected"),
        logging.INFO if result.promoted else logging.WARNING, **result.counts(),
    )
    return result


def _swap_in(new_dir: Path, model_dir: Path) -> None:
    """Rename the candidate into place; the replaced model is kept as .sentiment-previous."""
    previous = model_dir.with_name(PREVIOUS_DIR)
    if model_dir.exists():
        shutil.rmtree(previous, ignore_errors=True)
        model_dir.rename(previous)
    new_dir.rename(model_dir)


def corrections_fingerprint(pairs: Sequence[tuple[str, str]], excluded: Sequence[str]) -> str:
    payload = json.dumps([sorted(pairs), sorted(excluded)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# -- the scheduled job -------------------------------------------------------------------------


def _last_fingerprint(store: Any) -> str | None:
    raw = store.scalar(
        "SELECT counts FROM job_runs WHERE job = ? AND status = 'ok' ORDER BY id DESC LIMIT 1", [JOB_NAME]
    )
    return loads(raw, {}).get("fingerprint") if raw else None


def retrain_with_corrections(settings: Settings, store: Store, get_embedder: Callable[[], Embedder]) -> dict[str, Any]:
    """The weekly retrain (job sentiment_retrain): retrain with the corrections if there are new ones
    since the last run. `get_embedder` is called only when a retrain really happens."""
    if (settings.sentiment_model or EMBEDDED_SENTIMENT) != EMBEDDED_SENTIMENT:
        return {"skipped": 1, "reason": "XIANKE_SENTIMENT_MODEL is not the embedded model"}
    csv_path = settings.sentiment_train_csv
    if csv_path is None or not Path(csv_path).is_file():
        log_event(log, "sentiment retrain skipped: set XIANKE_SENTIMENT_TRAIN_CSV to the labelled CSV", logging.WARNING)
        return {"skipped": 1, "reason": "no training CSV (XIANKE_SENTIMENT_TRAIN_CSV)"}
    repo = CorrectionRepository(store)
    pairs, corrected = repo.training_pairs(), repo.corrected_texts()
    if not pairs:
        return {"skipped": 1, "reason": "no positive/negative corrections", "corrections": 0}
    fingerprint = corrections_fingerprint(pairs, corrected)
    if fingerprint == _last_fingerprint(store):
        return {"skipped": 1, "reason": "no new corrections since the last retrain", "fingerprint": fingerprint}
    embedder = VectorCache(get_embedder(), Path(settings.data_dir) / "cache" / "sentiment-vectors.npz")
    result = retrain_sentiment(
        Path(csv_path), embedder, settings.models_dir / "sentiment", corrections=pairs, exclude_texts=corrected,
        note={"fingerprint": fingerprint},
    )
    return {**result.counts(), "fingerprint": fingerprint}

