"""A seeded simulator of realistic shop baskets, so pairing and personalisation have demo orders.

Shoppers have cuisine and diet preferences, a cooking level and a pantry. Most baskets are built
around a recipe the shopper wants to cook (most of its ingredients; staples such as 葱姜蒜/生抽 are
often already at home and so dropped), some are a ready kit, a few are a course with its kit.
Weekends are busier, seasonal ingredients are only sold in their months, and a little noise
(鸡蛋, 牛奶 …) rides along. Everything is driven by one numpy Generator: same seed, same orders.

Two optional signals exist for demand forecasting (both off by default, so existing seeds give the
same orders): `course_followups` — a student who buys a course often comes back for one of its kits
1–5 days later to cook along (drawn from a second Generator, so the main stream is untouched and the
follow-ups are simply added); `campaign_days` — on promotion days every shopper orders
`campaign_lift` times as often.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from core.repos.catalog import CatalogRepository
from core.store import Store
from recsys.pairing import staple_slugs

# Far above any Telegram user id issued so far and below 2**52, so demo shoppers never collide
# with real customers and are easy to delete.
DEMO_USER_BASE = 1_000_000_000_000_000

# Everyday add-ons that ride along with any basket.
ADDON_NAMES = ("鸡蛋", "牛奶", "豆腐", "酸奶", "面包", "香蕉", "苹果", "挂面", "大米")

# Orders per weekday relative to the weekly mean (Mon … Sun): weekends are cooking days.
WEEKDAY_FACTOR = (0.85, 0.85, 0.85, 0.9, 1.05, 1.3, 1.2)
BASKET_MODES = ("recipe", "kit", "course")
BASKET_MODE_P = (0.68, 0.22, 0.10)
LEVELS = ("beginner", "intermediate", "advanced")
LEVEL_APPEAL = {"beginner": 1.5, "intermediate": 1.0, "advanced": 0.6}
# After buying a course, students come back for a kit of it to cook along with the lessons: most of
# those who did not take the kit with the course, fewer of those who did (a second lesson's cooking).
FOLLOWUP_P_WITHOUT_KIT = 0.8
FOLLOWUP_P_WITH_KIT = 0.4
FOLLOWUP_LAG_DAYS = (1, 2, 3, 4, 5)
FOLLOWUP_LAG_P = (0.3, 0.25, 0.2, 0.15, 0.1)
# Salt for the follow-up Generator: independent of, and not consuming, the main stream.
_FOLLOWUP_STREAM = 0xF011


@dataclass(frozen=True)
class SimulatedOrder:
    external_id: str
    user_id: int
    created_at: str  # ISO 8601 UTC, same shape as the store's own timestamps
    items: list[tuple[str, int, int]]  # (item slug, quantity, unit price in cents)

    @property
    def total_cents(self) -> int:
        return sum(quantity * price for _, quantity, price in self.items)


@dataclass
class _Shopper:
    user_id: int
    cuisine_weight: dict[str, float]
    diet: str | None
    level: str
    orders_per_week: float
    pantry: float  # chance a staple is already at home
    recipe_pref: np.ndarray = field(default_factory=lambda: np.zeros(0))  # appetite per shop recipe


@dataclass
class _Shop:
    """The catalog seen from the simulator: what can be bought, cooked and when."""

    ingredients: dict[str, dict[str, Any]]
    recipes: list[dict[str, Any]]  # rows + "lines": [ingredient slug]
    kits: list[dict[str, Any]]  # rows + "lines" + "cuisine"
    courses: list[dict[str, Any]]
    staples: frozenset[str]
    addons: list[str]
    cuisines: list[str]
    diets: list[str]
    kits_by_course: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    recipe_appeal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _availability: dict[int, np.ndarray] = field(default_factory=dict)

    def in_season(self, slug: str, month: int) -> bool:
        season = self.ingredients[slug].get("season") or []
        return not season or month in season

    def recipe_availability(self, month: int) -> np.ndarray:
        """Share of each recipe's non-staple ingredients in season; 0 below 60% (nobody plans
        油焖春笋 when there are no spring shoots)."""
        if month not in self._availability:
            shares = []
            for recipe in self.recipes:
                key = [s for s in recipe["lines"] if s not in self.staples] or recipe["lines"]
                shares.append(sum(self.in_season(s, month) for s in key) / len(key))
            share = np.asarray(shares, dtype=float)
            self._availability[month] = np.where(share >= 0.6, share, 0.0)
        return self._availability[month]


def _load_shop(catalog: CatalogRepository, rng: np.random.Generator) -> _Shop:
    ingredients = {row["slug"]: row for row in catalog.ingredients()}
    recipe_lines: dict[str, list[str]] = {}
    for line in catalog.lines("recipe_ingredients"):
        if line["ingredient"] in ingredients:
            recipe_lines.setdefault(line["owner"], []).append(line["ingredient"])
    kit_lines: dict[str, list[str]] = {}
    for line in catalog.lines("kit_items"):
        kit_lines.setdefault(line["owner"], []).append(line["ingredient"])
    recipes = [
        {**r, "lines": recipe_lines[r["slug"]]} for r in catalog.recipes() if recipe_lines.get(r["slug"])
    ]
    courses = catalog.courses()
    course_cuisine = {c["slug"]: c.get("cuisine", "") for c in courses}
    kits = []
    for row in catalog.kits():
        lines = [s for s in kit_lines.get(row["slug"], []) if s in ingredients]
        if lines:
            kits.append(
                {
                    **row,
                    "lines": lines,
                    "cuisine": course_cuisine.get(row.get("course") or "")
                    or _closest_cuisine(lines, recipes),
                }
            )
    kits_by_course: dict[str, list[dict[str, Any]]] = {}
    for kit in kits:
        if kit.get("course"):
            kits_by_course.setdefault(kit["course"], []).append(kit)
    staples = staple_slugs(ingredients.values(), recipe_lines)
    addons = [s for name in ADDON_NAMES for s, row in ingredients.items() if row["name"] == name]
    cuisines = sorted(
        {r["cuisine"] for r in recipes if r.get("cuisine")}
        | {c["cuisine"] for c in courses if c.get("cuisine")}
    )
    diet_counts: dict[str, int] = {}
    for recipe in recipes:
        for tag in recipe.get("diet_tags") or []:
            diet_counts[tag] = diet_counts.get(tag, 0) + 1
    diets = sorted(tag for tag, n in diet_counts.items() if n >= 3)
    course_level = {c["slug"]: c.get("level") for c in courses}
    # Everyday dishes are easy dishes: recipes taught in beginner courses are cooked most often,
    # and dish popularity is long-tailed (a few classics, many occasional dishes).
    ease = np.array([LEVEL_APPEAL.get(course_level.get(r.get("course") or ""), 1.0) for r in recipes])
    appeal = ease * rng.lognormal(0.0, 0.5, size=len(recipes))
    return _Shop(
        ingredients, recipes, kits, courses, staples, addons, cuisines, diets, kits_by_course, appeal
    )


def _closest_cuisine(lines: Sequence[str], recipes: Sequence[dict[str, Any]]) -> str:
    """A kit without a course borrows the cuisine of the recipe it overlaps most (Jaccard)."""
    items = set(lines)
    best, best_overlap = "", 0.0
    for recipe in recipes:
        other = set(recipe["lines"])
        overlap = len(items & other) / len(items | other)
        if overlap > best_overlap:
            best, best_overlap = recipe.get("cuisine", ""), overlap
    return best


def _make_shoppers(shop: _Shop, n_users: int, rng: np.random.Generator, base: int) -> list[_Shopper]:
    shoppers = []
    for n in range(n_users):
        weights = rng.dirichlet(np.full(len(shop.cuisines), 0.6)) if shop.cuisines else np.array([])
        diet = shop.diets[int(rng.integers(len(shop.diets)))] if shop.diets and rng.random() < 0.15 else None
        shopper = _Shopper(
            user_id=base + n + 1,
            cuisine_weight={c: float(w) for c, w in zip(shop.cuisines, weights, strict=True)},
            diet=diet,
            level=LEVELS[int(rng.choice(3, p=[0.6, 0.3, 0.1]))],
            # Heavy-tailed activity: most shop now and then, a few every other day.
            orders_per_week=float(min(rng.gamma(1.5, 0.8), 5.0)),
            pantry=float(rng.uniform(0.55, 0.9)),
        )
        shopper.recipe_pref = _recipe_pref(shop, shopper)
        shoppers.append(shopper)
    return shoppers


def _recipe_pref(shop: _Shop, shopper: _Shopper) -> np.ndarray:
    """Cuisine taste × dish appeal, zero for recipes outside the shopper's diet."""
    taste = np.array([0.05 + shopper.cuisine_weight.get(r.get("cuisine", ""), 0.0) for r in shop.recipes])
    allowed = np.array([not shopper.diet or shopper.diet in (r.get("diet_tags") or []) for r in shop.recipes])
    return taste * shop.recipe_appeal * allowed


def _pick(rng: np.random.Generator, options: Sequence[Any], weights: Sequence[float]) -> Any | None:
    total = float(sum(weights))
    if not options or total <= 0:
        return None
    return options[int(rng.choice(len(options), p=np.asarray(weights, dtype=float) / total))]


def _pick_recipe(
    shop: _Shop, shopper: _Shopper, month: int, rng: np.random.Generator
) -> dict[str, Any] | None:
    weights = shopper.recipe_pref * shop.recipe_availability(month) ** 2
    total = float(weights.sum())
    if total <= 0:
        return None
    return shop.recipes[int(rng.choice(len(weights), p=weights / total))]


def _recipe_lines(
    shop: _Shop, shopper: _Shopper, recipe: dict[str, Any], month: int, rng: np.random.Generator
) -> list[str]:
    chosen = []
    for slug in recipe["lines"]:
        if not shop.in_season(slug, month):
            continue
        keep = (1.0 - shopper.pantry) if slug in shop.staples else 0.88
        if rng.random() < keep:
            chosen.append(slug)
    if not chosen:  # a basket is bought for a reason: keep the recipe's main in-season ingredient
        hero = [s for s in recipe["lines"] if s not in shop.staples and shop.in_season(s, month)]
        chosen = hero[:1]
    return chosen


def _kit_ok(shop: _Shop, shopper: _Shopper, kit: dict[str, Any], month: int) -> bool:
    if shopper.diet and kit.get("diet_tags") and shopper.diet not in kit["diet_tags"]:
        return False
    return all(shop.in_season(s, month) for s in kit["lines"])


def _basket(shop: _Shop, shopper: _Shopper, day: date, rng: np.random.Generator) -> dict[str, int]:
    """Item slug → quantity for one order."""
    month = day.month
    basket: dict[str, int] = {}

    def add(slug: str, quantity: int = 1) -> None:
        basket[slug] = basket.get(slug, 0) + quantity

    mode = BASKET_MODES[int(rng.choice(3, p=BASKET_MODE_P))]
    if mode == "course" and shop.courses:
        level_fit = {lvl: 1.0 if lvl == shopper.level else 0.3 for lvl in LEVELS}
        course = _pick(
            rng,
            shop.courses,
            [
                (0.05 + shopper.cuisine_weight.get(c.get("cuisine", ""), 0.0))
                * level_fit.get(c.get("level", ""), 0.3)
                for c in shop.courses
            ],
        )
        if course is not None:
            add(course["slug"])
            kits = [
                k for k in shop.kits_by_course.get(course["slug"], []) if _kit_ok(shop, shopper, k, month)
            ]
            if kits and rng.random() < 0.7:
                add(kits[int(rng.integers(len(kits)))]["slug"])
            else:
                own = [r for r in shop.recipes if r.get("course") == course["slug"]]
                if own:
                    for slug in _recipe_lines(shop, shopper, own[int(rng.integers(len(own)))], month, rng):
                        add(slug)
    elif mode == "kit":
        kits = [k for k in shop.kits if _kit_ok(shop, shopper, k, month)]
        kit = _pick(rng, kits, [0.05 + shopper.cuisine_weight.get(k["cuisine"], 0.0) for k in kits])
        if kit is not None:
            add(kit["slug"], 2 if rng.random() < 0.1 else 1)
    if not basket:  # the common case, and the fallback when no course/kit fits
        weekend = day.weekday() >= 5
        for _ in range(2 if rng.random() < (0.3 if weekend else 0.15) else 1):
            recipe = _pick_recipe(shop, shopper, month, rng)
            if recipe is None:
                break
            for slug in _recipe_lines(shop, shopper, recipe, month, rng):
                add(slug, 1 if basket.get(slug) or rng.random() < 0.8 else 2)
    if rng.random() < 0.3:
        addons = [s for s in shop.addons if shop.in_season(s, month)] or [
            s for s in shop.ingredients if shop.in_season(s, month)
        ]
        for _ in range(1 + int(rng.random() < 0.3)):
            if addons:
                add(addons[int(rng.integers(len(addons)))])
    return basket


def _unit_prices(catalog: CatalogRepository) -> dict[str, int]:
    prices = {}
    for rows in (catalog.ingredients(), catalog.kits(), catalog.courses()):
        prices.update({r["slug"]: int(r.get("price_cents") or 0) for r in rows})
    return prices


def _order_time(day: date, rng: np.random.Generator) -> str:
    """Lunch and after-work peaks in Beijing time (09–22h), stored as UTC (same calendar date)."""
    u = rng.random()
    hour = (
        int(rng.integers(10, 13))
        if u < 0.3
        else int(rng.integers(17, 21))
        if u < 0.8
        else int(rng.integers(9, 22))
    )
    local = datetime(day.year, day.month, day.day, hour, int(rng.integers(60)), int(rng.integers(60)))
    return f"{local - timedelta(hours=8):%Y-%m-%dT%H:%M:%S}.000Z"


def simulate_orders(
    catalog: CatalogRepository,
    *,
    n_users: int = 300,
    days: int = 60,
    seed: int = 7,
    start: date | None = None,
    user_id_base: int = DEMO_USER_BASE,
    course_followups: bool = False,
    campaign_days: Collection[date] | None = None,
    campaign_lift: float = 1.6,
) -> list[SimulatedOrder]:
    """Orders of `n_users` demo shoppers over `days` days from `start` (default: the last `days` days).

    Deterministic for a given catalog, seed, start and options. External ids are `sim<seed>-<n>` in
    time order, so re-running with the same seed never duplicates orders in the store. With the
    default options the orders are exactly those of earlier versions.
    """
    start = start or (datetime.now(UTC).date() - timedelta(days=days))
    rng = np.random.default_rng(seed)
    shop = _load_shop(catalog, rng)
    if not shop.ingredients:
        return []
    prices = _unit_prices(catalog)
    shoppers = _make_shoppers(shop, n_users, rng, user_id_base)
    drafts: list[tuple[str, int, dict[str, int]]] = []
    promo = frozenset(campaign_days or ())
    follow_rng = np.random.default_rng([seed, _FOLLOWUP_STREAM]) if course_followups else None
    pending: dict[int, list[tuple[_Shopper, str]]] = {}  # day offset → (shopper, course) kit follow-ups
    for offset in range(days):
        day = start + timedelta(days=offset)
        factor = WEEKDAY_FACTOR[day.weekday()] * (campaign_lift if day in promo else 1.0)
        for shopper in shoppers:
            for _ in range(min(int(rng.poisson(shopper.orders_per_week / 7 * factor)), 2)):
                basket = _basket(shop, shopper, day, rng)
                if basket:
                    drafts.append((_order_time(day, rng), shopper.user_id, basket))
                    if follow_rng is not None:
                        _schedule_followup(shop, shopper, basket, offset, follow_rng, pending)
        if follow_rng is not None:
            for shopper, course in pending.pop(offset, []):
                kit = _followup_kit(shop, shopper, course, day, follow_rng)
                if kit is not None:
                    drafts.append((_order_time(day, follow_rng), shopper.user_id, {kit: 1}))
    drafts.sort(key=lambda d: (d[0], d[1]))
    return [
        SimulatedOrder(
            external_id=f"sim{seed}-{n:06d}",
            user_id=user_id,
            created_at=created_at,
            items=[(slug, quantity, prices.get(slug, 0)) for slug, quantity in basket.items()],
        )
        for n, (created_at, user_id, basket) in enumerate(drafts, start=1)
    ]


def _schedule_followup(
    shop: _Shop,
    shopper: _Shopper,
    basket: dict[str, int],
    offset: int,
    rng: np.random.Generator,
    pending: dict[int, list[tuple[_Shopper, str]]],
) -> None:
    """A course in the basket: the student may come back for one of its kits in 1–5 days."""
    for slug in basket:
        if not slug.startswith("course/"):
            continue
        own_kits = {k["slug"] for k in shop.kits_by_course.get(slug, [])}
        chance = FOLLOWUP_P_WITH_KIT if own_kits & basket.keys() else FOLLOWUP_P_WITHOUT_KIT
        if not own_kits or rng.random() >= chance:
            continue
        lag = int(rng.choice(FOLLOWUP_LAG_DAYS, p=FOLLOWUP_LAG_P))
        pending.setdefault(offset + lag, []).append((shopper, slug))


def _followup_kit(
    shop: _Shop, shopper: _Shopper, course: str, day: date, rng: np.random.Generator
) -> str | None:
    kits = [k for k in shop.kits_by_course.get(course, []) if _kit_ok(shop, shopper, k, day.month)]
    return kits[int(rng.integers(len(kits)))]["slug"] if kits else None


def demo_campaign_days(
    start: date, days: int, *, seed: int = 7, every: int = 17, length: int = 3
) -> list[tuple[date, date]]:
    """Irregular promotion windows (first and last day) about every `every` days: a calendar for
    `simulate_orders(campaign_days=…)` and for the store's campaigns table."""
    rng = np.random.default_rng([seed, _FOLLOWUP_STREAM, 1])
    windows, offset = [], int(rng.integers(5, every))
    while offset + length <= days:
        first = start + timedelta(days=offset)
        windows.append((first, first + timedelta(days=length - 1)))
        offset += length + int(rng.integers(every - 6, every + 7))
    return windows


def campaign_dates(windows: Iterable[tuple[date, date]]) -> set[date]:
    """Every day inside the (first, last) windows."""
    return {first + timedelta(days=n) for first, last in windows for n in range((last - first).days + 1)}


def store_campaigns(store: Store, windows: Iterable[tuple[date, date]], *, prefix: str = "demo-promo") -> int:
    """Record promotion windows as campaigns (Beijing days stored as UTC instants); idempotent on slug."""
    inserted = 0
    with store.transaction() as db:
        for first, last in windows:
            starts = datetime(first.year, first.month, first.day) - timedelta(hours=8)
            ends = datetime(last.year, last.month, last.day, 23, 59, 59) - timedelta(hours=8)
            cursor = db.conn.execute(
                """INSERT OR IGNORE INTO campaigns (slug, name, channel, starts_at, ends_at)
                   VALUES (?, ?, 'promo', ?, ?)""",
                [
                    f"{prefix}-{first:%Y%m%d}",
                    f"限时特惠 {first:%m/%d}–{last:%m/%d}",
                    f"{starts:%Y-%m-%dT%H:%M:%S}.000Z",
                    f"{ends:%Y-%m-%dT%H:%M:%S}.000Z",
                ],
            )
            inserted += cursor.rowcount
    return inserted


def store_orders(store: Store, orders: Iterable[SimulatedOrder], *, source: str = "simulated") -> int:
    """Insert demo users, orders and order items in one transaction; returns the number of new orders.

    Idempotent on external_id: an order already in the store is skipped with its items.
    """
    inserted = 0
    with store.transaction() as db:
        conn = db.conn
        for order in orders:
            conn.execute(
                "INSERT OR IGNORE INTO users (id, first_name) VALUES (?, ?)",
                [order.user_id, f"演示顾客{order.user_id % 100_000}"],
            )
            cursor = conn.execute(
                """INSERT OR IGNORE INTO orders (external_id, user_id, total_cents, source, created_at)
                   VALUES (?, ?, ?, ?, ?)""",
                [order.external_id, order.user_id, order.total_cents, source, order.created_at],
            )
            if cursor.rowcount != 1:
                continue
            merged: dict[str, list[int]] = {}
            for slug, quantity, price in order.items:  # order_items is keyed by (order, slug)
                line = merged.setdefault(slug, [0, price])
                line[0] += quantity
            conn.executemany(
                "INSERT INTO order_items (order_id, item_slug, quantity, price_cents) VALUES (?, ?, ?, ?)",
                [(cursor.lastrowid, slug, q, p) for slug, (q, p) in merged.items()],
            )
            inserted += 1
    return inserted
