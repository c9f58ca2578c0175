"""Composition for the customer bot: one App → DialogueService, Dispatcher, Bot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher

from bot.cart_dialogue import CartDialogue
from bot.dialogue import DialogueService
from bot.marketer import MarketerConfig
from bot.middlewares import BotStats
from bot.runners import build_dispatcher, make_bot
from bot.support import SupportService
from commerce.referrals import ReferralProgram, ReferralRules
from core.repos import CouponRepository, EventRepository, UserRepository
from core.settings import Settings
from core.store import Store
from nlp.dialogue import MessageClassifier
from xianke.app import App
from xianke.hardening import author_hasher, fsm_storage_kwargs
from xianke.metrics import install_metrics


class BotConfigError(RuntimeError):
    """A setting the bot needs is missing; the message names the variable to set."""


def build_dialogue(app: App, store: Store, *, index_dir: Path | None = None) -> DialogueService:
    """The dialogue over `store` (its worker-thread connection); loads the demo catalog if empty."""
    recsys = app.open_recsys(store, index_dir=index_dir)
    events = EventRepository(store)
    coupons = CouponRepository(store, events)
    dialogue = DialogueService(recsys, UserRepository(store), events, coupons, MessageClassifier(app.embedder))
    dialogue.referrals = ReferralProgram(store, coupons, ReferralRules.from_settings(app.settings), events=events)
    return dialogue


@dataclass
class BotRuntime:
    dialogue: DialogueService
    dispatcher: Dispatcher
    stats: BotStats
    stores: list[Store] = field(default_factory=list)

    def close(self) -> None:
        self.dialogue.close()
        for store in self.stores:
            store.close()


def build_runtime(
    app: App, db_path: Path | None = None, *, index_dir: Path | None = None, **dispatcher_kwargs: Any
) -> BotRuntime:
    """Two connections to one SQLite file: the dialogue's worker thread and the event loop (FSM, update ids)."""
    path = db_path or app.settings.database_path
    worker, loop_side = app.open_store(path), app.open_store(path)
    dialogue = build_dialogue(app, worker, index_dir=index_dir)
    stats = BotStats()
    dispatcher_kwargs.setdefault("marketer_config", marketer_config(app.settings))
    dispatcher_kwargs.setdefault("campaign_report", campaign_reporter(app, path))
    dispatcher_kwargs.setdefault("support", build_support(app.settings, dialogue))
    dispatcher_kwargs.setdefault("author_hasher", author_hasher(app.settings))  # /mydata, /forget
    token = app.settings.payment_provider_token
    dispatcher_kwargs.setdefault("payment_provider_token", token.get_secret_value() if token else None)
    dispatcher_kwargs.setdefault("cart", CartDialogue(
        dialogue, payments_enabled=token is not None, course_url_base=app.settings.course_url_base))
    for key, value in fsm_storage_kwargs(app.settings).items():  # Redis FSM when configured
        dispatcher_kwargs.setdefault(key, value)
    dispatcher = build_dispatcher(dialogue, loop_side, stats=stats, **dispatcher_kwargs)
    install_metrics(app.settings, dispatcher, path)
    return BotRuntime(dialogue, dispatcher, stats, [worker, loop_side])


def make_bot_from(settings: Settings) -> Bot:
    if settings.telegram_token is None:
        raise BotConfigError(
            "XIANKE_TELEGRAM_TOKEN is not set: create a bot with @BotFather and put "
            "XIANKE_TELEGRAM_TOKEN=123456:ABC… in .env (no token? try `xianke chat`)"
        )
    return make_bot(settings.telegram_token.get_secret_value(), settings.telegram_api_base)


def marketer_config(settings: Settings) -> MarketerConfig:
    """Who may use /campaign and /campaigns: XIANKE_MARKETER_CHAT_IDS (people and groups) and admins."""
    return MarketerConfig.from_ids(
        settings.marketer_chat_ids, settings.admin_user_ids, bot_username=settings.bot_username, zone=settings.zone
    )


def campaign_reporter(app: App, db_path: Path) -> Callable[[int], str | None]:
    """The bot's `campaign_report` (workflow data): a fresh estimate for /campaign <slug>, stored like the
    daily job's. The bot calls it on a worker thread, so it opens a connection of its own."""

    def campaign_report(campaign_id: int) -> str | None:
        from analytics.campaign_report import estimate_campaign

        store = app.open_store(db_path)
        try:
            return estimate_campaign(store, campaign_id, zone=app.settings.zone, save=True).summary_zh()
        finally:
            store.close()

    return campaign_report


def build_support(settings: Settings, dialogue: DialogueService) -> SupportService | None:
    """Live consultations need XIANKE_STAFF_CHAT_ID (a supergroup with Topics, the bot an admin who may
    manage topics). Without it /consult says online consultation is not available and 人工客服 is
    recorded as a handoff_requested event, as before."""
    if settings.staff_chat_id is None:
        return None
    dialogue.live_support = True
    return SupportService(dialogue, settings.staff_chat_id, admin_ids=settings.admin_user_ids, zone=settings.zone)
