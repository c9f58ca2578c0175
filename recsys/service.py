"""The recommendation engine as one object: catalog documents, both indexes, pairing, personalisation."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date
from pathlib import Path

from core.domain import ItemKind, Profile
from core.logging import log_event
from core.repos import CatalogRepository, UserRepository
from core.store import Store
from nlp.embedder import Embedder
from nlp.text import Tokenizer
from recsys.documents import ItemDoc, build_documents, food_words
from recsys.index import IndexKind, SyncReport, open_index
from recsys.pairing import PairingAnswer, PairingModel
from recsys.personal import Personalizer
from recsys.recommender import Mode, Recommendation, Recommender, RecommendResult
from recsys.sparse import SparseIndex

log = logging.getLogger(__name__)


class RecsysService:
    def __init__(self, store: Store, embedder: Embedder, index_dir: Path, *, index_kind: IndexKind = "auto"):
        self.store = store
        self.embedder = embedder
        self.index_dir = index_dir
        self.index_kind = index_kind
        self.catalog = CatalogRepository(store)
        self.users = UserRepository(store)
        self.personal = Personalizer()
        self.pairing = PairingModel()
        self.last_sync = SyncReport()
        self.refresh()

    def refresh(self) -> SyncReport:
        """Re-read the catalog and behaviour: call after imports, order imports or on a schedule."""
        self.docs: list[ItemDoc] = build_documents(self.catalog)
        index, self.last_sync = open_index(self.index_dir, self.docs, self.embedder, self.index_kind)
        self.tokenizer = Tokenizer(food_words(self.docs))
        sparse = SparseIndex([d.id for d in self.docs], [d.keywords for d in self.docs], self.tokenizer)
        self.personal.fit(self.store)
        self.pairing.fit(self.catalog, self.store)
        self.recommender = Recommender(self.docs, index, sparse, self.embedder, self.personal)
        log_event(log, "recsys ready", items=len(self.docs), index=str(self.last_sync))
        return self.last_sync

    def recommend(
        self,
        query: str,
        *,
        user_id: int | None = None,
        k: int = 5,
        offset: int = 0,
        mode: Mode = "hybrid",
        exclude: Collection[str] = (),
        kinds: Collection[ItemKind] | None = None,
        profile: Profile | None = None,
    ) -> RecommendResult:
        if profile is None and user_id is not None:
            profile = self.users.profile(user_id)
        result = self.recommender.recommend(
            query, user_id=user_id, profile=profile, k=k, offset=offset, mode=mode, exclude=exclude, kinds=kinds
        )
        if result.intent and result.intent.pairing_target and offset == 0 and not kinds:
            answer = self.pair(result.intent.pairing_target)
            if answer is not None:
                result.items = self._pairing_items(answer, profile or Profile(), set(exclude))[:k]
                result.message = f"{answer.ingredient_name}的好搭档："
        return result

    def _pairing_items(self, answer: PairingAnswer, profile: Profile, exclude: set[str]) -> list[Recommendation]:
        """A "X 配什么" question answered from pairing rules: the partners, then the kit to buy."""
        allergic = set(profile.allergens)
        docs = self.recommender.by_slug
        items = []
        for p in answer.pairings:
            doc = docs.get(p.slug)
            if doc is None or p.slug in exclude or doc.allergens & allergic:
                continue
            items.append(Recommendation(p.slug, doc.kind.value, doc.title, p.score, "；".join(p.reasons[:2]) or "常一起买", doc.price_cents, doc.summary))
        kit = answer.kit and docs.get(answer.kit["slug"])
        if kit and kit.slug not in exclude and not kit.allergens & allergic:
            items.insert(min(3, len(items)), Recommendation(kit.slug, kit.kind.value, kit.title, 1.0, f"一次买齐{answer.ingredient_name}和搭配食材", kit.price_cents, kit.summary))
        return items

    def pair(self, text: str, *, month: int | None = None) -> PairingAnswer | None:
        """Answer "X 配什么"; None when X is not an ingredient we know."""
        slug = text if text.startswith("ingredient/") else self.pairing.resolve(text)
        if slug is None:
            return None
        return self.pairing.answer(slug, month=month or date.today().month)
