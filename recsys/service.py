"""The recommendation engine as one object: catalog documents, both indexes, pairing, personalisation.

`recommend(text)` parses the message once (`recsys.query`) and routes it: a pairing question
("X配什么", "what goes with X") to the pairing answer, a fridge question (several ingredients at
home) to the recipes' courses and kits that use most of them, anything else to the hybrid ranker —
all under the same hard constraints from the message and the saved profile.
"""

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
from recsys.constraints import Constraint
from recsys.documents import ItemDoc, build_documents, food_words, tag_contradictions
from recsys.facts import Contradiction
from recsys.index import IndexKind, SyncReport, open_index
from recsys.pairing import PairingAnswer, PairingModel
from recsys.personal import Personalizer
from recsys.query import ParsedQuery, QueryParser, profile_constraints
from recsys.recommender import Mode, Reason, Recommendation, Recommender, RecommendResult
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
        self.parser = QueryParser(self.pairing.names(), {d.cuisine for d in self.docs}, self.tokenizer)
        self.contradictions: list[Contradiction] = tag_contradictions(self.docs)
        log_event(log, "recsys ready", items=len(self.docs), index=str(self.last_sync), tag_contradictions=len(self.contradictions))
        return self.last_sync

    def parse(self, text: str, profile: Profile | None = None) -> ParsedQuery:
        """The one parse of a message, with the saved profile's allergens and diets added."""
        saved: list[Constraint] = profile_constraints(profile.allergens, profile.diet) if profile else []
        # A saved budget stays a preference (onboarding asks it loosely); a budget typed in the message is hard.
        return self.parser.parse(text, profile_constraints=saved)

    def recommend(
        self,
        query: str | ParsedQuery,
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
        q = query if isinstance(query, ParsedQuery) else self.parse(query, profile)
        result = self.recommender.recommend(
            q, user_id=user_id, profile=profile, k=k, offset=offset, mode=mode, exclude=exclude, kinds=kinds
        )
        if offset == 0 and not kinds and q.pairing_target:
            answer = self.pair(q.pairing_target)
            if answer is not None:
                items, excluded = self._pairing_items(answer, q, set(exclude))
                if items:
                    result.items, result.has_more = items[:k], False
                    result.message, result.message_params = "pairing", {"name": answer.ingredient_name}
                    result.excluded = excluded + [e for e in result.excluded if e.slug not in {x.slug for x in excluded}][:3]
        elif q.fridge and result.items:
            result.message = "fridge"
            result.message_params = {"names": [self.recommender.ingredient_names[s] for s in q.fridge][:4]}
        return result

    def _pairing_items(self, answer: PairingAnswer, q: ParsedQuery, exclude: set[str]) -> tuple[list[Recommendation], list]:
        """A "X 配什么" question answered from pairing rules: the partners, then the kit to buy —
        under the same hard constraints as any other answer."""
        docs = self.recommender.by_slug
        items: list[Recommendation] = []
        excluded = []
        for p in answer.pairings:
            doc = docs.get(p.slug)
            if doc is None or p.slug in exclude:
                continue
            broken = self.recommender.broken(doc, q)
            if broken is not None:
                excluded.append(broken)
                continue
            reasons = [Reason("pair_recipes", {"n": p.recipes, "dishes": p.dishes[:2]})] if p.recipes else []
            if p.confidence > 0:
                reasons.append(Reason("pair_orders", {"share": round(p.confidence, 2), "name": answer.ingredient_name}))
            if not p.in_season:
                reasons.append(Reason("out_of_season"))
            items.append(Recommendation(p.slug, doc.kind.value, doc.title, p.score, reasons or [Reason("related")], doc.price_cents, doc.summary))
        kit = answer.kit and docs.get(answer.kit["slug"])
        if kit and kit.slug not in exclude:
            broken = self.recommender.broken(kit, q)
            if broken is None:
                reason = Reason("kit_covers", {"name": answer.ingredient_name})
                items.insert(min(2, len(items)), Recommendation(kit.slug, kit.kind.value, kit.title, 1.0, [reason], kit.price_cents, kit.summary))
            else:
                excluded.append(broken)
        return items, excluded

    def pair(self, text: str, *, month: int | None = None) -> PairingAnswer | None:
        """Answer "X 配什么"; None when X is not an ingredient we know."""
        if text.startswith("ingredient/"):
            slug: str | None = text
        else:
            q = self.parser.parse(text)
            slug = q.pairing_targets[0] if q.pairing_targets else self.pairing.resolve(text)
        if slug is None or slug not in self.pairing.ingredients:
            return None
        return self.pairing.answer(slug, month=month or date.today().month)
