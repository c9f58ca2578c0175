from __future__ import annotations

import time
from collections import Counter
from datetime import date

import numpy as np
import pytest

from core.domain import Course, Ingredient, Kit, Line, Recipe
from core.repos.catalog import CatalogBundle, CatalogRepository
from core.store import Store
from recsys.pairing import (
    PairingModel,
    expand_basket,
    ingredient_idf,
    is_staple_name,
    mine_rules,
    pairing_score,
    recipe_cooccurrence,
)
from recsys.simulate import simulate_orders, store_orders

SPRING = [3, 4, 5]


def _ingredient(
    slug: str, name: str, *, category: str = "蔬菜", aliases: tuple[str, ...] = (), season=None
) -> Ingredient:
    return Ingredient(
        slug=f"ingredient/{slug}",
        name=name,
        category=category,
        price_cents=500 + 100 * len(slug),
        stock=50,
        aliases=list(aliases),
        season=season or list(range(1, 13)),
    )


def _recipe(
    slug: str, title: str, items: list[str], *, cuisine: str = "家常菜", course=None, diet=()
) -> Recipe:
    return Recipe(
        slug=f"recipe/{slug}",
        title=title,
        cuisine=cuisine,
        course=course,
        diet_tags=list(diet),
        ingredients=[Line(ingredient=f"ingredient/{i}") for i in items],
    )


def _kit(slug: str, title: str, items: list[str], *, course=None, price: int = 6800) -> Kit:
    return Kit(
        slug=f"kit/{slug}",
        title=title,
        course=course,
        price_cents=price,
        items=[Line(ingredient=f"ingredient/{i}") for i in items],
    )


def fixture_bundle() -> CatalogBundle:
    """A small home-cooking catalog: two brisket dishes, staples everywhere, one spring-only vegetable."""
    return CatalogBundle(
        courses=[
            Course(
                slug="course/home-stews",
                title="家常炖菜",
                cuisine="家常菜",
                level="beginner",
                price_cents=19900,
            ),
            Course(
                slug="course/sichuan-basics",
                title="川菜入门",
                cuisine="川菜",
                level="beginner",
                price_cents=29900,
            ),
            Course(
                slug="course/spring-veg",
                title="春季时蔬",
                cuisine="家常菜",
                level="intermediate",
                diet_tags=["素食"],
                price_cents=15900,
            ),
        ],
        ingredients=[
            _ingredient("beef-brisket", "牛腩", category="肉类", aliases=("牛肋条",)),
            _ingredient("potato", "土豆", aliases=("马铃薯", "洋芋")),
            _ingredient("tomato", "番茄", aliases=("西红柿",)),
            _ingredient("ketchup", "番茄酱", category="调味"),
            _ingredient("carrot", "胡萝卜"),
            _ingredient("onion", "洋葱"),
            _ingredient("salt", "盐", category="调味"),
            _ingredient("soy-sauce", "生抽", category="调味"),
            _ingredient("scallion", "葱", aliases=("小葱",)),
            _ingredient("ginger", "姜"),
            _ingredient("garlic", "蒜"),
            _ingredient("star-anise", "八角", category="香料"),
            _ingredient("egg", "鸡蛋", category="蛋奶"),
            _ingredient("milk", "牛奶", category="蛋奶"),
            _ingredient("tofu", "豆腐", category="豆制品"),
            _ingredient("green-pepper", "青椒"),
            _ingredient("pork-mince", "猪肉末", category="肉类"),
            _ingredient("chili-bean-paste", "郫县豆瓣酱", category="调味"),
            _ingredient("spring-bamboo", "春笋", season=SPRING),
        ],
        recipes=[
            _recipe(
                "braised-beef-brisket",
                "红烧牛腩",
                ["beef-brisket", "potato", "carrot", "soy-sauce", "ginger", "scallion", "star-anise", "salt"],
                course="course/home-stews",
            ),
            _recipe(
                "tomato-beef-brisket",
                "番茄炖牛腩",
                ["beef-brisket", "tomato", "onion", "potato", "ginger", "salt"],
                course="course/home-stews",
            ),
            _recipe("tomato-egg", "番茄炒蛋", ["tomato", "egg", "scallion", "salt"], diet=["素食"]),
            _recipe(
                "hot-sour-potato", "酸辣土豆丝", ["potato", "green-pepper", "garlic", "salt"], diet=["素食"]
            ),
            _recipe(
                "mapo-tofu",
                "麻婆豆腐",
                ["tofu", "pork-mince", "chili-bean-paste", "garlic", "ginger", "scallion", "soy-sauce"],
                cuisine="川菜",
                course="course/sichuan-basics",
            ),
            _recipe(
                "pepper-pork",
                "青椒肉丝",
                ["green-pepper", "pork-mince", "garlic", "ginger", "soy-sauce", "salt"],
                cuisine="川菜",
            ),
            _recipe(
                "braised-bamboo",
                "油焖春笋",
                ["spring-bamboo", "soy-sauce", "salt", "scallion"],
                course="course/spring-veg",
                diet=["素食"],
            ),
            _recipe("tomato-tofu-soup", "番茄豆腐汤", ["tomato", "tofu", "scallion", "salt"], diet=["素食"]),
        ],
        kits=[
            _kit(
                "braised-brisket",
                "红烧牛腩食材包",
                ["beef-brisket", "potato", "carrot", "star-anise", "ginger"],
                course="course/home-stews",
                price=8800,
            ),
            _kit("tomato-brisket", "番茄牛腩食材包", ["beef-brisket", "tomato", "onion"], price=7800),
            _kit(
                "mapo-tofu",
                "麻婆豆腐食材包",
                ["tofu", "pork-mince", "chili-bean-paste"],
                course="course/sichuan-basics",
            ),
            _kit(
                "spring-bamboo",
                "春笋尝鲜包",
                ["spring-bamboo", "soy-sauce"],
                course="course/spring-veg",
                price=3900,
            ),
        ],
    )


@pytest.fixture
def catalog(store: Store) -> CatalogRepository:
    repo = CatalogRepository(store)
    repo.upsert(fixture_bundle())
    return repo


@pytest.fixture
def demo(store: Store, catalog: CatalogRepository) -> PairingModel:
    store_orders(store, simulate_orders(catalog, n_users=120, days=42, seed=3, start=date(2026, 3, 2)))
    return PairingModel().fit(catalog, store)


# -- pure maths ---------------------------------------------------------------
def test_rules_match_hand_computed_support_confidence_lift() -> None:
    baskets = [["a", "b", "a"], ["a", "b", "c"], ["a", "c"], ["b"], ["d"]]
    rules = mine_rules(baskets, min_support=0.3, min_confidence=0.6)
    got = {(r.antecedent, r.consequent): r for r in rules}
    assert set(got) == {("c", "a"), ("a", "c"), ("a", "b"), ("b", "a")}
    assert [(r.antecedent, r.consequent) for r in rules] == [("c", "a"), ("a", "c"), ("a", "b"), ("b", "a")]
    c_a, a_c, a_b = got[("c", "a")], got[("a", "c")], got[("a", "b")]
    assert (c_a.count, c_a.support, c_a.confidence, c_a.lift) == pytest.approx((2, 0.4, 1.0, 5 / 3))
    assert (a_c.support, a_c.confidence, a_c.lift) == pytest.approx((0.4, 2 / 3, 5 / 3))
    assert (a_b.support, a_b.confidence, a_b.lift) == pytest.approx((0.4, 2 / 3, 10 / 9))
    every = {(r.antecedent, r.consequent): r for r in mine_rules(baskets, 0.0, 0.0)}
    assert every[("b", "c")].lift == pytest.approx(5 / 6)  # negative association is still reported
    assert mine_rules([], 0.1, 0.1) == []


def test_mining_50k_baskets_over_300_items_is_fast() -> None:
    rng = np.random.default_rng(0)
    items = [f"i{n}" for n in range(300)]
    baskets = [[items[j] for j in rng.integers(0, 300, size=rng.integers(2, 9))] for _ in range(50_000)]
    began = time.perf_counter()
    rules = mine_rules(baskets, min_support=0.0005, min_confidence=0.01)
    assert time.perf_counter() - began < 5.0
    assert rules


def test_recipe_cooccurrence_and_idf_down_weight_staples() -> None:
    recipes = {"r1": ["牛腩", "土豆", "盐"], "r2": ["牛腩", "番茄", "盐"], "r3": ["鸡蛋", "番茄", "盐"]}
    cooc = recipe_cooccurrence(recipes)
    assert cooc[("牛腩", "盐")] == cooc[("盐", "牛腩")] == 2
    assert cooc[("番茄", "牛腩")] == 1
    assert ("土豆", "鸡蛋") not in cooc
    idf = ingredient_idf(recipes)
    assert idf["盐"] < idf["番茄"] < idf["土豆"] <= 1.0


def test_pairing_score_on_known_answers() -> None:
    # lift 3 → (3 − 1)/(3 + 1) = 0.5; orders term 0.6 · 0.4 · 0.5 = 0.12; recipe term 0.4 · 0.5 · 0.5 = 0.1
    assert pairing_score(0.4, 3.0, 0.5, 0.5) == pytest.approx(0.22)
    assert pairing_score(0.9, 1.0, 0.0, 1.0) == 0.0  # independence earns nothing, however frequent
    assert pairing_score(0.4, 0.5, 0.0, 1.0) == 0.0  # negative association is not a pairing
    assert pairing_score(0.4, 3.0, 0.5, 0.5, discount=0.5) == pytest.approx(0.11)


def test_staples_are_recognised_by_name() -> None:
    assert all(is_staple_name(n) for n in ("盐", "井矿盐", "特级生抽", "大蒜", "生姜", "小葱", "白砂糖"))
    assert not any(is_staple_name(n) for n in ("洋葱", "蒜薹", "无盐黄油", "牛腩", "番茄", "郫县豆瓣酱"))


def test_kits_expand_to_ingredients_and_courses_drop_out() -> None:
    kits = {"kit/k": ["ingredient/a", "ingredient/b"]}
    assert expand_basket(["kit/k", "course/c", "ingredient/z"], kits) == {
        "ingredient/a",
        "ingredient/b",
        "ingredient/z",
    }


# -- simulator ------------------------------------------------------------------
def test_simulator_is_deterministic_per_seed(catalog: CatalogRepository) -> None:
    one = simulate_orders(catalog, n_users=40, days=14, seed=11, start=date(2026, 4, 6))
    two = simulate_orders(catalog, n_users=40, days=14, seed=11, start=date(2026, 4, 6))
    other = simulate_orders(catalog, n_users=40, days=14, seed=12, start=date(2026, 4, 6))
    assert one == two
    assert one != other
    assert len({o.external_id for o in one}) == len(one) > 50


def test_simulated_baskets_look_real(catalog: CatalogRepository) -> None:
    orders = simulate_orders(catalog, n_users=200, days=56, seed=5, start=date(2026, 2, 2))  # Feb 2 – Mar 29
    seasonal = {"ingredient/spring-bamboo", "kit/spring-bamboo"}
    months = Counter(o.created_at[5:7] for o in orders if seasonal & {s for s, _, _ in o.items})
    assert months["02"] == 0 and months["03"] > 5  # 春笋 only sold in its months
    per_day = Counter(date.fromisoformat(o.created_at[:10]).weekday() >= 5 for o in orders)
    assert (per_day[True] / 16) / (per_day[False] / 40) > 1.2  # 16 weekend days, 40 weekdays
    braised = [{s for s, _, _ in o.items} for o in orders]
    braised = [b for b in braised if {"ingredient/beef-brisket", "ingredient/carrot"} <= b]
    assert len(braised) > 20
    share = {s: sum(s in b for b in braised) / len(braised) for s in ("ingredient/potato", "ingredient/salt")}
    assert share["ingredient/potato"] > 0.7 > 0.5 > share["ingredient/salt"]  # salt is usually at home
    assert any(s.startswith("kit/") for o in orders for s, _, _ in o.items)
    assert any(s.startswith("course/") for o in orders for s, _, _ in o.items)
    assert all(o.total_cents > 0 and o.created_at.endswith("Z") for o in orders)


def test_store_orders_is_one_idempotent_transaction(store: Store, catalog: CatalogRepository) -> None:
    orders = simulate_orders(catalog, n_users=30, days=10, seed=1, start=date(2026, 5, 4))
    assert store_orders(store, orders) == len(orders)
    counts = [store.scalar(f"SELECT count(*) FROM {t}") for t in ("users", "orders", "order_items")]
    assert store_orders(store, orders) == 0
    assert [store.scalar(f"SELECT count(*) FROM {t}") for t in ("users", "orders", "order_items")] == counts
    assert counts[1] == len(orders) and counts[0] <= 30
    assert store.scalar("SELECT sum(total_cents) FROM orders") == sum(o.total_cents for o in orders)
    assert store.integrity_problems() == []


# -- the model ------------------------------------------------------------------
def test_resolve_finds_the_ingredient_in_pairing_questions(demo: PairingModel) -> None:
    assert demo.resolve("牛腩配什么") == "ingredient/beef-brisket"
    assert demo.resolve("红烧牛腩搭配什么好？") == "ingredient/beef-brisket"
    assert demo.resolve("牛肋條和什么一起做") == "ingredient/beef-brisket"  # Traditional + alias
    assert demo.resolve("西紅柿配啥") == "ingredient/tomato"
    assert demo.resolve("番茄酱配什么") == "ingredient/ketchup"  # longest name wins over 番茄
    assert demo.resolve("家里有洋芋，配什么好") == "ingredient/potato"
    assert demo.resolve("今天天气不错") is None


def test_brisket_pairs_with_vegetables_not_salt(demo: PairingModel) -> None:
    pairings = demo.pairings_for("ingredient/beef-brisket", k=6, month=4)
    slugs = [p.slug for p in pairings]
    assert set(slugs[:3]) <= {
        "ingredient/potato",
        "ingredient/tomato",
        "ingredient/carrot",
        "ingredient/onion",
    }
    assert "ingredient/salt" not in slugs[:4]
    top = pairings[0]
    assert top.lift > 1 and 0 < top.confidence <= 1 and 0 < top.support <= 1 and top.in_season and top.reasons


def test_out_of_season_pairings_are_demoted_and_flagged_not_hidden(demo: PairingModel) -> None:
    spring = {p.slug: p for p in demo.pairings_for("ingredient/soy-sauce", k=20, month=4)}
    autumn = {p.slug: p for p in demo.pairings_for("ingredient/soy-sauce", k=20, month=10)}
    bamboo = "ingredient/spring-bamboo"
    assert spring[bamboo].in_season and not autumn[bamboo].in_season
    assert autumn[bamboo].score == pytest.approx(spring[bamboo].score / 2)
    assert any("非当季" in r for r in autumn[bamboo].reasons)


def test_answer_gives_pairings_recipes_and_a_kit(demo: PairingModel) -> None:
    answer = demo.answer("ingredient/beef-brisket", month=4)
    assert answer.ingredient_name == "牛腩" and len(answer.pairings) == 6
    assert {r.slug for r in answer.recipes} == {"recipe/braised-beef-brisket", "recipe/tomato-beef-brisket"}
    assert answer.recipes[0].course == "course/home-stews" and answer.recipes[0].uses
    assert answer.kit is not None and answer.kit["slug"] in {"kit/braised-brisket", "kit/tomato-brisket"}
    assert answer.kit["covers"] and "食材包" in answer.kit["title"]
    data = answer.to_json()
    assert data["pairings"][0]["slug"] == answer.pairings[0].slug
    with pytest.raises(KeyError):
        demo.answer("ingredient/unicorn")


def test_pairing_works_from_recipes_alone_without_orders(catalog: CatalogRepository, store: Store) -> None:
    model = PairingModel().fit(catalog, store)
    slugs = [p.slug for p in model.pairings_for("ingredient/beef-brisket", k=20, month=4)]
    assert slugs[0] == "ingredient/potato"  # in both brisket recipes
    assert "ingredient/salt" not in slugs and "ingredient/carrot" in slugs  # seasonings are answered apart
    assert "ingredient/salt" in [p.slug for p in model.pairings_for("ingredient/beef-brisket", k=20, month=4, seasonings=True)]


def test_fit_on_demo_sized_data_is_fast(store: Store, catalog: CatalogRepository) -> None:
    store_orders(store, simulate_orders(catalog, seed=7, start=date(2026, 3, 2)))  # 300 users × 60 days
    began = time.perf_counter()
    PairingModel().fit(catalog, store)
    assert time.perf_counter() - began < 2.0


def _shipped_catalog_available() -> bool:
    from recsys.catalog_io import shipped_catalog_dir

    folder = shipped_catalog_dir()
    return folder.is_dir() and any(p.suffix in {".json", ".csv"} for p in folder.iterdir())


@pytest.mark.skipif(not _shipped_catalog_available(), reason="shipped catalog not written yet")
def test_answer_on_the_shipped_catalog(store: Store) -> None:
    from recsys.catalog_io import load_shipped

    repo = CatalogRepository(store)
    load_shipped(repo)
    store_orders(store, simulate_orders(repo, seed=7, start=date(2026, 3, 2)))  # the demo's 300 × 60
    began = time.perf_counter()
    model = PairingModel().fit(repo, store)
    assert time.perf_counter() - began < 2.0
    slug = model.resolve("牛腩配什么")
    assert slug is not None and model.resolve("西紅柿配啥") == model.resolve("番茄配什么") is not None
    answer = model.answer(slug, month=4)
    assert len(answer.pairings) == 6 and answer.recipes and answer.kit is not None
    assert slug in answer.kit["items"]
    assert all(p.slug != slug and p.slug not in model.staples for p in answer.pairings)
    assert all(p.lift > 1 for p in answer.pairings if p.support > 0)
