"""/campaigns (the list with status and counts) and /campaign <slug> (details, link, latest estimates).
/campaign without an argument starts the creation wizard."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import Chat, Message, User

from bot.dialogue import Customer, DialogueService
from bot.marketer import wizard
from bot.marketer.access import MarketerConfig
from bot.marketer.desk import CampaignReport, Turn, details, overview
from bot.texts import Html, Texts
from commerce.campaigns import CHANNELS, Campaign, CampaignError, deep_link
from core.domain import format_price
from core.logging import log_event

log = logging.getLogger(__name__)
TELEGRAM_TEXT_LIMIT = 4096


def status_key(campaign: Campaign, now: datetime) -> str:
    if campaign.starts_at is not None and now < campaign.starts_at:
        return "mk_status_scheduled"
    if campaign.ends_at is not None and now > campaign.ends_at:
        return "mk_status_ended"
    return "mk_status_running"


async def on_campaigns(
    message: Message, bot: Bot, event_chat: Chat, event_from_user: User, texts: Texts, dialogue: DialogueService,
    marketer_config: MarketerConfig, customer: Customer | None = None,
) -> None:
    turn = Turn.of(bot, event_chat, event_from_user, texts, dialogue, marketer_config, customer)
    rows = await turn.on_store(overview)
    if not rows:
        await turn.say("mk_list_empty")
        return
    now = turn.now()
    lines = [
        turn.text(
            "mk_list_line", name=c.name, slug=c.slug, status=Html(turn.text(status_key(c, now))),
            channel=CHANNELS.get(c.channel, c.channel), entrants=s["entrants"], treatment=s["treatment"],
            holdout=s["holdout"], issued=s["coupons_issued"], redeemed=s["coupons_redeemed"],
            orders=s["attributed_orders"],
        )
        for c, s in rows
    ]
    shown = _whole_lines(lines)  # never cut inside a line: its HTML tags must stay balanced
    await turn.say("mk_list", n=len(shown), lines=Html("\n".join(shown)))


async def on_campaign(
    message: Message, command: CommandObject, state: FSMContext, bot: Bot, event_chat: Chat,
    event_from_user: User, texts: Texts, dialogue: DialogueService, marketer_config: MarketerConfig,
    customer: Customer | None = None, campaign_report: CampaignReport | None = None,
) -> None:
    turn = Turn.of(bot, event_chat, event_from_user, texts, dialogue, marketer_config, customer)
    slug = (command.args or "").strip().split()[0] if (command.args or "").strip() else ""
    if not slug:
        await wizard.start(turn, state)
        return
    found = await turn.on_store(details, slug)
    if found is None:
        await turn.say("mk_not_found", slug=slug[:64])
        return
    campaign, stats, stored = found
    link = await _link(turn, campaign)
    await turn.say(
        "mk_details", name=campaign.name, status=Html(turn.text(status_key(campaign, turn.now()))),
        description=campaign.describe_zh(), entries=stats["entries"], entrants=stats["entrants"],
        treatment=stats["treatment"], holdout=stats["holdout"], issued=stats["coupons_issued"],
        redeemed=stats["coupons_redeemed"], orders=stats["attributed_orders"],
        revenue=format_price(int(stats["attributed_revenue_cents"] or 0)), link=link or "—",
    )
    fresh = await _fresh_report(campaign, campaign_report)
    if fresh:
        await turn.say("mk_estimates", text=_fit(fresh))
    elif stored and (sentences := stored_sentences(stored)):
        await turn.say("mk_estimates_stored", when=str(stored.get("computed_at", ""))[:16], text=_fit(sentences))
    else:
        await turn.say("mk_no_estimates")


async def _fresh_report(campaign: Campaign, campaign_report: CampaignReport | None) -> str | None:
    """The injected estimator (jobs, wired by the composition root) runs on its own thread: an
    estimate takes seconds and must not hold up customers on the dialogue's worker thread."""
    if campaign_report is None:
        return None
    try:
        return await asyncio.to_thread(campaign_report, campaign.campaign_id)
    except Exception as exc:  # fall back to the stored report rather than fail the whole answer
        log_event(log, "campaign report failed", logging.WARNING, campaign=campaign.slug, error=repr(exc)[:300])
        return None


def stored_sentences(report: dict[str, Any]) -> str:
    lines = [f"• {e['sentence_zh']}" for e in report.get("estimates", []) if e.get("sentence_zh")]
    lines += [f"（{note}）" for note in report.get("notes_zh", [])]
    return "\n".join(lines)


async def _link(turn: Turn, campaign: Campaign) -> str | None:
    username = await turn.bot_username()
    if not username:
        return None
    try:
        return deep_link(username, campaign.slug)
    except CampaignError:
        return None


def _whole_lines(lines: list[str], limit: int = TELEGRAM_TEXT_LIMIT - 400) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if sum(len(k) + 1 for k in kept) + len(line) > limit:
            break
        kept.append(line)
    return kept


def _fit(text: str, limit: int = TELEGRAM_TEXT_LIMIT - 400) -> str:
    """Leave room for the template around it; Telegram refuses messages over 4096 characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def get_router() -> Router:
    router = Router(name="marketer.campaigns")
    router.message.register(on_campaigns, Command("campaigns"))
    router.message.register(on_campaign, Command("campaign"))
    return router
