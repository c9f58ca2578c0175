"""Shared fixtures for the bot tests: the real recsys over a copied catalog DB, the real dispatcher
polling the fake Bot API server, and small helpers to talk to it like a user would.

Import the fixtures into a test module with `from tests.bot_fixtures import *`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher

from bot.dialogue import DialogueService
from bot.middlewares import BotStats
from bot.retry import RetryAfterMiddleware, install_request_middlewares
from bot.runners import build_dispatcher, run_polling
from core.repos import CatalogRepository, CouponRepository, EventRepository, UserRepository
from core.store import Store
from nlp.dialogue import MessageClassifier
from recsys.catalog_io import load_shipped
from recsys.service import RecsysService
from tests.conftest import MODELS_DIR
from tests.fakebot import FakeBotAPI

__all__ = [
    "BotEnv",
    "RunningBot",
    "bot_env",
    "bot_template_db",
    "build_env",
    "buttons",
    "running_bot",
]

# The FAISS index is cached by content hash next to the models, so only the first run embeds the catalog.
INDEX_DIR = MODELS_DIR.parent / "index-tests"


def buttons(message: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Inline buttons of a Bot API message dict, row by row."""
    markup = (message or {}).get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


@pytest.fixture(scope="session")
def bot_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the shipped demo catalog, copied by each module that needs one."""
    path = tmp_path_factory.mktemp("bot-template") / "template.db"
    store = Store(path)
    load_shipped(CatalogRepository(store))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path


@dataclass
class BotEnv:
    db_path: Path
    store: Store
    recsys: RecsysService
    dialogue: DialogueService
    stores: list[Store] = field(default_factory=list)

    def open_store(self) -> Store:
        """A second connection (the event-loop side: FSM state, processed update ids)."""
        store = Store(self.db_path)
        self.stores.append(store)
        return store

    def close(self) -> None:
        self.dialogue.close()
        for store in [*self.stores, self.store]:
            store.close()


def build_env(template: Path, folder: Path, embedder: Any) -> BotEnv:
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "bot.db"
    shutil.copy(template, db_path)
    store = Store(db_path)
    recsys = RecsysService(store, embedder, INDEX_DIR)
    events = EventRepository(store)
    dialogue = DialogueService(
        recsys, UserRepository(store), events, CouponRepository(store, events), MessageClassifier(embedder)
    )
    return BotEnv(db_path, store, recsys, dialogue)


@pytest.fixture(scope="module")
def bot_env(bot_template_db: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[BotEnv]:
    env = build_env(bot_template_db, tmp_path_factory.mktemp("bot"), embedder)
    yield env
    env.close()


@dataclass
class RunningBot:
    api: FakeBotAPI
    bot: Bot
    dp: Dispatcher
    stats: BotStats

    async def say(self, user: int, text: str, *, replies: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
        """Send a message as `user`; wait until it is processed; return the bot's new messages to them."""
        before = len(self.api.sent_messages(user))
        target = self.stats.processed + 1
        self.api.push_message(user, text, **kwargs)
        await self.stats.wait_processed(target, timeout=20)
        new = self.api.sent_messages(user)[before:]
        assert len(new) >= replies, f"expected {replies} replies to {text[:30]!r}, got {new}"
        return new

    async def send(self, user: int, **kwargs: Any) -> list[dict[str, Any]]:
        """Push any message (media, raw fields) and wait for it to be processed."""
        before = len(self.api.sent_messages(user))
        target = self.stats.processed + 1
        self.api.push_message(user, **kwargs)
        await self.stats.wait_processed(target, timeout=20)
        return self.api.sent_messages(user)[before:]

    async def push(self, update: dict[str, Any]) -> None:
        target = self.stats.processed + 1
        self.api.push_raw(update)
        await self.stats.wait_processed(target, timeout=20)

    async def press(self, user: int, label: str, *, message_id: int | None = None) -> dict[str, Any]:
        """Press the button whose label contains `label`; returns the callback answer (toast)."""
        since = self.api.call_count
        target = self.stats.processed + 1
        update = self.api.click_button(user, label, message_id=message_id)
        await self.stats.wait_processed(target, timeout=20)
        query_id = update["callback_query"]["id"]
        await self.api.wait_for(
            "answerCallbackQuery", lambda c: c.params.get("callback_query_id") == query_id, since=since
        )
        return self.api.callback_answers.get(query_id, {})

    async def callback(self, user: int, data: str, message_id: int | None = None) -> dict[str, Any]:
        """Push raw callback data (forged or stale) on the user's last bot message."""
        target = self.stats.processed + 1
        update = self.api.push_callback(user, data, message_id)
        await self.stats.wait_processed(target, timeout=20)
        return update


@contextlib.asynccontextmanager
async def running_bot(
    env: BotEnv, api: FakeBotAPI | None = None, *, retry: RetryAfterMiddleware | None = None, **dispatcher_kwargs: Any
) -> AsyncIterator[RunningBot]:
    """The real runner (`run_polling` → Dispatcher.start_polling) against the fake Bot API server,
    with the production session middlewares (429 waits, stale callback answers; `retry` overrides
    the retry middleware, e.g. to record waits instead of sleeping).

    Pass `api` to keep one fake server across two dispatchers (a restart); otherwise a fresh one.
    """
    async with contextlib.AsyncExitStack() as stack:
        if api is None:
            api = await stack.enter_async_context(FakeBotAPI())
            # A fresh fake server numbers updates from 100001 again: forget ids seen by earlier tests.
            env.store.db.execute("DELETE FROM processed_updates")
        bot = api.make_bot()
        install_request_middlewares(bot, retry=retry)
        stats = BotStats()
        # Scripted users tap faster than people; the throttling test sets real limits explicitly.
        dispatcher_kwargs.setdefault("throttle_rate", 1_000)
        dispatcher_kwargs.setdefault("throttle_callback_rate", 1_000)
        dp = build_dispatcher(env.dialogue, env.open_store(), stats=stats, **dispatcher_kwargs)
        task = asyncio.create_task(run_polling(bot, dp, handle_signals=False, polling_timeout=5))
        try:
            await api.wait_for_poll(timeout=10)
            yield RunningBot(api, bot, dp, stats)
        finally:
            await dp.stop_polling()
            await task
