"""End to end: the real Dispatcher (long polling and webhook) against the fake Telegram Bot API."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from aiogram.types import Update
from aiohttp import ClientSession, web

from bot.runners import COMMANDS, make_webhook_app
from bot.texts import ZH
from core.store import loads
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, buttons, running_bot
from tests.fakebot import FakeBotAPI

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

USER = 5001


def item_ids(message: dict[str, Any], label: str = "👎") -> list[int]:
    """Catalog ids behind the cards of a recommendation message (from the 👎 buttons)."""
    return [int(b["callback_data"].rsplit(":", 1)[1]) for b in buttons(message) if label in b["text"]]


def events(env: BotEnv, user: int, kind: str) -> list[dict[str, Any]]:
    return env.store.query("SELECT * FROM events WHERE user_id = ? AND kind = ? ORDER BY id", [user, kind])


async def test_customer_journey(bot_env: BotEnv) -> None:
    env = bot_env
    env.store.db.execute("INSERT INTO campaigns (slug, name) VALUES ('spring_qr', '春季海报二维码')")
    campaign_id = env.store.scalar("SELECT id FROM campaigns WHERE slug = 'spring_qr'")
    async with running_bot(env) as rb:
        api = rb.api
        # start-up: webhook dropped first, command menu in both languages
        assert api.calls()[0].method == "deleteWebhook"
        assert [c["command"] for c in api.bot_commands({"type": "all_private_chats"}, "zh")] == [
            c for c, _ in COMMANDS["zh"]
        ]
        assert api.bot_commands({"type": "all_private_chats"}, "en")

        # 1. deep link from a campaign poster
        [welcome] = await rb.say(USER, "/start spring_qr", first_name="小美")
        assert "小美" in welcome["text"] and any("设置口味" in b["text"] for b in buttons(welcome))
        [entry] = events(env, USER, "start_deeplink")
        assert entry["campaign_id"] == campaign_id

        # 2. onboarding: diet, taste (multi), level, allergens (multi), budget
        await rb.press(USER, "设置口味")
        assert api.texts(USER)[-1].startswith("1/5")
        await rb.press(USER, "清淡")
        assert api.texts(USER)[-1].startswith("2/5")
        await rb.press(USER, "川菜")
        assert any(b["text"] == "✅ 川菜" for b in buttons(api.last_message(USER)))
        await rb.press(USER, "完成")
        await rb.press(USER, "零基础")
        await rb.press(USER, "花生")
        await rb.press(USER, "完成")
        assert api.texts(USER)[-1].startswith("5/5")
        await rb.press(USER, "¥500")
        assert "设置好了" in api.texts(USER)[-1]
        profile = env.dialogue.users.profile(USER)
        assert profile.diet == ["清淡"] and profile.taste == ["川菜"] and profile.level == "beginner"
        assert profile.allergens == ["花生"] and profile.budget_cents == 50_000

        # 3. free text → cards with buttons; every callback_data fits Telegram's 64 bytes
        [cards] = await rb.say(USER, "零基础想学几道家常川菜")
        first = item_ids(cards)
        assert len(first) == 3 and len(cards["text"]) <= 4096
        assert all(len(b["callback_data"].encode()) <= 64 for b in buttons(cards))
        assert {"👍", "👎", "不感兴趣", "看食材包", "领券", "更多"} <= {
            part for b in buttons(cards) for part in b["text"].replace("▶", "").split()
        }

        # 4. 👎 the first card: recorded, and the next answer leaves it out
        disliked = env.recsys.recommender.docs[first[0]].slug
        toast = await rb.press(USER, "1 👎")
        assert "👎" in toast["text"]
        assert [e["item_slug"] for e in events(env, USER, "dislike")] == [disliked]
        [again] = await rb.say(USER, "零基础想学几道家常川菜")
        assert first[0] not in item_ids(again)

        # 更多: the next page shows new items only
        await rb.press(USER, "更多")
        page2 = api.last_message(USER)
        assert page2 is not None and set(item_ids(page2)).isdisjoint(item_ids(again))

        # 5. "X 配什么" → pairing with a buy-the-kit button
        # The profile's peanut allergy is a hard constraint: the 沙茶 hotpot kit is left out, and said so.
        [brisket] = await rb.say(USER, "牛腩配什么")
        assert "牛腩" in brisket["text"] and "配什么" in brisket["text"]
        assert "花生过敏" in brisket["text"] and "排除" in brisket["text"]
        [pairing] = await rb.say(USER, "番茄配什么")
        assert "番茄" in pairing["text"] and "配什么" in pairing["text"]
        await rb.press(USER, "买这个食材包")
        kit_offer = api.last_message(USER)
        assert "食材包" in kit_offer["text"] and any("领券" in b["text"] for b in buttons(kit_offer))

        # 6. coupon: a kit earns a course coupon, pressing twice issues one
        await rb.press(USER, "领券")
        first_coupon = api.texts(USER)[-1]
        assert "XK-" in first_coupon and "领到啦" in first_coupon
        await rb.press(USER, "领券", message_id=kit_offer["message_id"])
        assert "已经领过" in api.texts(USER)[-1]
        coupons = env.store.query("SELECT * FROM coupons WHERE user_id = ?", [USER])
        assert len(coupons) == 1 and coupons[0]["target_type"] == "course"
        assert len(events(env, USER, "coupon_issued")) == 1
        [listing] = await rb.say(USER, "/coupons")
        assert coupons[0]["code"] in listing["text"]

        # every press was recorded as an event
        clicks = [loads(e["payload"])["button"] for e in events(env, USER, "click")]
        assert {"more", "buy", "coupon"} <= set(clicks)
        assert rb.stats.errors == []


async def test_complaint_gets_apology_and_handoff_never_a_card(bot_env: BotEnv) -> None:
    user = USER + 1
    async with running_bot(bot_env) as rb:
        [reply] = await rb.say(user, "收到的牛肉是臭的，太恶心了，老师的课也一般")
        assert "抱歉" in reply["text"]
        labels = [b["text"] for b in buttons(reply)]
        assert labels == [ZH["btn_handoff"]]
        await rb.press(user, "人工客服")
        assert "人工客服" in rb.api.texts(user)[-1]
        assert len(events(bot_env, user, "handoff_requested")) == 1
        [consult] = await rb.say(user, "/consult")
        assert "人工客服" in consult["text"]
        [hello] = await rb.say(user, "你好")
        assert not buttons(hello) and "比如" in hello["text"]
        [unclear] = await rb.say(user, "嗯")
        assert len(buttons(unclear)) == 4  # one clarifying question with quick replies
        await rb.press(user, "学做菜")
        assert item_ids(rb.api.last_message(user))


async def test_language_switch_persists(bot_env: BotEnv) -> None:
    user = USER + 2
    async with running_bot(bot_env) as rb:
        [welcome] = await rb.say(user, "/start", language_code="en")
        assert welcome["text"].startswith("Hi ")
        [switched] = await rb.say(user, "/lang", language_code="en")
        assert "中文" in switched["text"]
        assert bot_env.dialogue.users.get(user)["language"] == "zh"
        [helptext] = await rb.say(user, "/help", language_code="en")
        assert "怎么用" in helptext["text"]


async def test_replayed_update_is_processed_once(bot_env: BotEnv) -> None:
    user = USER + 3
    async with running_bot(bot_env) as rb:
        update = {
            "update_id": 900_001,
            "message": {
                "message_id": 1, "date": 1_700_000_000, "text": "/help",
                "chat": {"id": user, "type": "private"},
                "from": {"id": user, "is_bot": False, "first_name": "Re", "language_code": "zh"},
            },
        }
        for _ in range(3):
            await rb.dp.feed_update(rb.bot, Update.model_validate(update, context={"bot": rb.bot}))
        assert len(rb.api.sent_messages(user)) == 1
        assert rb.stats.duplicates == 2


async def test_throttling_is_polite_and_once(bot_env: BotEnv) -> None:
    user = USER + 4
    async with running_bot(bot_env, throttle_rate=5, throttle_per=3.0) as rb:
        target = rb.stats.processed + 9
        for _ in range(9):
            rb.api.push_message(user, "/privacy")
        await rb.stats.wait_processed(target)
        texts = rb.api.texts(user)
        notices = [t for t in texts if t == ZH["throttled"]]
        assert len(notices) == 1
        assert 5 <= len(texts) - 1 <= 7  # a burst of 5, plus what refilled while handling
        assert rb.stats.throttled >= 2


async def test_error_handler_answers_kindly_and_logs(bot_env: BotEnv, caplog: pytest.LogCaptureFixture) -> None:
    user = USER + 5
    async with running_bot(bot_env) as rb:
        rb.api.fail_next("sendMessage", 400, chat_id=user)
        with caplog.at_level(logging.ERROR, logger="bot.middlewares"):
            await rb.send(user, text="/help")
            await rb.api.wait_for("sendMessage", lambda c: c.params["chat_id"] == user and c.ok)
        assert rb.api.texts(user) == [ZH["error"]]
        [failed] = rb.stats.errors
        record = next(r for r in caplog.records if r.getMessage() == "update failed")
        assert record.fields["update_id"] == failed and "TelegramBadRequest" in record.fields["trace"]


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def test_webhook_runner_checks_secret(bot_env: BotEnv) -> None:
    from bot.middlewares import BotStats
    from bot.runners import build_dispatcher

    user = USER + 6
    bot_env.store.db.execute("DELETE FROM processed_updates")  # a new fake server reuses update ids
    async with FakeBotAPI() as api:
        bot = api.make_bot()
        stats = BotStats()
        dp = build_dispatcher(bot_env.dialogue, bot_env.open_store(), stats=stats)
        sock = _free_socket()
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/tg/hook"
        app = make_webhook_app(bot, dp, url=url, path="/tg/hook", secret="s3cret-Token")
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        try:
            assert api.webhook and api.webhook["url"] == url and api.webhook["secret_token"] == "s3cret-Token"
            assert api.bot_commands({"type": "all_private_chats"}, "zh")
            update = api.push_message(user, "/help")
            assert await api.post_webhook(url, update) in (401, 403)
            assert await api.post_webhook(url, update, secret_token="wrong") in (401, 403)
            assert api.sent_messages(user) == []
            assert await api.post_webhook(url, update, secret_token="s3cret-Token") == 200
            assert await api.post_webhook(url, update, secret_token="s3cret-Token") == 200  # Telegram retry
            await stats.wait_processed(2)  # answered at once, handled in the background
            assert len(api.sent_messages(user)) == 1 and stats.duplicates == 1
            async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["ok"] is True
        finally:
            await runner.cleanup()
            await bot.session.close()


async def test_polling_survives_rate_limit_and_blocked_user(bot_env: BotEnv) -> None:
    user = USER + 7
    async with running_bot(bot_env) as rb:
        rb.api.block_user(user)
        await rb.send(user, text="/help")
        assert rb.stats.blocked == [user] and rb.stats.errors == []
        assert bot_env.dialogue.users.get(user)["blocked_bot"] == 1
        rb.api.unblock_user(user)
        [reply] = await rb.say(user, "/help")
        assert "怎么用" in reply["text"] and bot_env.dialogue.users.get(user)["blocked_bot"] == 0

