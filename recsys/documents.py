"""Catalog rows → retrievable documents: one text for the encoder, tokens for BM25, facts for filters."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.domain import LEVEL_ZH, ItemKind
from core.repos.catalog import CatalogRepository
from recsys.facts import Contradiction, Facts, combined, contradictions, ingredient_facts

# FAISS ids are store row ids with the item kind in the high digits, so one index can hold
# every kind while ids stay traceable to their table row.
KIND_BASE = {ItemKind.COURSE: 1_000_000_000, ItemKind.INGREDIENT: 2_000_000_000, ItemKind.KIT: 3_000_000_000}
KIND_ZH = {ItemKind.COURSE: "课程", ItemKind.INGREDIENT: "食材", ItemKind.KIT: "食材包"}


@dataclass
class ItemDoc:
    id: int
    slug: str
    kind: ItemKind
    title: str
    text: str  # what the encoder reads (passage)
    keywords: str  # what BM25 reads (title, aliases, tags, ingredients)
    price_cents: int
    cuisine: str = ""
    category: str = ""
    level: str | None = None
    diet_tags: list[str] = field(default_factory=list)
    allergens: set[str] = field(default_factory=set)
    season: list[int] = field(default_factory=list)
    in_stock: bool = True
    course_slug: str | None = None
    ingredient_names: list[str] = field(default_factory=list)
    summary: str = ""
    ingredient_slugs: frozenset[str] = frozenset()
    facts: Facts = field(default_factory=Facts)  # derived from ingredients (recsys.facts), never typed

    @property
    def content_hash(self) -> str:
        return hashlib.sha1(self.text.encode("utf-8")).hexdigest()[:16]


def build_documents(repo: CatalogRepository) -> list[ItemDoc]:
    ingredients = {row["slug"]: row for row in repo.ingredients()}
    courses = repo.courses()
    kits = repo.kits()
    recipe_lines: dict[str, list[str]] = {}
    for line in repo.lines("recipe_ingredients"):
        recipe_lines.setdefault(line["owner"], []).append(line["ingredient"])
    kit_lines: dict[str, list[str]] = {}
    for line in repo.lines("kit_items"):
        kit_lines.setdefault(line["owner"], []).append(line["ingredient"])
    course_ingredients: dict[str, list[str]] = {}
    course_dishes: dict[str, list[str]] = {}
    for recipe in repo.recipes():
        if recipe.get("course"):
            course_ingredients.setdefault(recipe["course"], []).extend(recipe_lines.get(recipe["slug"], []))
            course_dishes.setdefault(recipe["course"], []).append(recipe["title"])

    def names(slugs: list[str]) -> list[str]:
        return list(dict.fromkeys(ingredients[s]["name"] for s in slugs if s in ingredients))

    def allergens(slugs: list[str]) -> set[str]:
        return {a for s in slugs if s in ingredients for a in ingredients[s]["allergens"]}

    facts = {slug: ingredient_facts(row) for slug, row in ingredients.items()}

    docs: list[ItemDoc] = []
    for c in courses:
        used = list(dict.fromkeys(course_ingredients.get(c["slug"], [])))
        dishes = course_dishes.get(c["slug"], [])
        level = LEVEL_ZH.get(c["level"], "")
        text = (
            f"{c['title']}（{c['cuisine']}课程，{level}）。{c['summary']} "
            f"菜品：{'、'.join(dishes)}。标签：{'、'.join(c['tags'] + c['diet_tags'])}。"
            f"课程大纲：{'；'.join(c['outline'][:6])}"
        )
        keywords = " ".join([c["title"], c["cuisine"], *c["tags"], *c["diet_tags"], *dishes, *names(used), level, "课程"])
        docs.append(
            ItemDoc(
                id=KIND_BASE[ItemKind.COURSE] + c["id"], slug=c["slug"], kind=ItemKind.COURSE, title=c["title"],
                text=text, keywords=keywords, price_cents=c["price_cents"], cuisine=c["cuisine"],
                level=c["level"], diet_tags=c["diet_tags"], allergens=allergens(used),
                ingredient_names=names(used), summary=c["summary"], ingredient_slugs=frozenset(used),
                facts=combined(used, facts, [c["title"], *dishes]),
            )
        )
    for i in ingredients.values():
        aliases = i["aliases"]
        text = f"{i['name']}（{i['category']}，{i['unit']}）。{'、'.join(aliases)}。{i['description']}"
        keywords = " ".join([i["name"], *aliases, i["category"], "食材"])
        docs.append(
            ItemDoc(
                id=KIND_BASE[ItemKind.INGREDIENT] + i["id"], slug=i["slug"], kind=ItemKind.INGREDIENT,
                title=i["name"], text=text, keywords=keywords, price_cents=i["price_cents"],
                allergens=set(i["allergens"]), season=i["season"], category=i["category"], in_stock=i["stock"] > 0,
                ingredient_names=[i["name"], *aliases], summary=i["description"],
                ingredient_slugs=frozenset({i["slug"]}), facts=facts[i["slug"]],
            )
        )
    for k in kits:
        used = kit_lines.get(k["slug"], [])
        text = f"{k['title']}（食材包，{k['servings']}人份）。{k['description']} 包含：{'、'.join(names(used))}。"
        keywords = " ".join([k["title"], *k["diet_tags"], *names(used), "食材包", "套餐"])
        docs.append(
            ItemDoc(
                id=KIND_BASE[ItemKind.KIT] + k["id"], slug=k["slug"], kind=ItemKind.KIT, title=k["title"],
                text=text, keywords=keywords, price_cents=k["price_cents"], diet_tags=k["diet_tags"],
                allergens=allergens(used), course_slug=k.get("course"),
                in_stock=all(ingredients[s]["stock"] > 0 for s in used if s in ingredients),
                ingredient_names=names(used), summary=k["description"], ingredient_slugs=frozenset(used),
                facts=combined(used, facts, [k["title"]]),
            )
        )
    return docs


def tag_contradictions(docs: list[ItemDoc]) -> list[Contradiction]:
    """Courses and kits whose hand-written diet tags their own ingredients contradict."""
    return contradictions((d.slug, d.diet_tags, d.facts) for d in docs if d.kind != ItemKind.INGREDIENT)


def food_words(docs: list[ItemDoc]) -> set[str]:
    """Dish and ingredient names for jieba's user dictionary, so 麻婆豆腐 stays one token."""
    words: set[str] = set()
    for doc in docs:
        words.add(doc.title)
        words.update(doc.ingredient_names)
    return {w for w in words if 1 < len(w) <= 12}
