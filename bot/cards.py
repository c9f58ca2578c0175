"""Recommendation cards as Telegram HTML text (no I/O: the bench renders with this too)."""

from __future__ import annotations

from html import escape

from core.domain import format_price

KIND_BADGE = {"course": "🎓 课程", "ingredient": "🥬 食材", "kit": "📦 食材包"}
KIND_BADGE_EN = {"course": "🎓 Course", "ingredient": "🥬 Ingredient", "kit": "📦 Kit"}
REASON_LABEL = {"zh": "为什么推荐", "en": "Why"}


def card_text(index: int, kind: str, title: str, price_cents: int, reason: str, summary: str = "", lang: str = "zh") -> str:
    badge = (KIND_BADGE_EN if lang == "en" else KIND_BADGE).get(kind, kind)
    lines = [f"<b>{index}. {escape(title)}</b>  {badge} · {format_price(price_cents)}"]
    if summary:
        lines.append(escape(summary[:120]))
    lines.append(f"💡 {REASON_LABEL.get(lang, '为什么推荐')}：{escape(reason)}")
    return "\n".join(lines)
