"""Hybrid recommendation: dense FAISS + BM25 → RRF → hard filters → soft boosts → explanation.

Each stage is a small function or object passed in, so one can be swapped without touching
the others (dense retriever, sparse retriever, personaliser).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Literal, Protocol

from core.domain import ItemKind, Profile, format_price
from nlp.embedder import Embedder
from nlp.text import expand_english, normalize
from recsys.documents import KIND_ZH, ItemDoc
from recsys.fusion import reciprocal_rank_fusion
from recsys.index import CatalogIndex
from recsys.intent import MEAT_CATEGORIES, QueryIntent, detect_intent
from recsys.sparse import SparseIndex

Mode = Literal["hybrid", "dense", "bm25"]
MAX_QUERY_CHARS = 256  # the encoder reads ≤ 512 tokens; a longer query only adds noise and latency
CANDIDATES = 100
RESULT_POOL = 50
LEVEL_ORDER = {"beginner": 0, "intermediate": 1, "advanced": 2}
# Diets that are restrictions (filter) rather than tastes (boost): a 低脂 query must not get a fried dish,
# while 儿童/清淡/辣 only say what would be nicer.
HARD_DIETS = frozenset({"素食", "纯素", "无麸质", "低脂", "低糖", "控糖"})


class Personal(Protocol):
    def scores(self, user_id: int, candidate_slugs: Sequence[str]) -> dict[str, float]: ...

    def excluded(self, user_id: int) -> set[str]: ...


@dataclass
class Recommendation:
    slug: str
    kind: str
    title: str
    score: float
    reason: str
    price_cents: int
    summary: str = ""

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["type"] = data.pop("kind")
        data["score"] = round(self.score, 4)
        return data

    @property
    def price(self) -> str:
        return format_price(self.price_cents)


@dataclass
class RecommendResult:
    query: str
    items: list[Recommendation]
    intent: QueryIntent | None = None
    message: str | None = None
    relaxed: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    has_more: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "intent": self.intent.labels if self.intent else [],
            "message": self.message,
            "relaxed": self.relaxed,
            "items": [item.to_json() for item in self.items],
        }


def _usable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


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

    # -- stages ---------------------------------------------------------------
    def retrieve(self, text: str, mode: Mode) -> tuple[dict[int, float], dict[int, int], set[int], float]:
        """Fused scores, dense ranks, ids matched lexically, and the embedding time in ms."""
        embed_ms = 0.0
        dense_ids: list[int] = []
        if mode != "bm25":
            start = time.perf_counter()
            vector = self.embedder.embed_query(text)
            embed_ms = (time.perf_counter() - start) * 1000
            ids, _ = self.index.search(vector, CANDIDATES)
            dense_ids = [int(i) for i in ids if int(i) in self.docs]
        sparse_ids: list[int] = []
        if mode != "dense":
            ids, _ = self.sparse.search(text, CANDIDATES)
            sparse_ids = [int(i) for i in ids if int(i) in self.docs]
        rankings = [r for r in (dense_ids, sparse_ids) if r]
        fused = reciprocal_rank_fusion(rankings) if rankings else {}
        return fused, {d: r for r, d in enumerate(dense_ids, 1)}, set(sparse_ids[:20]), embed_ms

    @staticmethod
    def _hard_ok(doc: ItemDoc, intent: QueryIntent, profile: Profile, relaxed: Collection[str]) -> bool:
        if doc.allergens & set(profile.allergens):  # never relaxed
            return False
        vegetarian = {"素食", "纯素"} & (set(profile.diet) | set(intent.diet))
        if vegetarian:
            if doc.kind == ItemKind.INGREDIENT and doc.category in MEAT_CATEGORIES:
                return False
            if doc.kind != ItemKind.INGREDIENT and not ({"素食", "纯素"} & set(doc.diet_tags)):
                return False
        budget = intent.budget_cents if intent.budget_cents is not None else profile.budget_cents
        if budget is not None and "budget" not in relaxed and doc.price_cents > budget:
            return False
        wanted_diet = [d for d in intent.diet if d in HARD_DIETS and d not in {"素食", "纯素"}]
        if wanted_diet and "diet" not in relaxed and doc.kind != ItemKind.INGREDIENT:
            if not set(wanted_diet) & set(doc.diet_tags):
                return False
        if intent.level and "level" not in relaxed and doc.level:
            if LEVEL_ORDER[doc.level] > LEVEL_ORDER[intent.level] + (1 if intent.level != "beginner" else 0):
                return False
        return True

    @staticmethod
    def mentioned(doc: ItemDoc, text: str, *, course_ingredients: bool = False) -> list[str]:
        """Names of this item (or of its ingredients) that the query spells out.

        A course's ingredient list is long and generic, so it only counts for explanations.
        """
        names = doc.ingredient_names if doc.kind != ItemKind.COURSE or course_ingredients else []
        return [n for n in dict.fromkeys([doc.title, *names]) if len(n) > 1 and n in text]

    def _score(self, doc: ItemDoc, base: float, intent: QueryIntent, profile: Profile, affinity: float) -> float:
        score = base
        if intent.kinds:
            score += 0.2 * intent.kinds.get(doc.kind, 0.0)
        elif doc.kind == ItemKind.COURSE:
            score += 0.1  # a cooking school: an open question is first a question about what to learn
        named = self.mentioned(doc, intent.text)
        if named:  # the customer typed this item's own name: the strongest evidence we get
            score += 0.35 if doc.kind == ItemKind.INGREDIENT or doc.title in named else min(0.2, 0.1 * len(named))
        score += 0.08 * len(set(intent.diet) & set(doc.diet_tags))
        score += 0.04 * len(set(profile.diet) & set(doc.diet_tags))
        if doc.level and doc.level == (intent.level or profile.level):
            score += 0.08
        if intent.prefers_cheap:
            score += 0.3 / (1 + doc.price_cents / 5_000)
        if not doc.in_stock:
            score -= 0.1 if named else 0.3
        if doc.season and date.today().month in doc.season and len(doc.season) < 12:
            score += 0.03
        return score + 0.25 * affinity

    def explain(self, doc: ItemDoc, intent: QueryIntent, profile: Profile, lexical: bool, dense_rank: int | None, affinity: float) -> str:
        reasons: list[str] = []
        mentioned = self.mentioned(doc, intent.text, course_ingredients=True)
        if mentioned:
            reasons.append(f"包含你提到的「{mentioned[0]}」")
        elif lexical:
            reasons.append("关键词与你的问题吻合")
        elif dense_rank is not None and dense_rank <= 5:
            reasons.append("与你描述的需求最相近")
        diet = [d for d in doc.diet_tags if d in intent.diet or d in profile.diet]
        if diet:
            reasons.append(f"符合{'、'.join(diet[:2])}饮食")
        level = intent.level or profile.level
        if level and doc.level == level:
            reasons.append({"beginner": "零基础也能跟上", "intermediate": "适合有基础的你进阶", "advanced": "高阶进修"}[level])
        budget = intent.budget_cents if intent.budget_cents is not None else profile.budget_cents
        if budget is not None and doc.price_cents <= budget:
            reasons.append(f"在{format_price(budget)}预算内")
        if affinity >= 0.3:
            reasons.append("和你喜欢过的内容相似")
        if doc.kind == ItemKind.KIT and doc.course_slug and doc.course_slug in self.by_slug:
            reasons.append(f"配套课程《{self.by_slug[doc.course_slug].title}》")
        if not doc.in_stock:
            reasons.append("暂时缺货，可到货提醒")
        if not reasons:
            reasons.append(f"热门{KIND_ZH[doc.kind]}")
        return "；".join(reasons[:3])

    # -- the pipeline ---------------------------------------------------------
    def recommend(
        self,
        query: str,
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
        text = expand_english(normalize(query or "")[:MAX_QUERY_CHARS])
        if not _usable(text):
            return RecommendResult(query, [], message="没看懂你想找什么～可以说说想学的菜、想买的食材，比如「零基础学川菜」或「牛腩配什么」。")
        intent = detect_intent(text)
        start = time.perf_counter()
        fused, dense_rank, lexical, embed_ms = self.retrieve(text, mode)
        retrieved = time.perf_counter()
        blocked = set(exclude)
        if user_id is not None and self.personal is not None:
            blocked |= self.personal.excluded(user_id)
        candidates = [self.docs[i] for i in fused if self.docs[i].slug not in blocked]
        if kinds:
            candidates = [d for d in candidates if d.kind in kinds]
        relaxed: list[str] = []
        kept = [d for d in candidates if self._hard_ok(d, intent, profile, relaxed)]
        wanted = {kind for kind, weight in intent.kinds.items() if weight >= 1.0}

        def enough(docs: list[ItemDoc]) -> bool:
            """Enough items, and at least one of the kind the customer asked for."""
            return len(docs) >= min(k, len(candidates)) and (not wanted or any(d.kind in wanted for d in docs))

        for constraint in ("budget", "diet", "level"):
            if enough(kept):
                break
            relaxed.append(constraint)
            kept = [d for d in candidates if self._hard_ok(d, intent, profile, relaxed)]
        affinity = (
            self.personal.scores(user_id, [d.slug for d in kept])
            if user_id is not None and self.personal is not None
            else {}
        )
        top = max(fused.values(), default=1.0)
        scores = {d.slug: self._score(d, fused[d.id] / top, intent, profile, affinity.get(d.slug, 0.0)) for d in kept}
        companion_boost(kept, scores)
        ranked = sorted(kept, key=lambda d: -scores[d.slug])[:RESULT_POOL]
        page = ranked[offset : offset + k]
        items = [
            Recommendation(
                slug=d.slug,
                kind=d.kind.value,
                title=d.title,
                score=scores[d.slug],
                reason=self.explain(d, intent, profile, d.id in lexical, dense_rank.get(d.id), affinity.get(d.slug, 0.0)),
                price_cents=d.price_cents,
                summary=d.summary,
            )
            for d in page
        ]
        done = time.perf_counter()
        message = None
        if not items:
            message = "暂时没有找到合适的推荐，换个说法试试？比如菜名、食材或者想学的菜系。" if offset == 0 else "没有更多了～"
        elif relaxed:
            message = {"budget": "预算内的选择不多，也给你看看稍贵一点的：", "diet": "完全符合饮食要求的不多，这些也可以参考：", "level": "同级别的课程不多，这些也可以看看："}[relaxed[0]]
        return RecommendResult(
            query=query,
            items=items,
            intent=intent,
            message=message,
            relaxed=relaxed,
            has_more=len(ranked) > offset + k,
            timings_ms={
                "embed": embed_ms,
                "retrieve": (retrieved - start) * 1000 - embed_ms,
                "rank": (done - retrieved) * 1000,
            },
        )
