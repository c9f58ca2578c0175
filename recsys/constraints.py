"""Hard constraints — allergens, diets, 不吃X — read from a message or a profile, checked on facts.

A constraint never relaxes. Each is a set of allergens, facts (`recsys.facts`: meat, pork, alcohol,
spicy, …) and ingredient slugs that an item must not contain; `violation` says which ingredient
breaks it, so the reply can say 「川菜入门课里用到花生，已为你排除」.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.domain import ALLERGENS
from recsys.facts import DIET_BREAKERS, Facts

# Words for each allergen of core.domain.ALLERGENS; 海鲜 covers fish, crustaceans and shellfish,
# 坚果 also peanuts (people who say "nuts" rarely mean "but peanuts are fine").
ALLERGEN_WORDS: dict[str, tuple[str, ...]] = {
    "花生": ("花生", "peanut"),
    "坚果": ("坚果", "核桃", "腰果", "杏仁", "松子", "榛子", "tree nut", "nut"),
    "乳制品": ("乳制品", "乳糖", "牛奶", "奶制品", "奶油", "黄油", "奶酪", "芝士", "酸奶", "奶", "lactose", "dairy", "milk", "butter", "cheese"),
    "鸡蛋": ("鸡蛋", "蛋类", "蛋", "egg"),
    "大豆": ("大豆", "黄豆", "豆制品", "豆腐", "soy"),
    "小麦/麸质": ("麸质", "小麦", "面筋", "面粉", "gluten", "wheat"),
    "鱼类": ("鱼类", "鱼", "fish"),
    "甲壳类": ("甲壳", "虾", "蟹", "龙虾", "shrimp", "prawn", "crab", "crustacean", "lobster"),
    "贝类": ("贝类", "贝", "蛤", "蚝", "牡蛎", "扇贝", "花甲", "shellfish", "clam", "oyster", "mussel", "scallop"),
    "芝麻": ("芝麻", "sesame"),
}
_ALLERGEN_BY_LENGTH = sorted(((w, a) for a, ws in ALLERGEN_WORDS.items() for w in ws), key=lambda wa: -len(wa[0]))
SEAFOOD_WORDS = ("海鲜", "水产", "海产", "seafood")
GROUP_ALLERGENS = {"海鲜": ("鱼类", "甲壳类", "贝类"), "蛋奶": ("鸡蛋", "乳制品"), "坚果": ("坚果", "花生")}
# Diet code → (words that state it without a negation, label shown back).
DIET_WORDS: dict[str, tuple[tuple[str, ...], str]] = {
    "vegan": (("纯素", "全素", "vegan", "蛋奶都不吃", "蛋奶不吃", "不吃蛋奶", "植物基"), "纯素"),
    "vegetarian": (("素食", "吃素", "素菜", "素的", "蛋奶素", "不吃肉", "不吃荤", "斋", "vegetarian", "meatless", "no meat"), "素食"),
    "halal": (("清真", "穆斯林", "伊斯兰", "回族", "halal", "muslim"), "清真"),
    "no_spicy": (("不吃辣", "不能吃辣", "不要辣", "不辣", "怕辣", "不太能吃辣", "吃不了辣", "微辣都不", "not spicy", "no spicy", "non-spicy", "mild"), "不吃辣"),
    "low_sugar": (("低糖", "控糖", "无糖", "少糖", "糖尿病", "血糖", "low sugar", "sugar free", "sugar-free", "diabetic"), "低糖"),
    "keto": (("生酮", "低碳水", "断碳", "keto", "low carb", "low-carb"), "生酮"),
    "low_purine": (("痛风", "低嘌呤", "嘌呤", "尿酸", "gout", "purine"), "低嘌呤"),
    "pregnancy": (("孕期", "怀孕", "孕妇", "备孕", "pregnan"), "孕期"),
}
DIET_LABEL = {code: label for code, (_, label) in DIET_WORDS.items()}
# A saved profile stores labels (素食, 清真 …); onboarding's own words map onto the same codes.
_PROFILE_DIET = {**{label: code for code, label in DIET_LABEL.items()}, "不吃辣": "no_spicy", "控糖": "low_sugar", "无麸质": "gluten"}
# 不吃X where X is a group rather than one ingredient.
FACT_WORDS: dict[str, tuple[tuple[str, ...], str]] = {
    "pork": (("猪肉", "猪", "pork"), "猪肉"),
    "beef": (("牛肉", "beef"), "牛肉"),
    "lamb": (("羊肉", "lamb", "mutton"), "羊肉"),
    "chicken": (("鸡肉", "chicken"), "鸡肉"),
    "alcohol": (("酒", "alcohol", "wine"), "酒"),
    "meat": (("肉", "荤", "meat"), "肉"),
}
WHO_WORDS = ("孩子", "儿子", "女儿", "宝宝", "小孩", "娃", "老人", "爸爸", "妈妈", "爸妈", "父母", "公公", "婆婆", "老公",
             "老婆", "媳妇", "太太", "家人", "家里人", "朋友", "my son", "my daughter", "my wife", "my husband", "my kid")
_NEG_BEFORE = re.compile(r"不吃|不能吃|吃不了|不要|不含|不用|不放|不加|别放|忌口|忌|戒|不碰|不沾|避开|避免|无(?=[^\s]{1,4})|不喝|不敢吃"
                         r"|\bno\b|without|avoid|can't eat|cannot eat|don't eat|free of|allergic to", re.I)
_NEG_AFTER = re.compile(r"过敏|不耐|都不吃|不吃|不能吃|吃不了|-free|\s?free\b|\s?allergy|\s?allergic", re.I)
_EXCEPT = re.compile(r"除了(.{1,8}?)(?:以外|之外)?(?:都|其他|别的)(?:都)?(?:能|可以)?吃")
_CLAUSE = re.compile(r"[，,。.!！?？；;、\s]|但|想|要学|的课|有没有|推荐|能不能|可以")


@dataclass(frozen=True)
class Constraint:
    kind: str  # "allergen" | "diet" | "avoid"
    value: str  # allergen name, diet code or avoided fact/ingredient
    label: str  # the customer's own word, shown back: 花生 / 清真 / 香菜
    allergens: frozenset[str] = frozenset()
    facts: frozenset[str] = frozenset()
    slugs: frozenset[str] = frozenset()
    who: str | None = None
    source: str = "message"  # or "profile"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def savable(self) -> bool:
        """Profiles hold allergens and diet labels; a 不吃X on one ingredient stays with the message."""
        return self.source == "message" and (self.kind == "allergen" or (self.kind == "diet" and self.value in DIET_LABEL))

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "value": self.value, "label": self.label, "who": self.who, "source": self.source}


def allergen_constraint(allergen: str, label: str, who: str | None, *, source: str = "message") -> Constraint | None:
    if allergen not in ALLERGENS:
        return None
    return Constraint("allergen", allergen, label, allergens=frozenset({allergen}), who=who, source=source)


def diet_constraint(value: str, *, who: str | None = None, source: str = "message") -> Constraint | None:
    code = _PROFILE_DIET.get(value, value)
    if code == "gluten":
        return allergen_constraint("小麦/麸质", "无麸质", who, source=source)
    if code not in DIET_BREAKERS:
        return None
    return Constraint("diet", code, DIET_LABEL.get(code, value), facts=DIET_BREAKERS[code], who=who, source=source)


def violation(constraint: Constraint, facts: Facts, ingredient_slugs: Iterable[str] = (), names: dict[str, str] | None = None) -> list[str]:
    """The ingredient names in an item that break the constraint (empty: the item is fine)."""
    found: list[str] = []
    for allergen in constraint.allergens:
        found.extend(facts.allergens.get(allergen, []))
    for fact in constraint.facts:
        found.extend(facts.flags.get(fact, []))
    if constraint.slugs:
        found.extend((names or {}).get(s, s) for s in ingredient_slugs if s in constraint.slugs)
    return list(dict.fromkeys(found))


def _who(clause: str) -> str | None:
    return next((w for w in WHO_WORDS if w in clause), None)


def _windows(text: str) -> list[tuple[str, str]]:
    """(window, clause) pairs: the words a negation or 过敏 governs, and the clause around them."""
    out = []
    for match in _NEG_AFTER.finditer(text):
        before = text[: match.start()]
        cut = max((m.end() for m in _CLAUSE.finditer(before)), default=0)
        clause_start = max(0, cut - 8)
        out.append((before[cut:][-14:], text[clause_start : match.end()]))
    for match in _NEG_BEFORE.finditer(text):
        after = text[match.end() :]
        stop = _CLAUSE.search(after.lstrip())
        span = after.lstrip()[: stop.start() if stop else 12][:12]
        out.append((span, text[max(0, match.start() - 8) : match.end() + len(span)]))
    # 除了X都能吃 ("everything but X") is a constraint; 除了X还能怎么做 ("besides X") is not.
    for match in _EXCEPT.finditer(text):
        out.append((match.group(1), text[max(0, match.start() - 8) : match.end()]))
    return [(w, c) for w, c in out if w.strip()]


def _in_window(window: str, ingredients_in: Callable[..., list[str]], who: str | None) -> list[Constraint]:
    found: list[Constraint] = []
    rest = window
    for group, allergens in GROUP_ALLERGENS.items():
        if group in rest or (group == "海鲜" and any(w in rest for w in SEAFOOD_WORDS)):
            found += [c for a in allergens if (c := allergen_constraint(a, group, who))]
            for word in (group, *SEAFOOD_WORDS):
                rest = rest.replace(word, " ")
    for code, (words, _label) in FACT_WORDS.items():
        hit = next((w for w in words if w in rest and not (code == "meat" and re.search(r"[猪牛羊鸡鸭鱼]肉|肉[末片丝馅]", rest))), None)
        if hit:
            if code == "meat":
                found.append(Constraint("diet", "vegetarian", DIET_LABEL["vegetarian"], facts=DIET_BREAKERS["vegetarian"], who=who))
            else:
                found.append(Constraint("avoid", code, words[0], facts=frozenset({code}), who=who))
            rest = rest.replace(hit, " ")
    slugs = ingredients_in(rest, min_len=2)
    for word, allergen in _ALLERGEN_BY_LENGTH:  # longest first: "shellfish" is not "fish"
        if word in rest:
            found.append(allergen_constraint(allergen, word, who))  # type: ignore[arg-type]
            rest = rest.replace(word, " ")
    if slugs and not found:
        found.append(Constraint("avoid", ",".join(slugs), window.strip()[:12], slugs=frozenset(slugs), who=who))
    return [c for c in found if c is not None]


def find_constraints(lowered: str, ingredients_in: Callable[..., list[str]]) -> list[Constraint]:
    """Every hard constraint the (normalised, lower-cased) message states, de-duplicated."""
    found: list[Constraint] = []
    for code, (words, label) in DIET_WORDS.items():
        hit = next((w for w in words if w in lowered), None)
        if hit and not (code == "vegetarian" and any(c.value == "vegan" for c in found)):
            if code == "no_spicy" or not re.search(rf"不(?:是|要){re.escape(hit)}", lowered):
                start = lowered.find(hit)
                found.append(Constraint("diet", code, label, facts=DIET_BREAKERS[code], who=_who(lowered[max(0, start - 8) : start + 8])))
    if "乳糖不耐" in lowered or "lactose intoleran" in lowered:
        found.append(allergen_constraint("乳制品", "乳糖不耐", _who(lowered)))  # type: ignore[arg-type]
    if "无麸质" in lowered or "gluten free" in lowered or "gluten-free" in lowered:
        found.append(allergen_constraint("小麦/麸质", "无麸质", _who(lowered)))  # type: ignore[arg-type]
    for window, clause in _windows(lowered):
        if "辣" in window and not any(c.value == "no_spicy" for c in found):
            found.append(Constraint("diet", "no_spicy", DIET_LABEL["no_spicy"], facts=DIET_BREAKERS["no_spicy"], who=_who(clause)))
            continue
        found += _in_window(window, ingredients_in, _who(clause))
    unique: dict[str, Constraint] = {}
    for c in found:
        if c is not None and c.key not in unique:
            unique[c.key] = c
    return list(unique.values())
