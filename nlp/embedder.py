"""Sentence embeddings through sentence-transformers, E5 prefixes handled inside."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.logging import log_event
from core.settings import EMBEDDED_ENCODER
from nlp import encoder_build
from nlp.encoder_build import embedding_dimension

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


class EmbedderError(RuntimeError):
    """The encoder could not be loaded; the message says what to fix."""


def resolve_model_path(model: str, models_dir: Path, *, build_missing: bool = True) -> str:
    """Map the setting to something SentenceTransformer can load; rebuild the embedded model if needed."""
    if model != EMBEDDED_ENCODER:
        return model
    folder = models_dir / encoder_build.MODEL_DIRNAME
    if encoder_build.verify(folder):
        return str(folder)
    if not build_missing:
        raise EmbedderError(f"embedded encoder missing or corrupt at {folder}: run `xianke models build`")
    log_event(log, "embedded encoder missing or corrupt; rebuilding", folder=str(folder))
    return str(encoder_build.build(models_dir, force=True))


class Embedder:
    """`embed_queries` / `embed_passages` return L2-normalised float32 rows (cosine = dot product)."""

    def __init__(
        self,
        model: str = EMBEDDED_ENCODER,
        models_dir: Path = Path("var/models"),
        *,
        batch_size: int = 32,
        cache_size: int = 2048,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ):
        self.model_name = model
        self.models_dir = Path(models_dir)
        self.batch_size = batch_size
        self._cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._model: SentenceTransformer | None = None
        is_e5 = model == EMBEDDED_ENCODER or "e5" in model.lower()
        self.query_prefix = query_prefix if query_prefix is not None else ("query: " if is_e5 else "")
        self.passage_prefix = passage_prefix if passage_prefix is not None else ("passage: " if is_e5 else "")

    @property
    def model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(self.model_name, self.models_dir)
        try:
            model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # torch/transformers raise many kinds; turn them into one clear error
            raise EmbedderError(
                f"cannot load encoder {self.model_name!r} from {path}: {type(exc).__name__}: {exc}"
            ) from exc
        log_event(log, "encoder loaded", model=self.model_name, dim=embedding_dimension(model))
        return model

    @property
    def dim(self) -> int:
        return embedding_dimension(self.model)

    @property
    def fingerprint(self) -> str:
        """Names the vector space: indexes built with another model must be rebuilt."""
        return f"{self.model_name}|{self.passage_prefix}|{self.query_prefix}"

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            [prefix + text for text in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(list(texts), self.passage_prefix, progress)

    def embed_queries(self, texts: Sequence[str], *, cache: bool = True, progress: bool = False) -> np.ndarray:
        """Repeated queries come from an LRU cache; only new ones reach the model.

        Bulk text that will not repeat (social posts to classify) should pass cache=False.
        """
        texts = list(texts)
        if not cache:
            return self._encode(texts, self.query_prefix, progress)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            fresh = self._encode(missing, self.query_prefix)
            for text, vector in zip(missing, fresh, strict=True):
                vector.setflags(write=False)
                self._cache[text] = vector
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            self._cache.move_to_end(text)
            out[row] = self._cache[text]
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        self._cache.clear()

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]
