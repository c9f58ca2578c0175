"""One parsed query: the customer's message understood once, read by every later stage.

`QueryParser.parse(text)` normalises (NFKC, Traditional → Simplified), appends Chinese for English
food words, segments with the catalog's jieba dictionary and reads, with transparent rules, what
the message asks for (item kinds, pairing target(s), a fridge list, cuisine, level, budget, servings,
occasion, equipment, time) and the hard constraints it states, with negation and the family member
they are for: 「孩子花生过敏」「不吃辣」「蛋奶都不吃」「家里信伊斯兰教」 "allergic to peanuts".
The dialogue layer, the recommender and pairing all consume the returned `ParsedQuery`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.domain import ItemKind
from nlp.text import Tokenizer, expand_english, normalize
from recsys.constraints import Constraint, allergen_constraint, diet_constraint, find_constraints
from recsys.intent import DIET_SYNONYMS, LEVEL_SYNONYMS, parse_budget

MAX_QUERY_CHARS = 256  # the encoder reads ≤ 512 tokens; a longer query only adds noise and latency

_COURSE = re.compile(r"课|学|教|教程|怎么做|如何做|做法|自己做|自己能做|在家做|能做吗|能做什么|可以做什么|老师|入门|零基础|新手|小白|进阶|技巧|培训|\blearn|course|class|lesson|how to", re.I)
_KIT = re.compile(r"食材包|料理包|材料包|套餐|一套|全套|半成品|懒人包|配好|礼盒|\bkit\b|meal kit|box", re.I)
_INGREDIENT = re.compile(r"买|新鲜|到货|产地|现货|几斤|一斤|两斤|多少钱一|有卖|哪里有|\bbuy|fresh|do you (?:sell|have)", re.I)
_CHEAPEST = re.compile(r"最便宜|最实惠|最划算|cheapest", re.I)
_NO_EQUIPMENT = re.compile(r"(?:没有|没|不用|no|without)\s*(?:a |an )?(烤箱|空气炸锅|微波炉|电饭煲|oven|air fryer|microwave)", re.I)
_CHEAP = re.compile(r"便宜|实惠|划算|性价比|省钱|学生党|cheap|budget|affordable", re.I)
_PAIR_CUE = re.compile(
    r"配什么|配啥|配点啥|配点什么|搭配|搭什么|搭啥|(?:和|跟|同|与)(?:什么|啥)|配菜|比较搭|怎么搭"
    r"|一起(?:炖|炒|煮|做|烧|蒸)|炖什么|炒什么|煲什么|煮什么"
    r"|what goes (?:well )?with|goes well with|pair(?:s|ing)? with|what (?:should|can) i (?:cook|make) with",
    re.I,
)
_FRIDGE_CUE = re.compile(r"家里有|冰箱|剩了|剩下|手上有|手头有|现有|能做什么|能做啥|做什么|做啥|做点啥|i have|leftover", re.I)
_BUNDLE = re.compile(r"课加食材|课和食材|课程加食材|连课带|课\+食材|课程\+食材|加食材|含食材|带食材|课.{0,4}一起|course (?:and|\+|with) (?:a )?kit", re.I)
_SERVINGS = re.compile(r"(\d{1,2}|[一二两三四五六七八九十]{1,2})\s*(?:个人|人份|口人|人|口)")
_SOLO = re.compile(r"一个人|一人食|独居|单身|自己吃|for one|just me", re.I)
_MINUTES = re.compile(r"(\d{1,3})\s*(?:分钟|min)")
_OCCASIONS: dict[str, re.Pattern[str]] = {
    "new_year": re.compile(r"年夜饭|过年|春节|年货|除夕|团圆"),
    "gift": re.compile(r"送礼|礼盒|礼物|送长辈|gift", re.I),
    "birthday": re.compile(r"生日|birthday", re.I),
    "party": re.compile(r"聚餐|派对|聚会|请客|宴客|party", re.I),
    "lunchbox": re.compile(r"带饭|便当|午餐|上班族|lunch", re.I),
    "late_night": re.compile(r"夜宵|宵夜"),
    "festival": re.compile(r"中秋|端午|元宵|情人节|七夕"),
}
_EQUIPMENT = {"空气炸锅": ("空气炸锅", "air fryer"), "电饭煲": ("电饭煲", "电饭锅", "rice cooker"), "烤箱": ("烤箱", "oven"),
              "微波炉": ("微波炉", "microwave"), "电磁炉": ("电磁炉",)}
_CUISINE_ALIASES = {"四川": "川菜", "广东": "粤菜", "广式": "粤菜", "湖南": "湘菜", "日本": "日料", "日式": "日料", "japanese": "日料",
                    "韩国": "韩餐", "韩式": "韩餐", "korean": "韩餐", "泰国": "东南亚菜", "泰式": "东南亚菜", "越南": "东南亚菜",
                    "thai": "东南亚菜", "sichuan": "川菜", "cantonese": "粤菜", "意大利": "西餐", "西式": "西餐", "法式": "烘焙",
                    "东北": "东北菜", "上海": "江浙菜", "杭州": "江浙菜", "本帮": "江浙菜", "新疆": "西北面食", "陕西": "西北面食",
                    "云南": "云南菜", "贵州": "贵州菜", "baking": "烘焙", "bake": "烘焙", "甜品": "甜品饮品", "甜汤": "甜品饮品",
                    "糖水": "甜品饮品", "dessert": "甜品饮品"}
# Everyday words for a cut or a kind that the catalog names more precisely (a pairing anchor).
GENERIC_INGREDIENTS = {"牛肉": "ingredient/beef-flank", "鸡肉": "ingredient/chicken-thigh", "猪肉": "ingredient/pork-tenderloin",
                       "鸡腿": "ingredient/chicken-thigh", "鱼": "ingredient/sea-bass", "豆腐": "ingredient/firm-tofu"}
_TASTE_DIETS = ("低脂", "高蛋白", "清淡", "儿童", "辣")  # soft: they say what would be nicer, never filter
_CN_SMALL = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


@dataclass
class ParsedQuery:
    raw: str
    text: str  # normalised (and clipped)
    expanded: str  # text + Chinese for English food words: what the retrievers read
    tokens: list[str] = field(default_factory=list)
    kinds: dict[ItemKind, float] = field(default_factory=dict)  # soft preference per item kind
    pairing: bool = False  # the message asks what goes with something
    pairing_targets: list[str] = field(default_factory=list)  # ingredient slugs, in message order
    fridge: list[str] = field(default_factory=list)  # ≥ 2 ingredients the customer has at home
    cuisine: str | None = None
    level: str | None = None
    budget_cents: int | None = None
    budget_scope: str = "item"  # "bundle": the budget is for a course and its kit together
    prefers_cheap: bool = False
    cheapest: bool = False  # 最便宜: price decides, not a small nudge
    servings: int | None = None
    occasion: str | None = None
    equipment: list[str] = field(default_factory=list)
    missing_equipment: list[str] = field(default_factory=list)  # 没有烤箱
    minutes: int | None = None
    tastes: list[str] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return any(ch.isalnum() for ch in self.text)

    @property
    def pairing_target(self) -> str | None:
        return self.pairing_targets[0] if self.pairing_targets and not self.fridge else None

    @property
    def looks_like_shopping(self) -> bool:
        return bool(
            self.kinds or self.pairing or self.fridge or self.cuisine or self.level or self.tastes or self.constraints
            or self.budget_cents is not None or self.prefers_cheap or self.occasion or self.equipment
            or self.minutes is not None or self.servings is not None or self.missing_equipment
        )

    @property
    def labels(self) -> list[str]:
        """The intent vocabulary: course / ingredient / kit / pairing / fridge / budget / diet / level."""
        names = [k.value for k, w in sorted(self.kinds.items(), key=lambda kv: -kv[1]) if w > 0]
        if self.pairing_target:
            names.insert(0, "pairing")
        if self.fridge:
            names.insert(0, "fridge")
        if self.budget_cents is not None or self.prefers_cheap:
            names.append("budget")
        if self.tastes or any(c.kind == "diet" for c in self.constraints):
            names.append("diet")
        if any(c.kind != "diet" for c in self.constraints):
            names.append("constraint")
        if self.level:
            names.append("level")
        return names

    def to_json(self) -> dict[str, object]:
        return {
            "labels": self.labels, "pairing_targets": self.pairing_targets, "fridge": self.fridge, "cuisine": self.cuisine,
            "level": self.level, "budget_cents": self.budget_cents, "budget_scope": self.budget_scope,
            "servings": self.servings, "occasion": self.occasion, "equipment": self.equipment, "minutes": self.minutes,
            "constraints": [c.to_json() for c in self.constraints],
        }


class QueryParser:
    """Rules over one vocabulary: ingredient names/aliases → slugs and the catalog's cuisines."""

    def __init__(self, ingredient_names: Mapping[str, str] = {}, cuisines: Iterable[str] = (), tokenizer: Tokenizer | None = None):
        # Longest first, so 五花肉 wins over 肉; single characters (蛋, 鸡) only inside constraint windows.
        names = {**GENERIC_INGREDIENTS, **{normalize(n).lower(): s for n, s in ingredient_names.items() if n}}
        self.names = sorted(names.items(), key=lambda kv: -len(kv[0]))
        self.cuisines = sorted({c for c in cuisines if c}, key=len, reverse=True)
        self.tokenizer = tokenizer

    def ingredients_in(self, text: str, *, min_len: int = 2) -> list[str]:
        """Slugs of the ingredient names in `text`, non-overlapping, longest first, in text order."""
        taken = [False] * len(text)
        found: list[tuple[int, str]] = []
        for name, slug in self.names:
            if len(name) < min_len:
                continue
            start = text.find(name)
            while start >= 0:
                end = start + len(name)
                if not any(taken[start:end]):
                    taken[start:end] = [True] * len(name)
                    found.append((start, slug))
                start = text.find(name, end)
        return list(dict.fromkeys(slug for _, slug in sorted(found)))

    def parse(self, raw: str, *, profile_constraints: Iterable[Constraint] = ()) -> ParsedQuery:
        text = normalize(raw or "")[:MAX_QUERY_CHARS]
        lowered = text.lower()
        expanded = expand_english(text)
        q = ParsedQuery(raw=raw, text=text, expanded=expanded)
        if self.tokenizer is not None:
            q.tokens = self.tokenizer.tokens_with_chars(expanded)
        self._kinds(q, lowered)
        self._pairing(q, lowered, expanded.lower())
        q.budget_cents = parse_budget(lowered)
        q.budget_scope = "bundle" if q.budget_cents is not None and _BUNDLE.search(lowered) else "item"
        q.prefers_cheap = bool(_CHEAP.search(lowered))
        q.cheapest = bool(_CHEAPEST.search(lowered))
        q.level = next((lv for lv, words in LEVEL_SYNONYMS.items() if any(w in lowered for w in words)), None)
        q.cuisine = self._cuisine(lowered)
        q.servings = _servings(lowered)
        q.occasion = next((name for name, pattern in _OCCASIONS.items() if pattern.search(lowered)), None)
        missing = {m.group(1) for m in _NO_EQUIPMENT.finditer(lowered)}
        q.missing_equipment = [name for name, words in _EQUIPMENT.items() if missing & set(words)]
        q.equipment = [name for name, words in _EQUIPMENT.items() if any(w in lowered for w in words) and name not in q.missing_equipment]
        q.minutes = _minutes(lowered)
        q.constraints = find_constraints(lowered, self.ingredients_in)
        q.tastes = self._tastes(lowered, q.constraints)
        seen = {c.key for c in q.constraints}
        q.constraints += [c for c in profile_constraints if c.key not in seen]
        return q

    def _kinds(self, q: ParsedQuery, lowered: str) -> None:
        course = bool(_COURSE.search(lowered))
        if course:
            q.kinds[ItemKind.COURSE] = 1.0
        if _KIT.search(lowered):
            q.kinds[ItemKind.KIT] = 1.0
        if _INGREDIENT.search(lowered):
            q.kinds[ItemKind.INGREDIENT] = 0.5 if course else 1.0

    def _pairing(self, q: ParsedQuery, lowered: str, expanded: str) -> None:
        # English names arrive as Chinese appended at the end: the first one is the anchor.
        named = self.ingredients_in(lowered) or self.ingredients_in(expanded)[:1]
        cue = _PAIR_CUE.search(expanded)
        if cue:
            head = self.ingredients_in(lowered[: cue.start()])
            q.pairing = bool(head or named)
            q.pairing_targets = head or named
        fridge = _FRIDGE_CUE.search(expanded)
        if len(named) >= 2 and (fridge or cue):
            q.fridge = named
            q.pairing = False
        elif fridge and named and not cue and re.search(r"做什么|做啥|能做|做点啥|cook|make", lowered):
            q.pairing, q.pairing_targets = True, named
        if q.pairing or q.fridge:
            q.kinds.setdefault(ItemKind.INGREDIENT, 1.0)

    def _cuisine(self, lowered: str) -> str | None:
        for cuisine in self.cuisines:
            if cuisine.lower() in lowered:
                return cuisine
        return next((c for alias, c in _CUISINE_ALIASES.items() if alias in lowered), None)

    @staticmethod
    def _tastes(lowered: str, constraints: list[Constraint]) -> list[str]:
        no_spicy = any(c.key == "diet:no_spicy" for c in constraints)
        tastes = []
        for tag in _TASTE_DIETS:
            if tag == "辣" and no_spicy:
                continue
            if any(w in lowered for w in DIET_SYNONYMS.get(tag, (tag,))):
                tastes.append(tag)
        return tastes


def _servings(lowered: str) -> int | None:
    if _SOLO.search(lowered):
        return 1
    family = re.search(r"一家([二两三四五六七八])口", lowered)
    if family:
        return _CN_SMALL[family.group(1)]
    match = _SERVINGS.search(lowered)
    if not match:
        return None
    value = match.group(1)
    number = int(value) if value.isdigit() else sum(_CN_SMALL.get(ch, 0) for ch in value)
    return number if 0 < number <= 30 else None


def _minutes(lowered: str) -> int | None:
    if "半小时" in lowered or "half an hour" in lowered:
        return 30
    if re.search(r"十几分钟|十来分钟|一刻钟", lowered):
        return 15
    match = _MINUTES.search(lowered)
    return int(match.group(1)) if match else None


def profile_constraints(allergens: Iterable[str], diets: Iterable[str]) -> list[Constraint]:
    """A saved profile's allergens and diets as the same constraints a message states."""
    out = [allergen_constraint(a, a, None, source="profile") for a in allergens]
    out += [c for d in diets if (c := diet_constraint(d, source="profile")) is not None]
    return [c for c in out if c is not None]
