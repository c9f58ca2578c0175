"""Vocabulary the query parser shares with onboarding: diet and level words, prices in words.

Rules are transparent to marketers and cheap (< 0.1 ms); the dense retriever covers the
paraphrases these patterns miss. `recsys.query` builds the parsed query from these.
"""

from __future__ import annotations

import re

_BUDGET = re.compile(
    r"(?:预算|不超过|不到|低于|少于|最多|以内|之内|¥|￥)?\s*(\d{1,5}(?:\.\d{1,2})?)\s*(?:块钱|块|元|rmb|RMB|yuan)?\s*(?:以内|之内|以下|左右)?"
)
_BUDGET_CONTEXT = re.compile(r"预算|不超过|不到|低于|少于|最多|以内|之内|以下|左右|块|元|¥|￥|rmb|yuan|under|below|less than|budget", re.I)
_ABOUT = re.compile(r"左右|上下|差不多|around|about", re.I)
ABOUT_MARGIN = 1.2  # "80块左右" is a budget with some give: up to 20% over

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


def parse_budget(text: str) -> int | None:
    """The budget a message states, in cents: 300以内 / 两百块 / 不超过一百五 / under 100 yuan."""
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
                margin = ABOUT_MARGIN if _ABOUT.search(window) else 1.0
                return round(value * 100 * margin)
    return None
