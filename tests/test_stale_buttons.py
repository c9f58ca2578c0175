"""Issue 15: old buttons after /forget. Every button is checked against who the customer is now, in one
middleware: a forgotten customer's old buttons get 「这条消息已过期」 and nothing else, and /forget
revokes the codes they were issued (through the real dispatcher polling the fake Bot API)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakebot import FakeBotAPI
from tests.hardening_helpers import polling
from xianke.bot_wiring import BotRuntime

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
UID = 915_000_001


async def say(api: FakeBotAPI, runtime: BotRuntime, text: str) -> None:
    target = runtime.stats.processed + 1
    api.push_message(UID, text, first_name="旧按钮")
    await runtime.stats.wait_processed(target, timeout=30)


async def press(api: FakeBotAPI, runtime: BotRuntime, data: str, message_id: int) -> str:
    target = runtime.stats.processed + 1
    update = api.push_callback(UID, data, message_id)
    await runtime.stats.wait_processed(target, timeout=30)
    return str(api.callback_answers.get(update["callback_query"]["id"], {}).get("text", ""))


def card_buttons(api: FakeBotAPI) -> list[tuple[str, int]]:
    """(callback_data, message_id) of every button the bot ever showed this customer."""
    return [
        (button["callback_data"], message["message_id"])
        for message in api.sent_messages(UID)
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
        for button in row if "callback_data" in button
    ]


async def test_a_forgotten_customer_presses_old_buttons_and_nothing_happens(tmp_path: Path) -> None:
    async with polling(tmp_path) as (api, runtime):
        store = runtime.stores[1]
        await say(api, runtime, "/start")
        await say(api, runtime, "零基础想学几道家常川菜")
        coupon = next((d, m) for d, m in card_buttons(api) if d.startswith("c:cpn:"))
        await press(api, runtime, *coupon)
        [code] = [r[0] for r in store.db.execute("SELECT code FROM coupons WHERE user_id = ?", [UID])]
        await say(api, runtime, "/forget")
        api.click_button(UID, "确定删除")
        await runtime.stats.wait_processed(runtime.stats.processed + 1, timeout=30)
        assert store.scalar("SELECT count(*) FROM users WHERE id = ?", [UID]) == 0
        assert store.scalar("SELECT status FROM coupons WHERE code = ?", [code]) == "revoked"

        old = [b for b in card_buttons(api) if b[0].split(":", 1)[0] in {"c", "m", "q", "o", "l", "h", "fg"}]
        presses = ([coupon] * 4 + old * 10)[:10]
        coupons = store.scalar("SELECT count(*) FROM coupons")
        events = store.scalar("SELECT count(*) FROM events")
        sent = len(api.sent_messages(UID))
        answers = [await press(api, runtime, data, message_id) for data, message_id in presses]
        assert answers == ["这条消息已过期，重新发一句想找的吧～"] * 10
        assert store.scalar("SELECT count(*) FROM coupons") == coupons
        assert store.scalar("SELECT count(*) FROM events") == events
        assert store.scalar("SELECT count(*) FROM users WHERE id = ?", [UID]) == 0  # not re-created
        assert len(api.sent_messages(UID)) == sent  # a toast, no new message
        assert runtime.stats.errors == []

        # Coming back with /start is a fresh start: the buttons from before still belong to the past.
        await asyncio.sleep(1.1)  # Telegram message dates are whole seconds; so is the comparison
        await say(api, runtime, "/start")
        assert await press(api, runtime, *coupon) == "这条消息已过期，重新发一句想找的吧～"
        assert store.scalar("SELECT count(*) FROM coupons") == coupons
