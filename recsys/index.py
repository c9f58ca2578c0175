"""FAISS index over catalog passages: persisted with a manifest, synced incrementally.

Vectors are L2-normalised, so inner product = cosine. Ids are store row ids with the
item kind in the high digits (see documents.KIND_BASE). The manifest records the
encoder, dimension, index kind and a hash per item: a changed item is re-embedded,
a removed one dropped, and a different encoder forces a full rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from core.logging import log_event
from nlp.embedder import Embedder
from recsys.documents import ItemDoc

log = logging.getLogger(__name__)
# One query at a time: OpenMP threads would only add hand-off latency and, spinning after each
# parallel region, steal the cores the encoder in the same process needs next.
faiss.omp_set_num_threads(1)
IndexKind = Literal["flat", "hnsw", "auto"]
HNSW_THRESHOLD = 20_000  # above this many items "auto" picks HNSW: sub-millisecond search


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    rebuilt: bool = False

    def __str__(self) -> str:
        action = "rebuilt" if self.rebuilt else "synced"
        return f"{action}: +{self.added} ~{self.updated} -{self.removed}"


def _new_index(dim: int, kind: str) -> faiss.Index:
    if kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = 80
        base.hnsw.efSearch = 64
    else:
        base = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(base)


class CatalogIndex:
    def __init__(self, dim: int, kind: str = "flat", model: str = ""):
        self.dim = dim
        self.kind = kind
        self.model = model
        self.index = _new_index(dim, kind)
        self.hashes: dict[int, str] = {}

    # -- building -----------------------------------------------------------
    @classmethod
    def build(cls, docs: Sequence[ItemDoc], embedder: Embedder, kind: IndexKind = "auto", progress: bool = False) -> CatalogIndex:
        chosen = ("hnsw" if len(docs) > HNSW_THRESHOLD else "flat") if kind == "auto" else kind
        index = cls(embedder.dim, chosen, embedder.fingerprint)
        index._add(docs, embedder.embed_passages([d.text for d in docs], progress=progress))
        return index

    @classmethod
    def from_vectors(cls, ids: np.ndarray, vectors: np.ndarray, kind: str = "flat", model: str = "synthetic") -> CatalogIndex:
        index = cls(vectors.shape[1], kind, model)
        index.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
        return index

    def _add(self, docs: Sequence[ItemDoc], vectors: np.ndarray) -> None:
        if not docs:
            return
        ids = np.array([d.id for d in docs], dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.hashes.update({d.id: d.content_hash for d in docs})

    def _remove(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        for item_id in ids:
            self.hashes.pop(item_id, None)
        if self.kind == "hnsw":  # HNSW graphs cannot delete: rebuild from the stored vectors
            keep = np.array(sorted(self.hashes), dtype=np.int64)
            vectors = np.vstack([self.index.reconstruct(int(i)) for i in keep]) if len(keep) else None
            self.index = _new_index(self.dim, self.kind)
            if vectors is not None:
                self.index.add_with_ids(vectors, keep)
        else:
            self.index.remove_ids(np.array(ids, dtype=np.int64))

    def sync(self, docs: Sequence[ItemDoc], embedder: Embedder) -> SyncReport:
        """Bring the index in line with `docs`, embedding only new or changed items."""
        if embedder.fingerprint != self.model or embedder.dim != self.dim:
            rebuilt = CatalogIndex.build(docs, embedder, self.kind)
            self.__dict__.update(rebuilt.__dict__)
            return SyncReport(added=len(docs), rebuilt=True)
        current = {d.id: d for d in docs}
        removed = [i for i in self.hashes if i not in current]
        changed = [d for d in docs if d.id in self.hashes and self.hashes[d.id] != d.content_hash]
        new = [d for d in docs if d.id not in self.hashes]
        self._remove(removed + [d.id for d in changed])
        todo = changed + new
        if todo:
            self._add(todo, embedder.embed_passages([d.text for d in todo]))
        return SyncReport(added=len(new), updated=len(changed), removed=len(removed))

    # -- querying -----------------------------------------------------------
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, cosine scores) for one normalised query vector."""
        if self.index.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores, ids = self.index.search(query.reshape(1, -1).astype(np.float32), min(k, self.index.ntotal))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(sorted(self.hashes.items())).encode()
        return hashlib.sha1(payload).hexdigest()[:16]

    # -- persistence --------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp_index, tmp_manifest = folder / "catalog.faiss.tmp", folder / "manifest.json.tmp"
        faiss.write_index(self.index, str(tmp_index))
        manifest = {
            "model": self.model, "dim": self.dim, "kind": self.kind,
            "catalog_fingerprint": self.fingerprint, "items": {str(k): v for k, v in self.hashes.items()},
        }
        tmp_manifest.write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(tmp_index, folder / "catalog.faiss")  # index first: a manifest never points past it
        os.replace(tmp_manifest, folder / "manifest.json")

    @classmethod
    def load(cls, folder: Path) -> CatalogIndex | None:
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            raw = faiss.read_index(str(folder / "catalog.faiss"))
        except (OSError, ValueError, RuntimeError) as exc:
            log_event(log, "catalog index unreadable; will rebuild", level=logging.WARNING, error=str(exc)[:200])
            return None
        index = cls(int(manifest["dim"]), manifest["kind"], manifest["model"])
        index.index = raw
        index.hashes = {int(k): v for k, v in manifest["items"].items()}
        if index.index.ntotal != len(index.hashes):
            log_event(log, "catalog index and manifest disagree; will rebuild", level=logging.WARNING)
            return None
        return index


def open_index(folder: Path, docs: Sequence[ItemDoc], embedder: Embedder, kind: IndexKind = "auto") -> tuple[CatalogIndex, SyncReport]:
    """Load the persisted index, sync it with the catalog and save it back if anything changed."""
    index = CatalogIndex.load(folder)
    if index is None:
        index = CatalogIndex.build(docs, embedder, kind)
        report = SyncReport(added=len(docs), rebuilt=True)
    else:
        report = index.sync(docs, embedder)
    if report.added or report.updated or report.removed or report.rebuilt:
        index.save(folder)
        log_event(log, "catalog index saved", report=str(report), items=len(index), kind=index.kind)
    return index, report
