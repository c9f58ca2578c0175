"""The header card posted at the top of a ticket in the customer's forum topic.

It gives staff the context a good first answer needs without asking the customer again: who they
are, their language and taste profile, what the bot recommended lately, what they did, the coupons
they can still use, and how earlier tickets went. `gather` reads the store (run it on the dialogue's
worker thread); `render` is a pure function of what was gathered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from bot import onboarding
from bot.replies import TELEGRAM_TEXT_LIMIT
from bot.texts import Html, Texts
from core.domain import EventKind, format_price
from core.repos.tickets import Ticket, TicketRepository, parse_utc
from core.store import loads

if TYPE_CHECKING:
    from bot.dialogue import DialogueService

STAFF_LANG = "zh"  # the support team reads Chinese; every staff-facing line uses this catalog
RECENT_QUERIES = 3
RECENT_EVENTS = 6
# Staff-facing names of the behaviour events worth showing (queries appear as recommendations).
EVENT_LABELS = {
    EventKind.VIEW: "👀 看了",
    EventKind.CLICK: "👆 点了",
    EventKind.LIKE: "👍 喜欢",
    EventKind.DISLIKE: "👎 不喜欢",
    EventKind.NOT_INTERESTED: "🙅 不感兴趣",
    EventKind.PURCHASE: "🛒 买了",
    EventKind.REDEEM: "🎟 用券",
    EventKind.COUPON_ISSUED: "🎟 领券",
    EventKind.START_DEEPLINK: "🔗 从活动进入",
    EventKind.HANDOFF_REQUESTED: "👩‍💼 找人工",
}


@dataclass
class HeaderData:
    ticket: Ticket
    name: str = ""
    username: str | None = None
    language: str = "zh"
    profile: str = ""  # already-rendered, escaped summary lines
    recommendations: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    coupons: list[str] = field(default_factory=list)
    earlier_tickets: int = 0
    mean_rating: float | None = None
    recreated: bool = False


def _local(stamp: str | None, zone: tzinfo) -> str:
    if not stamp:
        return ""
    return parse_utc(stamp).astimezone(zone).strftime("%m-%d %H:%M")


def _title(dialogue: DialogueService, slug: str | None) -> str:
    if not slug:
        return ""
    try:
        doc = dialogue.recsys.recommender.by_slug.get(slug)
    except AttributeError:  # a recsys without a loaded catalog: show the slug
        doc = None
    return str(doc.title) if doc is not None else slug


def gather(
    dialogue: DialogueService, tickets: TicketRepository, ticket: Ticket, zone: tzinfo, *, recreated: bool = False
) -> HeaderData:
    """Everything the card shows, read in one go (blocking: call on the dialogue's worker thread)."""
    t = dialogue.t
    user = dialogue.users.get(ticket.user_id) or {}
    data = HeaderData(
        ticket,
        name=str(user.get("first_name") or ""),
        username=user.get("username"),
        language=str(user.get("language") or "zh"),
        recreated=recreated,
    )
    data.profile = onboarding.summary(dialogue.users.profile(ticket.user_id), STAFF_LANG, t)
    rows = dialogue.events.for_user(ticket.user_id, limit=80)
    for row in rows:
        payload: dict[str, Any] = loads(row["payload"], {}) or {}
        when = _local(row["created_at"], zone)
        if row["kind"] == EventKind.QUERY and payload.get("shown") and len(data.recommendations) < RECENT_QUERIES:
            titles = "、".join(_title(dialogue, slug) for slug in payload["shown"][:3])
            query = str(payload.get("text") or "")[:30]
            data.recommendations.append(f"{when} 「{query}」→ {titles}")
        elif row["kind"] in EVENT_LABELS and len(data.events) < RECENT_EVENTS:
            what = _title(dialogue, row["item_slug"]) or str(payload.get("reason") or payload.get("button") or "")
            data.events.append(f"{when} {EVENT_LABELS[EventKind(row['kind'])]} {what}".rstrip())
    for coupon in dialogue.coupons.list_for(ticket.user_id, include_used=False):
        if coupon["status"] != "issued":
            continue
        until = (coupon["expires_at"] or "")[:10]
        data.coupons.append(
            f"{coupon['code']} · 满{format_price(coupon['min_spend_cents'])}减{format_price(coupon['discount_cents'])}"
            + (f" · 至 {until}" if until else "")
        )
    earlier = [row for row in tickets.history(ticket.user_id, limit=50) if row["id"] != ticket.id]
    data.earlier_tickets = len(earlier)
    ratings = [int(row["rating"]) for row in earlier if row["rating"] is not None]
    data.mean_rating = round(sum(ratings) / len(ratings), 1) if ratings else None
    return data


def render(data: HeaderData, t: Texts) -> str:
    """The card as Telegram HTML (every customer-supplied part escaped by Texts)."""
    lang = STAFF_LANG
    ticket = data.ticket
    reason_key = f"sup_r_{ticket.reason}"
    reason = t(lang, reason_key) if reason_key in t.catalogs.get(lang, {}) else ticket.reason
    username = f" (@{data.username})" if data.username else ""
    language = t(lang, "sup_lang_en" if data.language == "en" else "sup_lang_zh")
    none = t(lang, "sup_h_none")

    def bullet(lines: list[str]) -> str:
        return "\n".join(f"• {line}" for line in lines) if lines else none

    parts = []
    if data.recreated:
        parts.append(t(lang, "sup_h_recreated"))
    parts += [
        t(lang, "sup_h_title", ticket=ticket.id, reason=reason),
        t(lang, "sup_h_user", name=data.name or "—", username=username, user_id=ticket.user_id, lang=language),
        "",
        t(lang, "sup_h_profile", summary=Html(data.profile)),
        t(lang, "sup_h_recs", lines=bullet(data.recommendations)),
        t(lang, "sup_h_events", lines=bullet(data.events)),
        t(lang, "sup_h_coupons", lines=bullet(data.coupons)),
        t(
            lang,
            "sup_h_history",
            count=data.earlier_tickets,
            rating=Html(t(lang, "sup_h_rating", mean=data.mean_rating)) if data.mean_rating is not None else "",
        ),
        "",
        t(lang, "sup_h_help"),
    ]
    text = "\n".join(parts)
    # Cut whole lines, never inside a tag, if a long history ever pushes the card past Telegram's limit.
    while len(text) > TELEGRAM_TEXT_LIMIT and "\n" in text:
        text = text.rsplit("\n", 1)[0]
    return text
