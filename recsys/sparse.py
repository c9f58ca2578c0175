"""BM25 over jieba tokens (bm25s), with the catalog's dish and ingredient names as a user dictionary."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np

from nlp.text import Tokenizer


class SparseIndex:
    def __init__(self, ids: Sequence[int], texts: Sequence[str], tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.ids = np.asarray(ids, dtype=np.int64)
        corpus = [tokenizer.tokens_with_chars(text) or ["<empty>"] for text in texts]
        self.bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self.bm25.index(corpus, show_progress=False)
        self.vocab = set(self.bm25.vocab_dict)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, BM25 scores); empty when no query token is in the catalog vocabulary."""
        return self.search_tokens(self.tokenizer.tokens_with_chars(query), k)

    def search_tokens(self, query_tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Like `search` for a query already segmented (the parsed query's tokens)."""
        tokens = [t for t in query_tokens if t in self.vocab]
        if not tokens or len(self.ids) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        # get_scores + argpartition rather than bm25s.retrieve: retrieve starts a thread pool on every
        # call, which costs more than the scoring itself for a single short query.
        scores = self.bm25.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.ids[top], scores[top].astype(np.float32)
