"""What a Chinese query asks for: item kinds, pairing, budget, diet and level — rules, no model.

Rules are transparent to marketers and cheap (< 0.1 ms); the dense retriever covers the
paraphrases these patterns miss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.domain import ItemKind
from nlp.text import normalize

_COURSE = re.compile(r"课|学|教|教程|怎么做|如何做|做法|老师|入门|零基础|新手|小白|进阶|技巧|培训|learn|course|class", re.I)
_KIT = re.compile(r"食材包|料理包|套餐|一套|全套|半成品|懒人包|配好|kit", re.I)
_INGREDIENT = re.compile(r"买|新鲜|到货|产地|现货|几斤|一斤|多少钱一|有卖|哪里有|buy|fresh", re.I)
_PAIRING = re.compile(r"(.{1,12}?)\s*(?:配什么|配啥|搭配什么|搭配啥|和什么一起|跟什么一起|配什么菜|怎么搭配|搭什么)")
_BUDGET = re.compile(
    r"(?:预算|不超过|不到|低于|少于|最多|以内|之内|¥|￥)?\s*(\d{1,5}(?:\.\d{1,2})?)\s*(?:块钱|块|元|rmb|RMB)?\s*(?:以内|之内|以下|左右)?"
)
_BUDGET_CONTEXT = re.compile(r"预算|不超过|不到|低于|少于|最多|以内|之内|以下|左右|块|元|¥|￥|rmb", re.I)
_CHEAP = re.compile(r"便宜|实惠|划算|性价比|省钱|学生党")

DIET_SYNONYMS: dict[str, tuple[str, ...]] = {
    "素食": ("素食", "吃素", "素菜", "斋", "不吃肉", "vegetarian"),
    "纯素": ("纯素", "全素", "vegan", "不吃蛋奶"),
    "低脂": ("低脂", "减脂", "减肥", "瘦身", "刷脂", "轻食", "低卡", "清脂"),
    "高蛋白": ("高蛋白", "增肌", "健身", "蛋白质"),
    "低糖": ("低糖", "少糖", "无糖"),
    "控糖": ("控糖", "糖尿病", "血糖"),
    "无麸质": ("无麸质", "麸质过敏", "gluten"),
    "清淡": ("清淡", "少油", "少盐", "不油腻", "养胃"),
    "辣": ("辣", "麻辣", "香辣", "重口"),
    "儿童": ("儿童", "孩子", "宝宝", "小朋友", "辅食", "娃"),
}
LEVEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "beginner": ("零基础", "新手", "入门", "小白", "初学", "没下过厨", "简单", "beginner"),
    "intermediate": ("进阶", "提升", "有点基础", "中级"),
    "advanced": ("高阶", "专业", "大师", "开店", "高级", "advanced"),
}
MEAT_CATEGORIES = ("肉类", "禽蛋", "水产海鲜")


@dataclass
class QueryIntent:
    text: str
    kinds: dict[ItemKind, float] = field(default_factory=dict)  # soft preference per kind
    pairing_target: str | None = None
    budget_cents: int | None = None
    prefers_cheap: bool = False
    diet: list[str] = field(default_factory=list)
    level: str | None = None

    @property
    def labels(self) -> list[str]:
        """The issue's intent vocabulary: course / ingredient / pairing / kit / budget / diet (+ level)."""
        names = [k.value for k, w in sorted(self.kinds.items(), key=lambda kv: -kv[1]) if w > 0]
        if self.pairing_target:
            names.insert(0, "pairing")
        if self.budget_cents is not None or self.prefers_cheap:
            names.append("budget")
        if self.diet:
            names.append("diet")
        if self.level:
            names.append("level")
        return names


_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMBER = re.compile(r"[一二两三四五六七八九十百千]+")


def chinese_number(text: str) -> int | None:
    """两百 → 200, 一百五 → 150, 三十 → 30 (enough for prices people type)."""
    total, digit, last_unit = 0, None, 1
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            total += (digit if digit is not None else 1) * unit
            digit, last_unit = None, unit
        else:
            return None
    if digit is not None:
        total += digit * (last_unit // 10 if last_unit >= 10 else 1)  # 一百五 = 150
    return total or None


def _budget(text: str) -> int | None:
    for match in _CN_NUMBER.finditer(text):
        window = text[max(0, match.start() - 3) : match.end() + 3]
        value = chinese_number(match.group(0))
        if value and value >= 10 and _BUDGET_CONTEXT.search(window):
            text = text.replace(match.group(0), str(value), 1)
    for match in _BUDGET.finditer(text):
        window = text[max(0, match.start() - 4) : match.end() + 3]
        if _BUDGET_CONTEXT.search(window) and match.group(1):
            value = float(match.group(1))
            if 0 < value <= 100_000:
                return round(value * 100)
    return None


def detect_intent(query: str) -> QueryIntent:
    text = normalize(query)
    intent = QueryIntent(text=text)
    pairing = _PAIRING.search(text)
    if pairing:
        target = re.sub(r"^(请问|我想知道|想问下|想问|我有|家里有|买了)", "", pairing.group(1)).strip(" ，,。？?")
        intent.pairing_target = target or None
    if _COURSE.search(text):
        intent.kinds[ItemKind.COURSE] = 1.0
    if _KIT.search(text):
        intent.kinds[ItemKind.KIT] = 1.0
    if _INGREDIENT.search(text) or intent.pairing_target:
        intent.kinds[ItemKind.INGREDIENT] = 1.0 if not _COURSE.search(text) else 0.5
    intent.budget_cents = _budget(text)
    intent.prefers_cheap = bool(_CHEAP.search(text))
    lowered = text.lower()
    intent.diet = [tag for tag, words in DIET_SYNONYMS.items() if any(w in lowered for w in words)]
    if "纯素" in intent.diet and "素食" in intent.diet and not any(w in lowered for w in ("素食", "吃素", "素菜")):
        intent.diet.remove("素食")
    for level, words in LEVEL_SYNONYMS.items():
        if any(w in lowered for w in words):
            intent.level = level
            break
    return intent
