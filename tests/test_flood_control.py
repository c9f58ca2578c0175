"""Flood control: under a storm of 429s from the fake Bot API, broadcasts and bot replies wait the time
Telegram names and still deliver every message exactly once.

Two layers are at work, both exercised here against the real HTTP path (aiogram session → fake server):
- `bot.retry.RetryAfterMiddleware` (installed by `bot.runners.make_bot`): waits `retry_after` and
  resends the same request; other requests to that chat wait too. A 429 means "not executed", so a
  resend cannot duplicate the message.
- `commerce.broadcast.Broadcaster`: when a wait is longer than the middleware accepts, the 429 reaches
  the broadcaster as RetryLater (not sent): that user stays pending, every worker is held back for the
  wait, and the run stops so that a later run resumes it. The middleware is the only retry loop.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.retry import RetryAfterMiddleware, install_request_middlewares
from bot.runners import make_bot
from commerce.broadcast import Broadcaster
from commerce.campaigns import Campaign, CampaignRepository
from core.store import Store
from tests.fakebot import FakeBotAPI
from tests.fakebot.server import Call
from tests.hardening_helpers import polling
from xianke.notifier import AiogramNotifier

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def delivered(api: FakeBotAPI, method: str = "sendMessage") -> Counter[int]:
    return Counter(int(c.params["chat_id"]) for c in api.calls(method) if c.ok)


def assert_waited(api: FakeBotAPI, method: str = "sendMessage", slack: float = 0.05) -> int:
    """After each 429 for a chat, the next request to that chat came no sooner than retry_after."""
    calls: list[Call] = api.calls(method)
    floods = [c for c in calls if c.status == 429]
    for flood in floods:
        wait = flood.response["parameters"]["retry_after"]  # type: ignore[index]
        later = [c for c in calls if c.params.get("chat_id") == flood.params.get("chat_id") and c.time > flood.time]
        assert later, f"no retry after the 429 for chat {flood.params.get('chat_id')}"
        assert later[0].time - flood.time >= wait - slack, (later[0].time - flood.time, wait)
    return len(floods)


def make_campaign(store: Store, users: int) -> Campaign:
    with store.transaction():
        for uid in range(1, users + 1):
            store.db.execute("INSERT INTO users (id, first_name) VALUES (?, ?)", [uid, f"顾客{uid}"])
    return CampaignRepository(store).create(
        Campaign.build(slug="storm", name="限流测试", channel="broadcast", holdout_pct=20)
    )


async def test_broadcast_through_a_429_storm_delivers_each_treatment_user_once(store: Store) -> None:
    campaign = make_campaign(store, 30)
    async with FakeBotAPI() as api:
        bot = make_bot(api.token, api.base_url)
        broadcaster = Broadcaster(store, AiogramNotifier(bot), rate=200, concurrency=4)
        broadcaster.plan(campaign, range(1, 31), text="{name}，冬季新课上线！", now=NOW)
        treated = {u for (u,) in store.db.execute(
            "SELECT user_id FROM campaign_assignments WHERE arm = 'treatment'").fetchall()}
        api.fail_next("sendMessage", 429, retry_after=1, times=8)  # the storm: the next 8 sends fail
        try:
            report = await broadcaster.send(campaign)
        finally:
            broadcaster.close()
            await bot.session.close()
        counts = delivered(api)
        assert set(counts) == treated and set(counts.values()) == {1}  # everyone once, holdout never
        assert report.sent == len(treated) and report.stopped is None
        assert assert_waited(api) == 8
        assert api.get_message(min(treated), 1) is not None


async def test_a_wait_too_long_for_the_session_stops_the_broadcast_resumably(store: Store) -> None:
    """retry_after above the middleware's max_wait: the broadcaster does not retry on its own; the
    user stays pending, nobody is messaged during the wait, and the next run delivers the rest once."""
    campaign = make_campaign(store, 12)
    async with FakeBotAPI() as api:
        bot = api.make_bot()
        install_request_middlewares(bot, retry=RetryAfterMiddleware(max_wait=0.5))
        broadcaster = Broadcaster(store, AiogramNotifier(bot), rate=200, concurrency=4)
        broadcaster.plan(campaign, range(1, 13), text="hi", now=NOW)
        treated = {u for (u,) in store.db.execute(
            "SELECT user_id FROM campaign_assignments WHERE arm = 'treatment'").fetchall()}
        api.fail_next("sendMessage", 429, retry_after=1, times=1)
        try:
            first = await broadcaster.send(campaign)
            assert first.rate_limited == 1 and first.stopped
            flood = next(c for c in api.calls("sendMessage") if c.status == 429)
            assert not [c for c in api.calls("sendMessage") if flood.time < c.time < flood.time + 0.95]
            second = await broadcaster.send(campaign)
        finally:
            broadcaster.close()
        counts = delivered(api)
        assert set(counts) == treated and set(counts.values()) == {1}
        assert first.sent + second.sent == len(treated) and second.stopped is None


async def test_replies_wait_out_the_storm_and_arrive_exactly_once(tmp_path: Path) -> None:
    users = list(range(4001, 4007))
    async with polling(tmp_path) as (api, runtime):
        api.fail_next("sendMessage", 429, retry_after=1, times=len(users))
        target = runtime.stats.processed + len(users)
        for user in users:
            api.push_message(user, "/help")
        await runtime.stats.wait_processed(target, timeout=30)
        counts = delivered(api)
        assert {u: counts[u] for u in users} == dict.fromkeys(users, 1)
        assert assert_waited(api) == len(users)
        assert runtime.stats.errors == []

        # A button press during a storm: the toast (answerCallbackQuery) waits too and is answered once.
        user = users[0]
        api.push_message(user, "/start")
        await api.wait_for("sendMessage", lambda c: str(c.params.get("chat_id")) == str(user) and c.ok, count=2)
        api.fail_next("answerCallbackQuery", 429, retry_after=1, times=2)
        target = runtime.stats.processed + 1
        update = api.click_button(user, "English")
        await runtime.stats.wait_processed(target + 1, timeout=30)
        query_id = update["callback_query"]["id"]
        answers = [c for c in api.calls("answerCallbackQuery") if c.params.get("callback_query_id") == query_id]
        assert [c.status for c in answers] == [429, 429, 200]
        assert answers[2].time - answers[0].time >= 1.9
        assert runtime.stats.errors == []


async def test_a_late_callback_answer_does_not_fail_the_update(tmp_path: Path) -> None:
    """Updates queued while the bot was down: answering the press is refused ("query is too old"),
    but the rest of the handler still runs and nothing reaches the error handler."""
    async with polling(tmp_path) as (api, runtime):
        user = 4100
        target = runtime.stats.processed + 1
        api.push_message(user, "/start")
        await runtime.stats.wait_processed(target, timeout=30)
        welcome = api.last_message(user)
        assert welcome is not None
        lang = next(b["callback_data"] for row in welcome["reply_markup"]["inline_keyboard"] for b in row
                    if b["callback_data"].startswith("l:"))
        api.push_raw({"callback_query": {
            "id": "expired-query", "from": {"id": user, "is_bot": False, "first_name": "Late"},
            "chat_instance": "1", "data": lang, "message": welcome,
        }})
        before = len(api.sent_messages(user))
        await runtime.stats.wait_processed(target + 1, timeout=30)
        assert [c.ok for c in api.calls("answerCallbackQuery")] == [False]
        assert len(api.sent_messages(user)) > before  # the language switch was still confirmed
        assert runtime.stats.errors == []
