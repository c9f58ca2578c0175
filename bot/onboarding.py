"""Onboarding steps and the profile they build: options, parsing, summaries (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.texts import (
    BUDGET_OPTIONS_YUAN,
    DIET_OPTIONS,
    LEVEL_OPTIONS,
    Texts,
    allergen_label,
    taste_label,
)
from core.domain import ALLERGENS, Profile, format_price
from recsys.intent import chinese_number

STEPS: tuple[str, ...] = ("diet", "taste", "level", "allergens", "budget")
MULTI_STEPS = frozenset({"taste", "allergens"})
STATE_PREFIX = "onboarding:"
# Cuisines offered as tastes, in this order, when the catalog has courses for them.
DEFAULT_TASTES: tuple[str, ...] = (
    "川菜", "湘菜", "粤菜", "江浙菜", "家常菜", "西餐", "日料", "韩餐", "东南亚菜", "烘焙", "甜品饮品", "火锅",
)
MAX_BUDGET_YUAN = 100_000
MAX_BUDGET_REPLY_CHARS = 12  # longer text in the budget step is a normal message


def state_of(step: str) -> str:
    return f"{STATE_PREFIX}{step}"


def step_of(state: str | None) -> str | None:
    if state and state.startswith(STATE_PREFIX):
        step = state.removeprefix(STATE_PREFIX)
        return step if step in STEPS else None
    return None


def next_step(step: str) -> str | None:
    index = STEPS.index(step)
    return STEPS[index + 1] if index + 1 < len(STEPS) else None


@dataclass(frozen=True)
class StepOptions:
    """The labelled choices of one step; `values[i]` is what choosing button i stores."""

    labels: list[str]
    values: list[Any]


def options(step: str, lang: str, t: Texts, tastes: Sequence[str]) -> StepOptions:
    if step == "diet":
        return StepOptions(
            [t.label(lang, o) for o in DIET_OPTIONS] + [t(lang, "btn_any")], [o[0] for o in DIET_OPTIONS] + [None]
        )
    if step == "taste":
        return StepOptions([taste_label(lang, x) for x in tastes], list(tastes))
    if step == "level":
        return StepOptions([t.label(lang, o) for o in LEVEL_OPTIONS], [o[0] for o in LEVEL_OPTIONS])
    if step == "allergens":
        return StepOptions([allergen_label(lang, a) for a in ALLERGENS], list(ALLERGENS))
    if step == "budget":
        labels = [t(lang, "budget_within", price=format_price(y * 100)) for y in BUDGET_OPTIONS_YUAN]
        return StepOptions([*labels, t(lang, "btn_any")], [y * 100 for y in BUDGET_OPTIONS_YUAN] + [None])
    raise ValueError(f"unknown onboarding step {step!r}")


def apply_single(draft: dict[str, Any], step: str, value: Any) -> None:
    """Store a single-choice answer in the draft profile dict."""
    if step == "diet":
        draft["diet"] = [value] if value else []
    elif step == "level":
        draft["level"] = value
    elif step == "budget":
        draft["budget_cents"] = value


def multi_field(step: str) -> str:
    return {"taste": "taste", "allergens": "allergens"}[step]


_DIGITS = re.compile(r"\d{1,7}(?:\.\d{1,2})?")
_CN_RUN = re.compile(r"[一二两三四五六七八九十百千]+")
_NO_LIMIT = re.compile(r"不限|无所谓|随便|都行|any|no limit", re.I)


def parse_budget(text: str) -> int | bool | None:
    """Cents for "200" / "两百块" / "500以内"; None for 不限; False when it is not a budget at all."""
    if _NO_LIMIT.search(text):
        return None
    match = _DIGITS.search(text)
    yuan: float | None = float(match.group(0)) if match else None
    if yuan is None:
        run = _CN_RUN.search(text)
        yuan = float(chinese_number(run.group(0)) or 0) if run else None
    if not yuan or yuan <= 0 or yuan > MAX_BUDGET_YUAN:
        return False
    return round(yuan * 100)


def looks_numeric(text: str) -> bool:
    """Short replies that try to be a number (so a bad budget gets a hint, not a recommendation)."""
    return len(text) <= 12 and bool(_DIGITS.search(text) or _CN_RUN.fullmatch(text.strip("元块钱以内左右 ")))


def summary(profile: Profile, lang: str, t: Texts) -> str:
    none = t(lang, "sum_none")
    diet_names = {o[0]: t.label(lang, o) for o in DIET_OPTIONS}
    level_names = {o[0]: t.label(lang, o) for o in LEVEL_OPTIONS}
    diet = "、".join(diet_names.get(d, d) for d in profile.diet) or none
    taste = "、".join(taste_label(lang, x) for x in profile.taste) or none
    level = level_names.get(profile.level or "", none)
    allergens = "、".join(allergen_label(lang, a) for a in profile.allergens) or t(lang, "sum_no_allergens")
    budget = (
        t(lang, "budget_within", price=format_price(profile.budget_cents))
        if profile.budget_cents
        else t(lang, "sum_any_budget")
    )
    lines = [
        t(lang, "sum_diet", value=diet),
        t(lang, "sum_taste", value=taste),
        t(lang, "sum_level", value=level),
        t(lang, "sum_allergens", value=allergens),
        t(lang, "sum_budget", value=budget),
    ]
    return "\n".join(lines)


def is_empty(profile: Profile) -> bool:
    return not (profile.diet or profile.taste or profile.level or profile.allergens or profile.budget_cents)
