"""SQLiteStorage: aiogram FSM state in the fsm_state table, surviving a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.storage import SQLiteStorage
from core.store import Store
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, buttons, running_bot
from tests.fakebot import FakeBotAPI

pytestmark = pytest.mark.asyncio

KEY = StorageKey(bot_id=42, chat_id=7, user_id=7)


class Form(StatesGroup):
    name = State()


async def test_state_and_data_roundtrip(tmp_path: Path) -> None:
    store = Store(tmp_path / "fsm.db")
    storage = SQLiteStorage(store)
    assert await storage.get_state(KEY) is None and await storage.get_data(KEY) == {}
    await storage.set_state(KEY, Form.name)
    assert await storage.get_state(KEY) == "Form:name"
    await storage.set_data(KEY, {"q": "牛腩配什么", "shown": ["kit/a"], "n": 3})
    assert await storage.update_data(KEY, {"n": 4}) == {"q": "牛腩配什么", "shown": ["kit/a"], "n": 4}
    assert await storage.get_value(KEY, "q") == "牛腩配什么"
    other = StorageKey(bot_id=42, chat_id=8, user_id=8)
    assert await storage.get_state(other) is None  # keys are isolated
    await storage.set_state(KEY, None)
    assert await storage.get_state(KEY) is None and (await storage.get_data(KEY))["n"] == 4
    with pytest.raises(Exception, match="dict"):
        await storage.set_data(KEY, ["not", "a", "dict"])  # type: ignore[arg-type]
    await storage.close()
    store.close()

    reopened = FSMContext(SQLiteStorage(Store(tmp_path / "fsm.db")), KEY)
    assert (await reopened.get_data())["shown"] == ["kit/a"]
    await reopened.clear()
    assert await reopened.get_data() == {} and await reopened.get_state() is None


async def test_onboarding_step_survives_a_restart(bot_env: BotEnv) -> None:
    user = 7001
    bot_env.store.db.execute("DELETE FROM processed_updates")
    async with FakeBotAPI() as api:
        async with running_bot(bot_env, api=api) as first:
            await first.say(user, "/start")
            await first.press(user, "设置口味")
            await first.press(user, "素食")
            assert api.texts(user)[-1].startswith("2/5")
            await first.press(user, "川菜")  # half-way through a multi-select step
        # the process is gone: a new Dispatcher, a new connection, the same SQLite file
        async with running_bot(bot_env, api=api) as second:
            key = StorageKey(bot_id=second.bot.id, chat_id=user, user_id=user)
            assert await second.dp.storage.get_state(key) == "onboarding:taste"
            await second.press(user, "粤菜")
            assert {"✅ 川菜", "✅ 粤菜"} <= {b["text"] for b in buttons(api.last_message(user))}
            await second.press(user, "完成")
            assert api.texts(user)[-1].startswith("3/5")
            for label in ("进阶", "完成", "不限"):
                await second.press(user, label)
            assert "设置好了" in api.texts(user)[-1]
            assert second.stats.errors == []
    profile = bot_env.dialogue.users.profile(user)
    assert profile.diet == ["素食"] and profile.taste == ["川菜", "粤菜"] and profile.level == "advanced"
    assert profile.budget_cents is None
