"""Composition for the customer bot: one App → DialogueService, Dispatcher, Bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher

from bot.dialogue import DialogueService
from bot.middlewares import BotStats
from bot.runners import build_dispatcher, make_bot
from core.repos import CouponRepository, EventRepository, UserRepository
from core.settings import Settings
from core.store import Store
from nlp.dialogue import MessageClassifier
from xianke.app import App


class BotConfigError(RuntimeError):
    """A setting the bot needs is missing; the message names the variable to set."""


def build_dialogue(app: App, store: Store, *, index_dir: Path | None = None) -> DialogueService:
    """The dialogue over `store` (its worker-thread connection); loads the demo catalog if empty."""
    recsys = app.open_recsys(store, index_dir=index_dir)
    events = EventRepository(store)
    return DialogueService(
        recsys, UserRepository(store), events, CouponRepository(store, events), MessageClassifier(app.embedder)
    )


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
    dispatcher = build_dispatcher(dialogue, loop_side, stats=stats, **dispatcher_kwargs)
    return BotRuntime(dialogue, dispatcher, stats, [worker, loop_side])


def make_bot_from(settings: Settings) -> Bot:
    if settings.telegram_token is None:
        raise BotConfigError(
            "XIANKE_TELEGRAM_TOKEN is not set: create a bot with @BotFather and put "
            "XIANKE_TELEGRAM_TOKEN=123456:ABC… in .env (no token? try `xianke chat`)"
        )
    return make_bot(settings.telegram_token.get_secret_value(), settings.telegram_api_base)
