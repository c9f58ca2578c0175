"""Personal affinity from implicit feedback: item-item CF, with profile + popularity for cold start.

Signals and weights: view 1, click 2, like 4, purchase 6 (events and shop orders alike);
dislike / not_interested count −4 in the user's taste vector and hard-exclude the item for that
user forever. Dislikes are read live from the events table, so they act before any refit.

    interaction r_ui   = log1p(sum of positive weights)         (−log1p(4) for a disliked item)
    similarity s_ij    = cos(R_i, R_j) · n_ij / (n_ij + λ)        (R positive part only, λ = shrinkage,
                                                                   n_ij = users who touched both)
    cf_uj              = (r_u · s_·j) / max_k |r_u · s_·k|          ∈ [−1, 1]
    affinity_uj        = clip(α_u · cf_uj + (1 − α_u) · cold_uj, 0, 1),   α_u = n_u / (n_u + 3)

where n_u counts the user's distinct items and cold_uj is `cold_start_scores` (profile fit and
time-decayed popularity). A brand-new user therefore gets pure profile + popularity, and every
👍 moves the balance towards their own history.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy import sparse

from core.domain import EventKind, Profile
from core.repos.catalog import CatalogRepository
from core.store import Store, loads
from nlp.text import normalize

EVENT_WEIGHTS: dict[str, float] = {
    EventKind.VIEW: 1.0,
    EventKind.CLICK: 2.0,
    EventKind.LIKE: 4.0,
    EventKind.PURCHASE: 6.0,
}
NEGATIVE_KINDS = (EventKind.DISLIKE.value, EventKind.NOT_INTERESTED.value)
DISLIKE_WEIGHT = 4.0
POPULARITY_KINDS = {EventKind.LIKE.value: 4.0, EventKind.PURCHASE.value: 6.0}
LEVEL_ORDER = {"beginner": 0, "intermediate": 1, "advanced": 2}


def _age_days(created_at: str | None, now: datetime) -> float:
    if not created_at:
        return 0.0
    try:
        moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (now - moment).total_seconds() / 86_400)


def item_similarity(weights: sparse.csr_matrix, shrinkage: float) -> sparse.csr_matrix:
    """Shrunk cosine between item columns of a user × item matrix of non-negative weights; zero diagonal."""
    dot = (weights.T @ weights).tocsr()
    norms = np.sqrt(np.asarray(dot.diagonal(), dtype=float))
    inverse = sparse.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0))
    cosine = (inverse @ dot @ inverse).tocsr()
    touched = (weights > 0).astype(float)
    overlap = (touched.T @ touched).tocsr()
    overlap.data = overlap.data / (overlap.data + shrinkage)  # few shared users → weak evidence
    similar = cosine.multiply(overlap).tocsr()
    similar = (similar - sparse.diags(similar.diagonal())).tocsr()
    similar.eliminate_zeros()
    return similar


def profile_fit(profile: Profile, item: Mapping[str, Any]) -> float | None:
    """How well an item fits the profile's diet, taste (cuisine) and level, in [0, 1]; None = no signal."""
    parts: list[float] = []
    tags = {normalize(str(t)).lower() for t in item.get("diet_tags") or []}
    if profile.diet:
        parts.append(1.0 if tags & {normalize(d).lower() for d in profile.diet} else 0.0)
    if profile.taste:
        cuisine = normalize(str(item.get("cuisine") or "")).lower()
        words = f"{cuisine} {' '.join(sorted(tags))} {' '.join(str(t) for t in item.get('tags') or [])}"
        parts.append(
            1.0 if cuisine and any(normalize(t).lower() in words for t in profile.taste if t) else 0.0
        )
    level = item.get("level")
    if profile.level in LEVEL_ORDER and level in LEVEL_ORDER:
        gap = abs(LEVEL_ORDER[profile.level] - LEVEL_ORDER[level])
        parts.append({0: 1.0, 1: 0.4}.get(gap, 0.0))
    return sum(parts) / len(parts) if parts else None


class Personalizer:
    """Item-item CF over events + orders; cheap to refit, and `update_event` applies a 👍 at once."""

    def __init__(
        self,
        *,
        shrinkage: float = 5.0,
        half_life_days: float = 30.0,
        profile_weight: float = 0.65,
        warmup_items: float = 3.0,
    ):
        self.shrinkage = shrinkage
        self.half_life_days = half_life_days
        self.profile_weight = profile_weight
        self.warmup_items = warmup_items
        self.store: Store | None = None
        self.items: list[str] = []
        self._item_index: dict[str, int] = {}
        self._user_index: dict[int, int] = {}
        self._weights = sparse.csr_matrix((0, 0))
        self._similar = sparse.csr_matrix((0, 0))
        self._popularity: dict[str, float] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._live: dict[int, dict[str, float]] = defaultdict(dict)  # events seen since fit
        self._live_disliked: dict[int, set[str]] = defaultdict(set)

    # -- fitting ------------------------------------------------------------
    def fit(self, store: Store, *, now: datetime | None = None) -> Personalizer:
        self.store = store
        now = now or datetime.now(UTC)
        signals = self._signals(store)
        totals: dict[tuple[int, str], float] = defaultdict(float)
        popular: dict[str, float] = defaultdict(float)
        for user_id, slug, kind, created_at in signals:
            totals[(user_id, slug)] += EVENT_WEIGHTS[kind]
            if kind in POPULARITY_KINDS:
                decay = 0.5 ** (_age_days(created_at, now) / self.half_life_days)
                popular[slug] += POPULARITY_KINDS[kind] * decay
        users = sorted({u for u, _ in totals})
        self.items = sorted({s for _, s in totals})
        self._user_index = {u: i for i, u in enumerate(users)}
        self._item_index = {s: i for i, s in enumerate(self.items)}
        rows = [self._user_index[u] for u, _ in totals]
        cols = [self._item_index[s] for _, s in totals]
        self._weights = sparse.csr_matrix(
            (list(totals.values()), (rows, cols)), shape=(len(users), len(self.items)), dtype=float
        )
        self._similar = item_similarity(self._weights.log1p(), self.shrinkage)
        top = max(popular.values(), default=0.0)
        # Square root keeps the long tail visible without letting the top sellers saturate at ~1.
        self._popularity = {s: math.sqrt(v / top) for s, v in popular.items()} if top > 0 else {}
        self._meta = self._catalog_meta(store)
        self._live.clear()
        self._live_disliked.clear()
        return self

    @staticmethod
    def _signals(store: Store) -> list[tuple[int, str, str, str | None]]:
        """(user, item, kind, when) for every positive signal: events plus shop order lines."""
        marks = ", ".join("?" * len(EVENT_WEIGHTS))
        events = store.db.execute(
            f"""SELECT user_id, item_slug, kind, created_at FROM events
                WHERE user_id IS NOT NULL AND item_slug IS NOT NULL AND kind IN ({marks})""",
            [str(k) for k in EVENT_WEIGHTS],
        ).fetchall()
        orders = store.db.execute(
            """SELECT o.user_id, i.item_slug, 'purchase', o.created_at FROM orders o
               JOIN order_items i ON i.order_id = o.id WHERE o.user_id IS NOT NULL"""
        ).fetchall()
        return [tuple(row) for row in [*events, *orders]]  # type: ignore[misc]

    @staticmethod
    def _catalog_meta(store: Store) -> dict[str, dict[str, Any]]:
        """diet_tags / level / cuisine per slug; kits inherit level and cuisine from their course."""
        catalog = CatalogRepository(store)
        courses = {c["slug"]: c for c in catalog.courses()}
        meta: dict[str, dict[str, Any]] = {}
        for row in [*courses.values(), *catalog.recipes(), *catalog.kits(), *catalog.ingredients()]:
            course = courses.get(row.get("course") or "", {})
            meta[row["slug"]] = {
                "slug": row["slug"],
                "kind": row["slug"].split("/", 1)[0],
                "diet_tags": row.get("diet_tags") or [],
                "level": row.get("level") or course.get("level"),
                "cuisine": row.get("cuisine") or course.get("cuisine") or "",
                "tags": row.get("tags") or [],
            }
        return meta

    # -- live updates -------------------------------------------------------
    def update_event(self, user_id: int, item_slug: str, kind: EventKind | str) -> None:
        """Apply one event recorded after `fit` so the next answer reflects it (no refit)."""
        kind = EventKind(kind)
        if kind.value in NEGATIVE_KINDS:
            self._live_disliked[user_id].add(item_slug)
        elif kind in EVENT_WEIGHTS:
            live = self._live[user_id]
            live[item_slug] = live.get(item_slug, 0.0) + EVENT_WEIGHTS[kind]

    # -- reads --------------------------------------------------------------
    def excluded(self, user_id: int) -> set[str]:
        """Items this user disliked or marked not interested: never recommend them again."""
        out = set(self._live_disliked.get(user_id, ()))
        if self.store is not None:
            marks = ", ".join("?" * len(NEGATIVE_KINDS))
            rows = self.store.db.execute(
                f"""SELECT DISTINCT item_slug FROM events
                    WHERE user_id = ? AND item_slug IS NOT NULL AND kind IN ({marks})""",
                [user_id, *NEGATIVE_KINDS],
            ).fetchall()
            out.update(row[0] for row in rows)
        return out

    def popularity(self) -> dict[str, float]:
        """Purchases and likes with exponential time decay, √(share of the top item) in [0, 1]."""
        return dict(self._popularity)

    def taste_vector(self, user_id: int, disliked: Iterable[str] = ()) -> np.ndarray:
        """r_u over the fitted items: log1p of positive weights (fitted + live), −log1p(4) for dislikes."""
        row = self._user_index.get(user_id)
        raw = (
            np.asarray(self._weights.getrow(row).toarray()).ravel()
            if row is not None
            else np.zeros(len(self.items))
        )
        for slug, weight in self._live.get(user_id, {}).items():
            if slug in self._item_index:
                raw[self._item_index[slug]] += weight
        vector = np.log1p(raw)
        for slug in disliked:
            if slug in self._item_index:
                vector[self._item_index[slug]] = -math.log1p(DISLIKE_WEIGHT)
        return vector

    def _history_size(self, user_id: int) -> int:
        """Distinct items the user has touched (fitted and live), for the CF / cold-start balance."""
        row = self._user_index.get(user_id)
        fitted = {self.items[j] for j in self._weights.getrow(row).indices} if row is not None else set()
        return len(fitted | set(self._live.get(user_id, {})))

    def has_history(self, user_id: int) -> bool:
        """Whether the user liked or bought anything: only then is "like what you liked" true."""
        return self._history_size(user_id) > 0

    def collaborative(self, user_id: int, disliked: Iterable[str] = ()) -> dict[str, float]:
        """cf_uj ∈ [−1, 1] for every fitted item (0 = no evidence either way)."""
        vector = self.taste_vector(user_id, disliked)
        if not vector.any() or self._similar.shape[0] == 0:
            return {}
        raw = np.asarray(self._similar.T @ vector).ravel()
        top = np.abs(raw).max()
        if top <= 0:
            return {}
        return {self.items[j]: float(raw[j] / top) for j in np.flatnonzero(raw)}

    def cold_start_scores(
        self, profile: Profile | None, items: Iterable[Mapping[str, Any]]
    ) -> dict[str, float]:
        """Profile fit (diet, taste/cuisine, level) blended with popularity, in [0, 1] per item slug."""
        profile = profile or Profile()
        out = {}
        for item in items:
            slug = item["slug"]
            popular = self._popularity.get(slug, 0.0)
            fit = profile_fit(profile, item)
            out[slug] = (
                popular if fit is None else self.profile_weight * fit + (1 - self.profile_weight) * popular
            )
        return out

    def profile_of(self, user_id: int) -> Profile:
        if self.store is None:
            return Profile()
        row = self.store.db.execute("SELECT profile FROM users WHERE id = ?", [user_id]).fetchone()
        return Profile.from_dict(loads(row[0], {}) if row else {})

    def scores(
        self, user_id: int, candidate_slugs: Sequence[str], *, profile: Profile | None = None
    ) -> dict[str, float]:
        """Personal affinity in [0, 1] per candidate; the user's excluded items are left out entirely."""
        excluded = self.excluded(user_id)
        candidates = [s for s in dict.fromkeys(candidate_slugs) if s not in excluded]
        cf = self.collaborative(user_id, excluded)
        history = self._history_size(user_id)
        alpha = history / (history + self.warmup_items)
        cold = self.cold_start_scores(
            profile if profile is not None else self.profile_of(user_id),
            [self._meta.get(s, {"slug": s}) for s in candidates],
        )
        return {s: min(1.0, max(0.0, alpha * cf.get(s, 0.0) + (1 - alpha) * cold[s])) for s in candidates}
