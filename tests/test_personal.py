from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from scipy import sparse

from core.domain import Profile
from core.repos import CatalogRepository, EventRepository, UserRepository
from core.store import Store
from recsys.personal import Personalizer, item_similarity, profile_fit
from recsys.simulate import SimulatedOrder, store_orders
from tests.test_pairing import fixture_bundle  # a catalog with 素食 recipes and courses

A, B, C, D = "course/a", "course/b", "course/c", "course/d"


def _like(store: Store, user_id: int, *slugs: str, kind: str = "like", when: str | None = None) -> None:
    UserRepository(store).ensure(user_id)
    for slug in slugs:
        EventRepository(store).record(user_id, kind, slug, created_at=when)


@pytest.fixture
def taste_groups(store: Store) -> Store:
    """Two taste groups: users 1–5 like a+b, users 6–10 like c+d; user 99 has liked only a."""
    for user in range(1, 6):
        _like(store, user, A, B)
    for user in range(6, 11):
        _like(store, user, C, D)
    _like(store, 99, A)
    UserRepository(store).ensure(100)
    return store


def test_shrunk_cosine_on_a_known_matrix() -> None:
    # users × items: item 0 and 1 always together (cosine 1), item 2 alone.
    weights = sparse.csr_matrix([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    similar = item_similarity(weights, shrinkage=2.0).toarray()
    assert similar[0, 1] == pytest.approx(1.0 * 2 / (2 + 2))  # two shared users, λ = 2
    assert similar[0, 0] == 0 and similar[0, 2] == 0


def test_items_co_liked_by_similar_users_rank_higher(taste_groups: Store) -> None:
    model = Personalizer().fit(taste_groups)
    scores = model.scores(99, [B, C, D])
    assert scores[B] > scores[C] and scores[B] > scores[D]
    assert all(0.0 <= s <= 1.0 for s in scores.values())


def test_purchases_from_orders_count_as_strong_signals(store: Store) -> None:
    orders = [
        SimulatedOrder(
            f"t-{u}", u, "2026-05-01T10:00:00.000Z", [("ingredient/p", 1, 100), ("ingredient/q", 1, 100)]
        )
        for u in (11, 12, 13)
    ]
    orders += [
        SimulatedOrder(f"t-{u}", u, "2026-05-01T10:00:00.000Z", [("ingredient/r", 1, 100)]) for u in (14, 15)
    ]
    orders.append(SimulatedOrder("t-98", 98, "2026-05-02T10:00:00.000Z", [("ingredient/p", 1, 100)]))
    store_orders(store, orders)
    scores = Personalizer().fit(store).scores(98, ["ingredient/q", "ingredient/r"])
    assert scores["ingredient/q"] > scores["ingredient/r"]


def test_dislikes_are_excluded_at_once_without_refit(taste_groups: Store) -> None:
    model = Personalizer().fit(taste_groups)
    assert B in model.scores(99, [B, C])
    _like(taste_groups, 99, B, kind="dislike")
    _like(taste_groups, 99, C, kind="not_interested")
    assert model.excluded(99) == {B, C}
    assert model.scores(99, [B, C, D]).keys() == {D}
    assert model.excluded(1) == set() and B in model.scores(1, [B])  # only that user's answers change
    _like(taste_groups, 99, B)  # a later 👍 by mistake does not bring it back
    assert B in Personalizer().fit(taste_groups).excluded(99)


def test_update_event_reflects_a_thumbs_up_before_refit(taste_groups: Store) -> None:
    model = Personalizer().fit(taste_groups)
    before = model.scores(100, [B, C])
    assert before[B] == pytest.approx(before[C])  # cold, no profile, equal popularity
    _like(taste_groups, 100, A)
    model.update_event(100, A, "like")
    after = model.scores(100, [B, C])
    assert after[B] > after[C] and after[B] > before[B]
    model.update_event(100, D, "dislike")
    assert D in model.excluded(100) and D not in model.scores(100, [D])


def test_cold_start_prefers_profile_matches_then_popular_items(store: Store) -> None:
    now = datetime.now(UTC)
    recent = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    old = (now - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for user in range(1, 4):
        _like(store, user, "course/veg-popular", "course/meat", when=recent)
    _like(store, 4, "course/veg-popular", kind="purchase", when=recent)
    for user in range(5, 11):
        _like(store, user, "course/veg-faded", kind="purchase", when=old)
    model = Personalizer().fit(store)
    popularity = model.popularity()
    assert popularity["course/veg-popular"] == 1.0 > popularity["course/veg-faded"]  # time decay
    items = [
        {
            "slug": "course/veg-popular",
            "kind": "course",
            "diet_tags": ["素食"],
            "level": "beginner",
            "cuisine": "川菜",
        },
        {
            "slug": "course/veg-new",
            "kind": "course",
            "diet_tags": ["素食"],
            "level": "beginner",
            "cuisine": "川菜",
        },
        {"slug": "course/meat", "kind": "course", "diet_tags": [], "level": "advanced", "cuisine": "粤菜"},
    ]
    profile = Profile(diet=["素食"], taste=["川菜"], level="beginner")
    scores = model.cold_start_scores(profile, items)
    assert scores["course/veg-popular"] > scores["course/veg-new"] > scores["course/meat"]
    plain = model.cold_start_scores(Profile(), items)
    assert plain["course/veg-popular"] > plain["course/veg-new"] == 0.0  # no profile: popularity alone


def test_profile_fit_on_known_answers() -> None:
    course = {"slug": "course/x", "diet_tags": ["素食"], "level": "intermediate", "cuisine": "川菜"}
    assert profile_fit(Profile(), course) is None
    assert profile_fit(Profile(diet=["素食"]), course) == 1.0
    assert profile_fit(Profile(level="beginner"), course) == pytest.approx(0.4)
    assert profile_fit(Profile(diet=["素食"], taste=["粤菜"], level="advanced"), course) == pytest.approx(
        (1 + 0 + 0.4) / 3
    )


def test_scores_for_a_stranger_use_their_stored_profile(store: Store) -> None:
    users = UserRepository(store)
    users.ensure(7)
    users.save_profile(7, Profile(diet=["素食"]))
    CatalogRepository(store).upsert(fixture_bundle())
    scores = (
        Personalizer().fit(store).scores(7, ["recipe/tomato-egg", "recipe/mapo-tofu", "course/spring-veg"])
    )
    assert scores["recipe/tomato-egg"] > scores["recipe/mapo-tofu"]
    assert scores["course/spring-veg"] > scores["recipe/mapo-tofu"]


def test_empty_store_gives_zero_affinity_without_errors(store: Store) -> None:
    model = Personalizer().fit(store)
    assert model.scores(1, ["course/a"]) == {"course/a": 0.0}
    assert model.excluded(1) == set() and model.popularity() == {}
