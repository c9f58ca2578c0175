"""Hybrid recommendation: dense FAISS + BM25 → RRF → hard constraints → soft boosts → reason codes.

Each stage is a small function or object passed in, so one can be swapped without touching
the others (dense retriever, sparse retriever, personaliser). The recommender reads one
`ParsedQuery` and never re-parses; it returns reason *codes* with parameters, which the front
door renders in the customer's language (`bot/reasons.py`).

Hard constraints (allergens, diets, 不吃X, a stated budget) never relax: an item that breaks one
is left out, and the result lists what was left out and why. Only a level relaxes, with a note.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from core.domain import ItemKind, Profile, format_price
from nlp.embedder import Embedder
from recsys.constraints import Constraint, violation
from recsys.documents import ItemDoc
from recsys.fusion import reciprocal_rank_fusion
from recsys.index import CatalogIndex
from recsys.query import ParsedQuery
from recsys.sparse import SparseIndex

Mode = Literal["hybrid", "dense", "bm25"]
CANDIDATES = 100
RESULT_POOL = 50
LEVEL_ORDER = {"beginner": 0, "intermediate": 1, "advanced": 2}


class Personal(Protocol):
    def scores(self, user_id: int, candidate_slugs: Sequence[str]) -> dict[str, float]: ...

    def excluded(self, user_id: int) -> set[str]: ...

    def has_history(self, user_id: int) -> bool: ...


@dataclass(frozen=True)
class Reason:
    """Why an item is shown, as a code plus parameters; rendered to zh/en by the front door."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.params}


@dataclass(frozen=True)
class Excluded:
    """An item a hard constraint removed: which one, and the ingredients that broke it."""

    slug: str
    title: str
    kind: str
    constraint: Constraint | None  # None: over the budget
    because: tuple[str, ...] = ()
    budget_cents: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "constraint": self.constraint.to_json() if self.constraint else None,
                "because": list(self.because), "budget_cents": self.budget_cents}


@dataclass
class Recommendation:
    slug: str
    kind: str
    title: str
    score: float
    reasons: list[Reason]
    price_cents: int
    summary: str = ""

    def to_json(self) -> dict[str, object]:
        return {"slug": self.slug, "type": self.kind, "title": self.title, "score": round(self.score, 4),
                "reasons": [r.to_json() for r in self.reasons], "price_cents": self.price_cents, "summary": self.summary}

    @property
    def price(self) -> str:
        return format_price(self.price_cents)


@dataclass
class RecommendResult:
    query: str
    items: list[Recommendation]
    parsed: ParsedQuery | None = None
    message: str | None = None  # a code: unusable / nothing_fits / level_relaxed / no_more / none / pairing / fridge
    message_params: dict[str, Any] = field(default_factory=dict)
    relaxed: list[str] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    has_more: bool = False

    @property
    def constraints(self) -> list[Constraint]:
        return self.parsed.constraints if self.parsed else []

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "intent": self.parsed.labels if self.parsed else [],
            "parsed": self.parsed.to_json() if self.parsed else None,
            "message": self.message,
            "message_params": self.message_params,
            "relaxed": self.relaxed,
            "excluded": [e.to_json() for e in self.excluded],
            "items": [item.to_json() for item in self.items],
        }


def companion_boost(docs: Sequence[ItemDoc], scores: dict[str, float], top_n: int = 3, boost: float = 0.15) -> None:
    """Cross-sell inside one answer: the kit of a top course, and the course of a top kit, move up."""
    ranked = sorted(docs, key=lambda d: -scores[d.slug])
    top_courses = [d.slug for d in ranked if d.kind == ItemKind.COURSE][:top_n]
    top_kit_courses = [d.course_slug for d in ranked if d.kind == ItemKind.KIT and d.course_slug][:top_n]
    for doc in docs:
        if doc.kind == ItemKind.KIT and doc.course_slug in top_courses:
            scores[doc.slug] += boost
        elif doc.kind == ItemKind.COURSE and doc.slug in top_kit_courses:
            scores[doc.slug] += boost * 0.5


def mentioned(doc: ItemDoc, text: str, *, course_ingredients: bool = False) -> list[str]:
    """Names of this item (or of its ingredients) that the query spells out.

    A course's ingredient list is long and generic, so it only counts for explanations.
    """
    names = doc.ingredient_names if doc.kind != ItemKind.COURSE or course_ingredients else []
    return [n for n in dict.fromkeys([doc.title, *names]) if len(n) > 1 and n in text]


class Recommender:
    def __init__(
        self,
        docs: Sequence[ItemDoc],
        index: CatalogIndex,
        sparse: SparseIndex,
        embedder: Embedder,
        personal: Personal | None = None,
    ):
        self.docs = {d.id: d for d in docs}
        self.by_slug = {d.slug: d for d in docs}
        self.index = index
        self.sparse = sparse
        self.embedder = embedder
        self.personal = personal
        self.ingredient_names = {d.slug: d.title for d in docs if d.kind == ItemKind.INGREDIENT}
        self.cheapest_kit: dict[str, int] = {}
        for d in docs:
            if d.kind == ItemKind.KIT and d.course_slug:
                self.cheapest_kit[d.course_slug] = min(d.price_cents, self.cheapest_kit.get(d.course_slug, 1 << 40))

    # -- stages ---------------------------------------------------------------
    def retrieve(self, q: ParsedQuery, mode: Mode) -> tuple[dict[int, float], dict[int, int], set[int], float]:
        """Fused scores, dense ranks, ids matched lexically, and the embedding time in ms."""
        embed_ms = 0.0
        dense_ids: list[int] = []
        if mode != "bm25":
            start = time.perf_counter()
            vector = self.embedder.embed_query(q.expanded)
            embed_ms = (time.perf_counter() - start) * 1000
            ids, _ = self.index.search(vector, CANDIDATES)
            dense_ids = [int(i) for i in ids if int(i) in self.docs]
        sparse_ids: list[int] = []
        if mode != "dense":
            ids, _ = self.sparse.search_tokens(q.tokens, CANDIDATES) if q.tokens else self.sparse.search(q.expanded, CANDIDATES)
            sparse_ids = [int(i) for i in ids if int(i) in self.docs]
        rankings = [r for r in (dense_ids, sparse_ids) if r]
        fused = reciprocal_rank_fusion(rankings) if rankings else {}
        return fused, {d: r for r, d in enumerate(dense_ids, 1)}, set(sparse_ids[:20]), embed_ms

    def broken(self, doc: ItemDoc, q: ParsedQuery) -> Excluded | None:
        """The first hard constraint `doc` breaks (message and profile alike), or None."""
        for constraint in q.constraints:
            names = violation(constraint, doc.facts, doc.ingredient_slugs, self.ingredient_names)
            if names:
                return Excluded(doc.slug, doc.title, doc.kind.value, constraint, tuple(names[:3]))
        if q.budget_cents is not None and self.price_for_budget(doc, q) > q.budget_cents:
            return Excluded(doc.slug, doc.title, doc.kind.value, None, (), q.budget_cents)
        return None

    def price_for_budget(self, doc: ItemDoc, q: ParsedQuery) -> int:
        """An item's price, or with a "课加食材一起" budget the course plus its cheapest kit."""
        if q.budget_scope != "bundle":
            return doc.price_cents
        if doc.kind == ItemKind.COURSE:
            return doc.price_cents + self.cheapest_kit.get(doc.slug, 1 << 40)
        if doc.kind == ItemKind.KIT and doc.course_slug in self.by_slug:
            return doc.price_cents + self.by_slug[doc.course_slug].price_cents
        return doc.price_cents

    @staticmethod
    def level_ok(doc: ItemDoc, level: str | None) -> bool:
        if not level or not doc.level:
            return True
        return LEVEL_ORDER[doc.level] <= LEVEL_ORDER[level] + (1 if level != "beginner" else 0)

    def _score(self, doc: ItemDoc, base: float, q: ParsedQuery, profile: Profile, affinity: float) -> float:
        score = base
        if q.kinds:
            score += 0.2 * q.kinds.get(doc.kind, 0.0)
        elif doc.kind == ItemKind.COURSE:
            score += 0.1  # a cooking school: an open question is first a question about what to learn
        named = mentioned(doc, q.text)
        if named:  # the customer typed this item's own name: the strongest evidence we get
            score += 0.35 if doc.kind == ItemKind.INGREDIENT or doc.title in named else min(0.2, 0.1 * len(named))
        if q.fridge and doc.kind != ItemKind.INGREDIENT:
            score += 0.6 * len(doc.ingredient_slugs & set(q.fridge)) / len(q.fridge)
        if q.cuisine and doc.cuisine == q.cuisine:
            score += 0.2
        score += 0.08 * len(set(q.tastes) & set(doc.diet_tags))
        score += 0.04 * len(set(profile.diet) & set(doc.diet_tags))
        if doc.level and doc.level == (q.level or profile.level):
            score += 0.08
        if q.cheapest:
            score += 0.8 / (1 + doc.price_cents / 2_000)
        elif q.prefers_cheap:
            score += 0.3 / (1 + doc.price_cents / 5_000)
        if q.missing_equipment and any(e in doc.text for e in q.missing_equipment):
            score -= 0.3  # 没有烤箱: a course that needs one is a poor answer, though not forbidden
        if not doc.in_stock:
            score -= 0.1 if named else 0.3
        if doc.season and date.today().month in doc.season and len(doc.season) < 12:
            score += 0.03
        return score + 0.25 * affinity

    def explain(self, doc: ItemDoc, q: ParsedQuery, profile: Profile, lexical: bool, dense_rank: int | None, affinity: float, history: bool) -> list[Reason]:
        """Reasons that are true of this item for this customer, strongest first (at most three)."""
        reasons: list[Reason] = []
        named = mentioned(doc, q.text, course_ingredients=True)
        if q.fridge and (uses := [self.ingredient_names[s] for s in q.fridge if s in doc.ingredient_slugs]):
            reasons.append(Reason("uses_yours", {"names": uses[:3]}))
        elif named:
            reasons.append(Reason("mentioned", {"name": named[0]}))
        elif lexical:
            reasons.append(Reason("keywords"))
        elif dense_rank is not None and dense_rank <= 5:
            reasons.append(Reason("closest"))
        message_constraints = [c for c in q.constraints if c.source == "message"]
        if message_constraints:
            reasons.append(Reason("safe_for", {"labels": list(dict.fromkeys(c.label for c in message_constraints))[:3]}))
        diet = [d for d in doc.diet_tags if d in q.tastes or d in profile.diet]
        if diet:
            reasons.append(Reason("diet", {"tags": diet[:2]}))
        level = q.level or profile.level
        if level and doc.level == level:
            reasons.append(Reason("level", {"level": level}))
        if q.budget_cents is not None and self.price_for_budget(doc, q) <= q.budget_cents:
            reasons.append(Reason("within_budget", {"budget_cents": q.budget_cents, "bundle": q.budget_scope == "bundle"}))
        if history and affinity >= 0.3:
            reasons.append(Reason("liked_similar"))
        if doc.kind == ItemKind.KIT and doc.course_slug and doc.course_slug in self.by_slug:
            reasons.append(Reason("course_kit", {"course": self.by_slug[doc.course_slug].title}))
        if not doc.in_stock:
            reasons.append(Reason("out_of_stock"))
        if not reasons:
            reasons.append(Reason("related"))
        return reasons[:3]

    # -- the pipeline ---------------------------------------------------------
    def recommend(
        self,
        q: ParsedQuery,
        *,
        user_id: int | None = None,
        profile: Profile | None = None,
        k: int = 5,
        offset: int = 0,
        mode: Mode = "hybrid",
        exclude: Collection[str] = (),
        kinds: Collection[ItemKind] | None = None,
    ) -> RecommendResult:
        profile = profile or Profile()
        if not q.usable:
            return RecommendResult(q.raw, [], parsed=q, message="unusable")
        start = time.perf_counter()
        fused, dense_rank, lexical, embed_ms = self.retrieve(q, mode)
        retrieved = time.perf_counter()
        blocked = set(exclude)
        if user_id is not None and self.personal is not None:
            blocked |= self.personal.excluded(user_id)
        if q.cheapest:  # 最便宜的课: the cheapest items compete even when retrieval missed them
            floor = min(fused.values(), default=0.0)
            wanted = {kind for kind, weight in q.kinds.items() if weight >= 1.0} or set(ItemKind)
            for doc in sorted((d for d in self.docs.values() if d.kind in wanted), key=lambda d: d.price_cents)[:10]:
                fused.setdefault(doc.id, floor)
        candidates = [self.docs[i] for i in fused if self.docs[i].slug not in blocked]
        if kinds:
            candidates = [d for d in candidates if d.kind in kinds]
        verdicts = {d.slug: self.broken(d, q) for d in candidates}
        kept = [d for d in candidates if verdicts[d.slug] is None]
        relaxed: list[str] = []
        if q.level and sum(self.level_ok(d, q.level) for d in kept) >= min(k, len(kept)):
            kept = [d for d in kept if self.level_ok(d, q.level)]
        elif q.level:
            relaxed.append("level")
        history = user_id is not None and self.personal is not None and self.personal.has_history(user_id)
        affinity = self.personal.scores(user_id, [d.slug for d in kept]) if user_id is not None and self.personal is not None else {}
        top = max(fused.values(), default=1.0)
        scores = {d.slug: self._score(d, fused[d.id] / top, q, profile, affinity.get(d.slug, 0.0)) for d in candidates}
        companion_boost(kept, scores)
        ranked = sorted(kept, key=lambda d: -scores[d.slug])[:RESULT_POOL]
        page = ranked[offset : offset + k]
        items = [
            Recommendation(d.slug, d.kind.value, d.title, scores[d.slug],
                           self.explain(d, q, profile, d.id in lexical, dense_rank.get(d.id), affinity.get(d.slug, 0.0), history),
                           d.price_cents, d.summary)
            for d in page
        ]
        # What the customer would have seen without the constraints, and was left out.
        would_see = sorted(candidates, key=lambda d: -scores[d.slug])[: offset + k + 3]
        excluded = [v for d in would_see if (v := verdicts[d.slug]) is not None]
        done = time.perf_counter()
        message = None
        if not items:
            message = "no_more" if offset else ("nothing_fits" if excluded or q.constraints or q.budget_cents is not None else "none")
        elif relaxed:
            message = "level_relaxed"
        return RecommendResult(
            query=q.raw, items=items, parsed=q, message=message, relaxed=relaxed, excluded=excluded,
            has_more=len(ranked) > offset + k,
            timings_ms={"embed": embed_ms, "retrieve": (retrieved - start) * 1000 - embed_ms, "rank": (done - retrieved) * 1000},
        )
