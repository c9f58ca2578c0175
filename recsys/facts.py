"""Catalog facts derived from ingredients, never hand-typed: allergens and diet compatibility.

An ingredient's facts come from its row (allergens, category) and its name (pork, alcohol, chili,
sugar, purine, carbs); a recipe, kit or course has the union of its ingredients' facts (a course
through every recipe it teaches). Hand-written `diet_tags` are only checked against these facts:
`contradictions` lists the items whose tags say one thing and whose ingredients another, for
`xianke catalog import` and `xianke doctor`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SEAFOOD_ALLERGENS = frozenset({"鱼类", "甲壳类", "贝类"})
MEAT_CATEGORIES = frozenset({"肉类", "水产海鲜"})
# Fact names → what an ingredient's name says. Each pattern is checked on the ingredient name and aliases.
_PORK = re.compile(r"猪|五花|腊肠|腊肉|火腿|培根|午餐肉")
_ALCOHOL = re.compile(r"酒|味醂|醪糟|啤酒|朗姆|白兰地")
_CHILI = re.compile(r"辣|剁椒|泡椒|豆瓣|火锅底料|咖喱酱|冬阴功|小米椒|二荆条")
_ANIMAL_STOCK = re.compile(r"鸡汤|高汤|骨汤|牛油(?!果)|猪油|吉利丁|鱼露|蚝油|虾|木鱼花")
_HONEY = re.compile(r"蜂蜜|蜂蜡")
_SUGAR = re.compile(r"(?<![赤藓无高])糖(?!醇)|蜜|炼乳|豆沙|莲蓉|沙司|珍珠|糖浆")
_HIGH_PURINE = re.compile(r"毛肚|鸭血|(?<!牛)肝(?!菌)|腰子|鸡汤|高汤|火锅底料|干花菇|黄豆|啤酒|沙丁|凤尾|虾|蟹|(?<!贝)贝(?!贝)|蛤|蚝|鱿鱼|带鱼|鱼")
_STARCHY = re.compile(r"米|面|粉|饭|年糕|土豆|马铃薯|红薯|芋头|山药|南瓜|玉米|吐司|面包|饺子皮|馄饨皮|西米|粉圆|豆沙|莲蓉|红豆|绿豆|燕麦|香蕉|芒果|菠萝|红枣|桂圆")
_NOT_STARCHY = re.compile(r"小米辣|豆芽|泡打粉|琼脂|抹茶|花生米|油|酱|杏仁粉|扁桃仁粉|椰|米醋|寿司醋|胡椒粉|辣椒面|五香粉|咖喱粉|可可粉|抹茶粉|泡打粉|琼脂粉|孜然|花椒|虾米|米酒|鸡蛋|辣椒粉|香菇粉")
_BEEF = re.compile(r"牛(?!油果|肝菌|奶|蒡)|肥牛|毛肚")
_RAW_TITLE = re.compile(r"刺身|寿司|波奇|生腌|醉蟹|溏心")
_RAW_INGREDIENT = re.compile(r"刺身")

# Diet code → the facts that break it. One vocabulary shared with the query parser.
DIET_BREAKERS: dict[str, frozenset[str]] = {
    "vegetarian": frozenset({"meat"}),
    "vegan": frozenset({"meat", "egg", "dairy", "honey"}),
    "halal": frozenset({"pork", "alcohol"}),
    "no_spicy": frozenset({"spicy"}),
    "low_sugar": frozenset({"sugar"}),
    "keto": frozenset({"starchy", "sugar"}),
    "low_purine": frozenset({"high_purine"}),
    "pregnancy": frozenset({"alcohol", "raw"}),
}
# Hand tags that claim a diet: a tag that its ingredients contradict is reported.
TAG_CLAIMS: dict[str, str] = {"素食": "vegetarian", "纯素": "vegan", "清真": "halal", "低糖": "low_sugar", "生酮": "keto", "低嘌呤": "low_purine"}
TAG_FOR_DIET: dict[str, str] = {"vegetarian": "素食", "vegan": "纯素", "halal": "清真", "low_sugar": "低糖", "keto": "生酮", "low_purine": "低嘌呤"}


@dataclass
class Facts:
    """What an item contains: allergens plus named facts (meat, pork, alcohol, spicy, …), each with
    the ingredient names that cause it, so a reply can say 「用到花生」."""

    allergens: dict[str, list[str]] = field(default_factory=dict)  # allergen → ingredient names
    flags: dict[str, list[str]] = field(default_factory=dict)  # fact → ingredient names

    def add(self, other: Facts) -> None:
        for key, names in other.allergens.items():
            self.allergens.setdefault(key, []).extend(n for n in names if n not in self.allergens[key])
        for key, names in other.flags.items():
            self.flags.setdefault(key, []).extend(n for n in names if n not in self.flags[key])

    def breaks(self, diet: str) -> list[str]:
        """Ingredient names that break `diet` (empty: compatible)."""
        names: list[str] = []
        for fact in DIET_BREAKERS.get(diet, ()):
            names.extend(n for n in self.flags.get(fact, []) if n not in names)
        return names

    def compatible(self, diet: str) -> bool:
        return not self.breaks(diet)

    @property
    def diets(self) -> list[str]:
        return [d for d in DIET_BREAKERS if self.compatible(d)]


def ingredient_facts(row: Mapping[str, Any]) -> Facts:
    name = str(row.get("name", ""))
    names = " ".join([name, *(row.get("aliases") or [])])
    allergens = list(row.get("allergens") or [])
    category = str(row.get("category", ""))
    facts = Facts(allergens={a: [name] for a in allergens})
    flag = facts.flags.setdefault
    is_egg = "鸡蛋" in allergens and category == "禽蛋"
    if category in MEAT_CATEGORIES or (category == "禽蛋" and not is_egg) or SEAFOOD_ALLERGENS & set(allergens) or _ANIMAL_STOCK.search(name):
        flag("meat", []).append(name)
    checks = {
        "pork": _PORK.search(names) and category in {"肉类", "调味料", ""},
        "alcohol": _ALCOHOL.search(name),
        "spicy": _CHILI.search(name) and "不辣" not in name,
        "egg": "鸡蛋" in allergens,
        "dairy": "乳制品" in allergens,
        "honey": _HONEY.search(names),
        "sugar": _SUGAR.search(name) and category not in {"蔬菜", "肉类", "禽蛋", "水产海鲜"},
        "high_purine": _HIGH_PURINE.search(name) or category == "水产海鲜" or SEAFOOD_ALLERGENS & set(allergens),
        "starchy": (_STARCHY.search(name) and not _NOT_STARCHY.search(name)) or (category == "烘焙原料" and "粉" in name and not _NOT_STARCHY.search(name)),
        "raw": _RAW_INGREDIENT.search(name),
        "beef": category in {"肉类", "调味料"} and _BEEF.search(name),
        "lamb": category == "肉类" and "羊" in name,
        "chicken": (category == "禽蛋" and not is_egg and "鸡" in name) or "鸡汤" in name,
    }
    for fact, hit in checks.items():
        if hit:
            flag(fact, []).append(name)
    return facts


def combined(ingredient_slugs: Iterable[str], by_slug: Mapping[str, Facts], titles: Iterable[str] = ()) -> Facts:
    """An item's facts: the union of its ingredients', plus raw food when a dish title says so."""
    out = Facts()
    for slug in ingredient_slugs:
        if slug in by_slug:
            out.add(by_slug[slug])
    raw = [t for t in titles if _RAW_TITLE.search(t)]
    if raw:
        out.flags.setdefault("raw", []).extend(raw[:2])
    return out


@dataclass(frozen=True)
class Contradiction:
    slug: str
    tag: str
    because: list[str]

    def __str__(self) -> str:
        return f"{self.slug}: tagged {self.tag!r} but uses {'、'.join(self.because[:3])}"


def contradictions(items: Iterable[tuple[str, list[str], Facts]]) -> list[Contradiction]:
    """(slug, hand tags, derived facts) → the tags the ingredients contradict."""
    found = []
    for slug, tags, facts in items:
        for tag in tags:
            diet = TAG_CLAIMS.get(tag)
            if diet and (names := facts.breaks(diet)):
                found.append(Contradiction(slug, tag, names))
    return found
