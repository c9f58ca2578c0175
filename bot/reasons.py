"""Recommendation reasons, exclusions and notes: codes from recsys rendered in Chinese or English.

recsys returns `Reason(code, params)` and `Excluded` records; nothing below the bot writes a
customer-facing sentence, so an English customer never reads a Chinese reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.texts import ALLERGEN_EN
from core.domain import LEVEL_ZH, format_price
from recsys.constraints import Constraint
from recsys.recommender import Excluded, Reason

LEVEL_EN = {"beginner": "beginner-friendly", "intermediate": "for cooks with some practice", "advanced": "advanced"}
DIET_EN = {"vegan": "vegan", "vegetarian": "vegetarian", "halal": "halal", "no_spicy": "not spicy", "low_sugar": "low sugar",
           "keto": "keto", "low_purine": "low purine", "pregnancy": "pregnancy-safe", "pork": "pork", "beef": "beef",
           "lamb": "lamb", "chicken": "chicken", "alcohol": "alcohol", "meat": "meat"}
WHO_EN = {"孩子": "your child", "儿子": "your son", "女儿": "your daughter", "宝宝": "your baby", "小孩": "your child", "娃": "your child",
          "老人": "the elders", "老公": "your husband", "老婆": "your wife", "媳妇": "your wife", "家人": "your family",
          "家里人": "your family", "爸妈": "your parents", "父母": "your parents"}
KIND_EN = {"course": "course", "kit": "kit", "ingredient": "ingredient"}


def constraint_label(c: Constraint, lang: str) -> str:
    if lang != "en":
        if c.kind == "allergen":
            return f"{c.label}过敏" if c.label not in ("无麸质", "乳糖不耐") else c.label
        return f"不吃{c.label}" if c.kind == "avoid" else c.label
    if c.kind == "allergen":
        return f"{ALLERGEN_EN.get(c.value, c.value).lower()} allergy"
    if c.kind == "avoid":
        return f"no {DIET_EN.get(c.value, c.label)}"
    return DIET_EN.get(c.value, c.label)


def _reason(r: Reason, lang: str) -> str:
    p: dict[str, Any] = r.params
    zh = lang != "en"
    match r.code:
        case "uses_yours":
            return f"用上你家里的{'、'.join(p['names'])}" if zh else f"uses your {', '.join(p['names'])}"
        case "mentioned":
            return f"包含你提到的「{p['name']}」" if zh else f"has the {p['name']} you asked about"
        case "keywords":
            return "关键词与你的问题吻合" if zh else "matches your words"
        case "closest":
            return "与你描述的需求最相近" if zh else "closest to what you described"
        case "safe_for":
            return f"不含你忌口的（{'、'.join(p['labels'])}）" if zh else "fits what you can't eat"
        case "diet":
            return f"符合{'、'.join(p['tags'])}饮食" if zh else "fits your diet"
        case "level":
            return {"beginner": "零基础也能跟上", "intermediate": "适合有基础的你进阶", "advanced": "高阶进修"}[p["level"]] if zh else LEVEL_EN[p["level"]]
        case "within_budget":
            budget = format_price(p["budget_cents"])
            if p.get("bundle"):
                return f"课程加食材包在{budget}预算内" if zh else f"course plus kit within {budget}"
            return f"在{budget}预算内" if zh else f"within your {budget} budget"
        case "liked_similar":
            return "和你喜欢或买过的内容相似" if zh else "like things you liked or bought"
        case "course_kit":
            return f"配套课程《{p['course']}》" if zh else f"goes with the course 《{p['course']}》"
        case "out_of_stock":
            return "暂时缺货，可到货提醒" if zh else "out of stock for now"
        case "pair_recipes":
            dishes = "、".join(p["dishes"])
            return f"{p['n']} 道菜谱一起用：{dishes}" if zh else f"used together in {p['n']} recipe(s): {dishes}"
        case "pair_orders":
            return f"{p['share']:.0%} 买{p['name']}的订单也买了它" if zh else f"{p['share']:.0%} of orders with {p['name']} include it"
        case "out_of_season":
            return "非当季" if zh else "out of season"
        case "kit_covers":
            return f"一次买齐{p['name']}和搭配食材" if zh else f"everything for {p['name']} in one box"
    return "和你的问题相关" if zh else "related to your question"


def render_reasons(reasons: Iterable[Reason], lang: str) -> str:
    return ("；" if lang != "en" else "; ").join(_reason(r, lang) for r in reasons)


def render_exclusion(e: Excluded, lang: str) -> str:
    """Why one item was left out: 「川菜入门：家常四大名菜（用到花生）」."""
    if e.constraint is None:
        return f"超出{format_price(e.budget_cents or 0)}预算" if lang != "en" else f"over the {format_price(e.budget_cents or 0)} budget"
    because = "、".join(e.because) if lang != "en" else ", ".join(e.because)
    if lang != "en":
        return f"用到{because}" if because else constraint_label(e.constraint, lang)
    return f"contains {because}" if because else constraint_label(e.constraint, lang)


def exclusion_line(excluded: Sequence[Excluded], constraints: Sequence[Constraint], lang: str) -> str | None:
    """One short line: what was left out for which constraint, e.g.
    「按“孩子花生过敏”已排除：川菜入门（用到花生）等 2 项」."""
    if not excluded:
        return None
    used = list(dict.fromkeys(constraint_label(e.constraint, lang) if e.constraint else ("预算" if lang != "en" else "budget") for e in excluded))
    who = next((c.who for c in constraints if c.who and c.source == "message"), None)
    first = excluded[0]
    if lang != "en":
        whose = f"{who}" if who else ""
        more = f"等 {len(excluded)} 项" if len(excluded) > 1 else ""
        return f"已按「{whose}{'、'.join(used)}」为你排除：{first.title}（{render_exclusion(first, lang)}）{more}"
    whose = f" for {WHO_EN.get(who, who)}" if who else ""
    more = f" and {len(excluded) - 1} more" if len(excluded) > 1 else ""
    return f"Left out{whose} ({', '.join(used)}): {first.title} ({render_exclusion(first, lang)}){more}"


def note(message: str | None, params: dict[str, Any], constraints: Sequence[Constraint], lang: str) -> str | None:
    """The header note for a message code from RecommendResult, or None for a plain answer."""
    zh = lang != "en"
    labels = "、".join(dict.fromkeys(constraint_label(c, lang) for c in constraints)) if zh else ", ".join(
        dict.fromkeys(constraint_label(c, lang) for c in constraints))
    match message:
        case "nothing_fits":
            if zh:
                return f"抱歉，按你的要求（{labels or '预算'}）目前没有合适的课程或食材包，我们不会推荐不符合的东西。可以换个菜系或放宽预算再问我，或点「人工客服」。"
            return f"Sorry, nothing in the catalog fits ({labels or 'budget'}) right now, and we won't suggest anything that doesn't. Try another cuisine or budget, or ask our staff."
        case "level_relaxed":
            return "同级别的课程不多，这些也可以看看：" if zh else "Few courses at that level; these are close:"
        case "pairing":
            return f"{params['name']}的好搭档：" if zh else f"Good partners for {params['name']}:"
        case "fridge":
            names = "、".join(params["names"]) if zh else ", ".join(params["names"])
            return f"用你家里的{names}，可以做这些：" if zh else f"With your {names}, you could make:"
    return None


def level_label(level: str, lang: str) -> str:
    return LEVEL_ZH.get(level, level) if lang != "en" else LEVEL_EN.get(level, level)


def kind_label(kind: str, lang: str) -> str:
    return {"course": "课程", "kit": "食材包", "ingredient": "食材"}.get(kind, kind) if lang != "en" else KIND_EN.get(kind, kind)
