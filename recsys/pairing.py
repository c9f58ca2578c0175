"""What goes with an ingredient ("X 配什么"): association rules from orders + recipe co-occurrence.

Pairing score of candidate y for anchor x (`pairing_score`):

    score(x, y) = g(y) · h(x, y) · avail(y)
                  · (w_o · conf̃(x→y) · max(0, (lift̃ − 1)/(lift̃ + 1)) + w_r · idf(y) · cooc(x, y)/df(x))

- Orders term: conf̃, lift̃ are confidence and lift from order baskets, shrunk towards the base
  rate with a prior of `prior_baskets` baskets, so one lucky co-purchase is not a strong rule.
  (lift − 1)/(lift + 1) maps lift ∈ [1, ∞) onto [0, 1): independence (lift 1) earns nothing, so
  staples bought with everything (盐, 生抽) score ~0 here; confidence keeps rare flukes small.
- Recipe term: cooc(x, y)/df(x) is the share of recipes using x that also use y, weighted by
  idf(y) = (ln((1 + R)/(1 + df(y))) + 1)/(ln(1 + R) + 1) over the R recipes, in (0, 1]:
  an ingredient in every recipe weighs ~0.2, so 牛腩 pairs with 土豆/番茄/胡萝卜, not 盐.
- g(y) = 0.5 for pantry staples (盐/糖/生抽/葱姜蒜 … by name, or in ≥ 40% of recipes): a small
  catalog cannot show through IDF alone that 姜 goes with everything.
- h(x, y) = 0.7 when x and y share a category (牛腩 → 牛里脊): "X 配什么" asks for complements,
  and a same-category item is as often a substitute.
- w_o = 0.6, w_r = 0.4 by default; with no orders yet the recipe term alone ranks.
- avail(y): 1, halved when y is out of season in the asked month, halved again when out of stock
  (only when the shop tracks stock). Unavailable pairings are demoted and flagged, never hidden.

Kits in orders expand to their ingredients (buying a kit is evidence they go together);
courses are ignored for ingredient rules.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from itertools import combinations, groupby
from typing import Any

import numpy as np
from scipy import sparse

from core.repos.catalog import CatalogRepository
from core.store import Store
from nlp.text import normalize

# Where the asked-about ingredient ends in "X 配什么 / X搭配什么 / X和什么一起做".
_CUE = re.compile(
    r"(?:搭配|配|搭|和|跟|与|同)(?:什么|啥|哪些|点什么|些什么)|一起(?:做|煮|炒|炖|吃)|怎么搭|配菜"
)
SEASON_PENALTY = 0.5
STOCK_PENALTY = 0.5
STAPLE_FACTOR = 0.5
NOT_STAPLES = ("洋葱", "青蒜", "蒜薹", "蒜苗")  # vegetables whose names end in a staple's character
SAME_CATEGORY_FACTOR = 0.7
# Seasonings and aromatics are answered apart from the main partners ("调味：葱姜蒜"): a home cook
# asked what goes with 茄子 names 肉末/青椒/土豆, not 生抽.
SEASONING_CATEGORIES = frozenset({"调味料", "香料"})
AROMATICS = ("小葱", "大葱", "香葱", "生姜", "大蒜", "香菜", "红葱头")
# Ingredients most kitchens already hold: they go with everything, so they say little about X.
STAPLE_NAMES = frozenset(
    "盐 糖 白糖 冰糖 生抽 老抽 酱油 料酒 黄酒 醋 米醋 香醋 陈醋 蚝油 食用油 花生油 菜籽油 "  # noqa: SIM905
    "香油 芝麻油 淀粉 玉米淀粉 胡椒 胡椒粉 白胡椒粉 鸡精 味精 葱 小葱 大葱 香葱 姜 生姜 "
    "蒜 大蒜 八角 花椒 干辣椒 桂皮 香叶 橄榄油 玉米油 黑胡椒".split()
)


@dataclass(frozen=True)
class Rule:
    antecedent: str
    consequent: str
    support: float
    confidence: float
    lift: float
    count: int


@dataclass(frozen=True)
class CoOccurrence:
    """Basket co-occurrence counts: `pairs[i, j]` baskets hold both items, `counts[i]` hold item i."""

    items: list[str]
    counts: np.ndarray
    pairs: sparse.csr_matrix
    n_baskets: int

    def index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.items)}


def basket_cooccurrence(baskets: Sequence[Collection[str]]) -> CoOccurrence:
    """One sparse product Bᵀ·B over the basket × item incidence matrix (a repeat in a basket counts once)."""
    items = sorted({item for basket in baskets for item in basket})
    index = {item: i for i, item in enumerate(items)}
    rows, cols = [], []
    for b, basket in enumerate(baskets):
        for item in set(basket):
            rows.append(b)
            cols.append(index[item])
    incidence = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(baskets), len(items))
    )
    pairs = (incidence.T @ incidence).tocsr()
    counts = np.asarray(pairs.diagonal()).astype(np.int64)
    return CoOccurrence(items, counts, pairs, len(baskets))


def mine_rules(baskets: Sequence[Collection[str]], min_support: float, min_confidence: float) -> list[Rule]:
    """Single item → single item association rules, strongest lift first.

    support = n(a∧b)/N, confidence = n(a∧b)/n(a), lift = confidence / (n(b)/N); N counts every basket.
    """
    co = basket_cooccurrence(baskets)
    if co.n_baskets == 0:
        return []
    coo = co.pairs.tocoo()
    a, b, n_ab = coo.row, coo.col, coo.data.astype(float)
    support = n_ab / co.n_baskets
    confidence = n_ab / co.counts[a]
    lift = confidence / (co.counts[b] / co.n_baskets)
    keep = (a != b) & (support >= min_support) & (confidence >= min_confidence)
    rules = [
        Rule(co.items[i], co.items[j], float(s), float(c), float(lf), int(n))
        for i, j, s, c, lf, n in zip(
            a[keep], b[keep], support[keep], confidence[keep], lift[keep], n_ab[keep], strict=True
        )
    ]
    rules.sort(key=lambda r: (-r.lift, -r.confidence, r.antecedent, r.consequent))
    return rules


def is_staple_name(name: str) -> bool:
    """盐/井矿盐, 生抽/特级生抽, 蒜/大蒜 — not 蒜薹 or 无盐黄油: a one-character staple must end the name."""
    name = normalize(name)
    if any(word in name for word in NOT_STAPLES):
        return False
    return any(name.endswith(word) if len(word) == 1 else word in name for word in STAPLE_NAMES)


def staple_slugs(
    ingredients: Iterable[Mapping[str, Any]], recipe_lines: Mapping[str, Collection[str]]
) -> frozenset[str]:
    """Pantry staples: a staple name (`is_staple_name`), or used by ≥ 40% of (≥ 8) recipes."""
    used: dict[str, int] = defaultdict(int)
    for lines in recipe_lines.values():
        for slug in set(lines):
            used[slug] += 1
    n = len(recipe_lines)
    common = {s for s, k in used.items() if n >= 8 and k / n >= 0.4}
    return frozenset(
        row["slug"] for row in ingredients if is_staple_name(row["name"]) or row["slug"] in common
    )


def seasoning_slugs(ingredients: Iterable[Mapping[str, Any]], staples: Collection[str]) -> frozenset[str]:
    """Seasonings, spices, oils, starches and aromatics: what flavours a dish rather than makes it."""
    out = set(staples)
    for row in ingredients:
        name, category = str(row.get("name", "")), str(row.get("category", ""))
        oil = category == "米面粮油" and name.endswith("油")
        if category in SEASONING_CATEGORIES or name in AROMATICS or name.endswith("淀粉") or oil:
            out.add(row["slug"])
    return frozenset(out)


def pairing_score(
    conf_s: float,
    lift_s: float,
    recipe_share: float,
    idf: float,
    *,
    discount: float = 1.0,
    order_weight: float = 0.6,
    recipe_weight: float = 0.4,
) -> float:
    """The module formula: orders term + IDF-weighted recipe term, times the g·h·avail discount."""
    from_orders = conf_s * max(0.0, (lift_s - 1) / (lift_s + 1)) if lift_s > 0 else 0.0
    return discount * (order_weight * from_orders + recipe_weight * idf * recipe_share)


def recipe_cooccurrence(recipes: Mapping[str, Collection[str]]) -> dict[tuple[str, str], int]:
    """How many recipes use both a and b; symmetric, both (a, b) and (b, a) are keys."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for ingredients in recipes.values():
        for a, b in combinations(sorted(set(ingredients)), 2):
            counts[(a, b)] += 1
            counts[(b, a)] += 1
    return dict(counts)


def ingredient_idf(recipes: Mapping[str, Collection[str]]) -> dict[str, float]:
    """Smoothed IDF over recipes, divided by its maximum so it lies in (0, 1]; unseen items get 1."""
    n = len(recipes)
    df: dict[str, int] = defaultdict(int)
    for ingredients in recipes.values():
        for slug in set(ingredients):
            df[slug] += 1
    top = math.log(1 + n) + 1
    return {slug: (math.log((1 + n) / (1 + d)) + 1) / top for slug, d in df.items()}


def expand_basket(items: Iterable[str], kit_items: Mapping[str, Collection[str]]) -> set[str]:
    """Ingredients of an order: kits become their ingredients, courses (and anything else) drop out."""
    out: set[str] = set()
    for slug in items:
        if slug.startswith("ingredient/"):
            out.add(slug)
        elif slug.startswith("kit/"):
            out.update(kit_items.get(slug, ()))
    return out


@dataclass
class Pairing:
    slug: str
    name: str
    score: float
    support: float
    confidence: float
    lift: float
    in_season: bool
    reasons: list[str] = field(default_factory=list)
    in_stock: bool = True
    recipes: int = 0  # recipes that use both
    dishes: list[str] = field(default_factory=list)  # their titles, for the reason shown


@dataclass
class RecipeRef:
    """A recipe (and the course teaching it) that uses the ingredient with some of its pairings."""

    slug: str
    title: str
    uses: list[str]  # names of the top pairings this recipe also uses
    score: float
    course: str | None = None
    course_title: str | None = None

    def __str__(self) -> str:
        with_ = f"（搭配{'、'.join(self.uses[:3])}）" if self.uses else ""
        course = f" · 课程《{self.course_title}》" if self.course_title else ""
        return f"{self.title}{with_}{course}"


@dataclass
class PairingAnswer:
    ingredient: str
    ingredient_name: str
    month: int
    pairings: list[Pairing]
    recipes: list[RecipeRef]
    kit: dict[str, Any] | None  # slug, title, price_cents, course, items, covers
    seasonings: list[str] = field(default_factory=list)  # names: 葱姜蒜, 生抽 … apart from the partners

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for p in data["pairings"]:
            for key in ("score", "support", "confidence", "lift"):
                p[key] = round(p[key], 4)
        for r in data["recipes"]:
            r["score"] = round(r["score"], 4)
        return data


class PairingModel:
    """Fit once from the catalog and the orders, then answer "X 配什么" from memory (no I/O)."""

    def __init__(self, *, order_weight: float = 0.35, recipe_weight: float = 0.65, prior_baskets: float = 5.0):
        self.order_weight = order_weight
        self.recipe_weight = recipe_weight
        self.prior_baskets = prior_baskets
        self.ingredients: dict[str, dict[str, Any]] = {}
        self.recipes: dict[str, dict[str, Any]] = {}
        self.recipe_lines: dict[str, list[str]] = {}
        self.kits: dict[str, dict[str, Any]] = {}
        self.kit_lines: dict[str, list[str]] = {}
        self.course_titles: dict[str, str] = {}
        self.co = basket_cooccurrence([])
        self.cooc: dict[tuple[str, str], int] = {}
        self.df: dict[str, int] = {}
        self.idf: dict[str, float] = {}
        self.staples: frozenset[str] = frozenset()
        self.seasonings: frozenset[str] = frozenset()
        self.recipe_cuisine: dict[str, str] = {}
        self.tracks_stock = False
        self._co_index: dict[str, int] = {}
        self._names: list[tuple[str, str]] = []  # (normalised name or alias, slug), longest first

    # -- fitting ------------------------------------------------------------
    def fit(self, catalog: CatalogRepository, store: Store | None = None) -> PairingModel:
        self.ingredients = {row["slug"]: row for row in catalog.ingredients()}
        self.recipes = {row["slug"]: row for row in catalog.recipes()}
        self.kits = {row["slug"]: row for row in catalog.kits()}
        self.course_titles = {row["slug"]: row["title"] for row in catalog.courses()}
        self.recipe_lines, self.kit_lines = defaultdict(list), defaultdict(list)
        for line in catalog.lines("recipe_ingredients"):
            self.recipe_lines[line["owner"]].append(line["ingredient"])
        for line in catalog.lines("kit_items"):
            self.kit_lines[line["owner"]].append(line["ingredient"])
        self.recipe_lines, self.kit_lines = dict(self.recipe_lines), dict(self.kit_lines)
        self.cooc = recipe_cooccurrence(self.recipe_lines)
        self.df = defaultdict(int)
        for lines in self.recipe_lines.values():
            for slug in set(lines):
                self.df[slug] += 1
        self.idf = ingredient_idf(self.recipe_lines)
        self.staples = staple_slugs(self.ingredients.values(), self.recipe_lines)
        self.seasonings = seasoning_slugs(self.ingredients.values(), self.staples)
        self.recipe_cuisine = {slug: str(row.get("cuisine") or "") for slug, row in self.recipes.items()}
        self.tracks_stock = any(int(row.get("stock") or 0) > 0 for row in self.ingredients.values())
        self.co = basket_cooccurrence(self._order_baskets(store) if store is not None else [])
        self._co_index = self.co.index()
        self._names = self._name_index()
        return self

    def _order_baskets(self, store: Store) -> list[set[str]]:
        rows = store.db.execute("SELECT order_id, item_slug FROM order_items ORDER BY order_id").fetchall()
        baskets = []
        for _, group in groupby(rows, key=lambda r: r[0]):
            basket = expand_basket((slug for _, slug in group), self.kit_lines)
            if basket:  # course-only orders say nothing about ingredients
                baskets.append(basket)
        return baskets

    def _name_index(self) -> list[tuple[str, str]]:
        names: dict[str, str] = {}
        # Names before aliases, so an alias never steals another ingredient's own name.
        for field_name in ("name", "aliases"):
            for slug, row in self.ingredients.items():
                values = row.get(field_name) or []
                for name in [values] if isinstance(values, str) else values:
                    key = normalize(str(name)).lower()
                    if key:
                        names.setdefault(key, slug)
        return sorted(names.items(), key=lambda kv: -len(kv[0]))

    # -- questions ----------------------------------------------------------
    def resolve(self, text: str) -> str | None:
        """The ingredient X in "X 配什么": longest catalog name or alias, before the cue if there is one."""
        norm = normalize(text or "").lower()
        cue = _CUE.search(norm)
        head = norm[: cue.start()] if cue else norm
        return self._longest_name_in(head) or self._longest_name_in(norm)

    def _longest_name_in(self, text: str) -> str | None:
        best: tuple[int, int, str] | None = None  # (-length, position, slug)
        for name, slug in self._names:
            if best is not None and len(name) < -best[0]:
                break  # names are sorted longest first
            pos = text.find(name)
            if pos >= 0 and (best is None or (-len(name), pos) < best[:2]):
                best = (-len(name), pos, slug)
        return best[2] if best else None

    def in_season(self, slug: str, month: int) -> bool:
        season = self.ingredients.get(slug, {}).get("season") or []
        return not season or month in season

    def in_stock(self, slug: str) -> bool:
        return not self.tracks_stock or int(self.ingredients.get(slug, {}).get("stock") or 0) > 0

    def recipe_shares(self, anchor: str) -> dict[str, float]:
        """Share of the anchor's recipes that also use y, averaged over cuisines, so that twenty
        baking recipes with eggs count as one cuisine's vote, not twenty."""
        by_cuisine: dict[str, list[list[str]]] = defaultdict(list)
        for recipe, lines in self.recipe_lines.items():
            if anchor in lines:
                by_cuisine[self.recipe_cuisine.get(recipe, "")].append(lines)
        shares: dict[str, float] = defaultdict(float)
        for groups in by_cuisine.values():
            for lines in groups:
                for slug in set(lines):
                    shares[slug] += 1.0 / len(groups) / len(by_cuisine)
        return dict(shares)

    def pairings_for(
        self, ingredient_slug: str, *, k: int = 6, month: int | None = None, seasonings: bool = False
    ) -> list[Pairing]:
        """Top-k main partners of `ingredient_slug` (seasonings only when asked), by the module formula."""
        if ingredient_slug not in self.ingredients:
            raise KeyError(f"unknown ingredient {ingredient_slug!r}; find the slug with resolve('X 配什么')")
        month = month or date.today().month
        bought = self._order_stats(ingredient_slug)
        shares = self.recipe_shares(ingredient_slug)
        out = []
        for slug, row in self.ingredients.items():
            if slug == ingredient_slug or (slug in self.seasonings) != seasonings:
                continue
            n_xy, conf, lift, conf_s, lift_s = bought.get(slug, (0, 0.0, 0.0, 0.0, 0.0))
            cooc = self.cooc.get((ingredient_slug, slug), 0)
            if n_xy == 0 and cooc == 0:
                continue
            season_ok, stock_ok = self.in_season(slug, month), self.in_stock(slug)
            score = pairing_score(
                conf_s,
                lift_s,
                shares.get(slug, 0.0),
                self.idf.get(slug, 1.0),
                discount=self._discount(ingredient_slug, slug, season_ok, stock_ok),
                order_weight=self.order_weight,
                recipe_weight=self.recipe_weight,
            )
            support = n_xy / self.co.n_baskets if self.co.n_baskets else 0.0
            pairing = Pairing(slug, row["name"], score, support, conf, lift, season_ok, in_stock=stock_ok)
            pairing.reasons = self._reasons(ingredient_slug, pairing, n_xy, cooc)
            pairing.recipes, pairing.dishes = cooc, self._dishes(ingredient_slug, slug) if cooc else []
            out.append(pairing)
        out.sort(key=lambda p: (-p.score, -p.lift, p.slug))
        return out[:k]

    def _discount(self, anchor: str, slug: str, season_ok: bool, stock_ok: bool) -> float:
        """g(y) · h(x, y) · avail(y) from the module formula."""
        same = self.ingredients[anchor].get("category") and (
            self.ingredients[anchor].get("category") == self.ingredients[slug].get("category")
        )
        return (
            (STAPLE_FACTOR if slug in self.staples else 1.0)
            * (SAME_CATEGORY_FACTOR if same else 1.0)
            * (1.0 if season_ok else SEASON_PENALTY)
            * (1.0 if stock_ok else STOCK_PENALTY)
        )

    def _order_stats(self, anchor: str) -> dict[str, tuple[int, float, float, float, float]]:
        """Per consequent: (n_xy, confidence, lift, shrunk confidence, shrunk lift) for anchor → y."""
        i = self._co_index.get(anchor)
        if i is None or self.co.n_baskets == 0:
            return {}
        n, n_x = self.co.n_baskets, float(self.co.counts[i])
        row = self.co.pairs.getrow(i).tocoo()
        stats = {}
        for j, count in zip(row.col.tolist(), row.data.tolist(), strict=True):
            if j == i:
                continue
            n_y = float(self.co.counts[j])
            p_y_smooth = (n_y + 0.5) / (n + 1)
            conf_s = (count + self.prior_baskets * p_y_smooth) / (n_x + self.prior_baskets)
            conf = count / n_x
            stats[self.co.items[j]] = (int(count), conf, conf / (n_y / n), conf_s, conf_s / p_y_smooth)
        return stats

    def _dishes(self, anchor: str, partner: str) -> list[str]:
        return [
            self.recipes[r]["title"]
            for r, lines in self.recipe_lines.items()
            if anchor in lines and partner in lines and r in self.recipes
        ]

    def names(self) -> dict[str, str]:
        """Every ingredient name and alias (normalised) → slug, for the query parser."""
        return dict(self._names)

    def _reasons(self, anchor: str, pairing: Pairing, n_xy: int, cooc: int) -> list[str]:
        """Chinese reasons for the marketer's `xianke pair` table (customers get reason codes)."""
        x = self.ingredients[anchor]["name"]
        reasons = []
        if n_xy:
            reasons.append(
                f"{pairing.confidence:.0%} 买{x}的订单也买了{pairing.name}（提升度 {pairing.lift:.1f}）"
            )
        if cooc:
            titles = self._dishes(anchor, pairing.slug)
            reasons.append(f"{cooc} 道菜谱一起用：{'、'.join(titles[:2])}")
        if not pairing.in_season:
            months = self.ingredients[pairing.slug].get("season") or []
            reasons.append(f"非当季（{_months(months)}上市）")
        if not pairing.in_stock:
            reasons.append("暂时缺货")
        return reasons

    def answer(
        self, ingredient_slug: str, month: int | None = None, *, k: int = 6, n_recipes: int = 5
    ) -> PairingAnswer:
        """Pairings, the recipes/courses that use the ingredient with them, and the best kit to buy."""
        month = month or date.today().month
        pairings = self.pairings_for(ingredient_slug, k=k, month=month)
        return PairingAnswer(
            ingredient=ingredient_slug,
            ingredient_name=self.ingredients[ingredient_slug]["name"],
            month=month,
            pairings=pairings,
            recipes=self._recipes_with(ingredient_slug, pairings)[:n_recipes],
            kit=self._best_kit(ingredient_slug, pairings, month),
            seasonings=[p.name for p in self.pairings_for(ingredient_slug, k=4, month=month, seasonings=True)],
        )

    def _recipes_with(self, anchor: str, pairings: Sequence[Pairing]) -> list[RecipeRef]:
        weight = {p.slug: p for p in pairings}
        refs = []
        for slug, lines in self.recipe_lines.items():
            if anchor not in lines or slug not in self.recipes:
                continue
            used = [weight[s] for s in lines if s in weight]
            # Recipes built from the top pairings first; a taught recipe (with a course) breaks ties.
            score = sum(p.score for p in used) + (0.001 if self.recipes[slug].get("course") else 0.0)
            course = self.recipes[slug].get("course")
            refs.append(
                RecipeRef(
                    slug,
                    self.recipes[slug]["title"],
                    [p.name for p in used],
                    score,
                    course,
                    self.course_titles.get(course or ""),
                )
            )
        refs.sort(key=lambda r: (-r.score, r.slug))
        return refs

    def _best_kit(self, anchor: str, pairings: Sequence[Pairing], month: int) -> dict[str, Any] | None:
        weight = {p.slug: p.score for p in pairings}
        best: tuple[float, str] | None = None
        for slug, lines in self.kit_lines.items():
            if anchor not in lines or slug not in self.kits:
                continue
            score = 1.0 + sum(weight.get(s, 0.0) for s in lines)
            if not all(self.in_season(s, month) for s in lines):
                score *= SEASON_PENALTY  # a kit we cannot pack this month is a poor suggestion
            if best is None or (-score, slug) < (-best[0], best[1]):
                best = (score, slug)
        if best is None:
            return None
        kit, lines = self.kits[best[1]], self.kit_lines[best[1]]
        return {
            "slug": kit["slug"],
            "title": kit["title"],
            "price_cents": int(kit.get("price_cents") or 0),
            "course": kit.get("course"),
            "items": lines,
            "covers": [p.name for p in pairings if p.slug in lines],
        }


def _months(months: Iterable[int]) -> str:
    ordered = sorted(set(months))
    if not ordered:
        return "全年"
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{ordered[0]}–{ordered[-1]}月"
    return "、".join(str(m) for m in ordered) + "月"
