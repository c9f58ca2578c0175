"""One delivery path, at most once: the production notifier against the fake Bot API when the answer
to a send is lost after Telegram already delivered it (a timeout after delivery).

The old notifier turned that timeout into RetryLater, so the broadcaster and the digest resent the
message and the customer got it twice. Now it is DeliveryUnknown: the row becomes 'unknown' and the
message arrives exactly once. Idempotent calls (reads) are still retried, in the Bot session only.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from bot.runners import make_bot
from commerce.broadcast import Broadcaster
from commerce.campaigns import Campaign, CampaignRepository
from core.delivery import deliver
from core.notify import DeliveryUnknown, Outgoing
from core.store import Store
from tests.fakes import LateAnswerBotAPI
from xianke.notifier import AiogramNotifier

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CLIENT_TIMEOUT_S = 0.5
LATE_S = 1.5  # the fake server answers this late, after the message is stored: the client times out


def production_bot(api: LateAnswerBotAPI):  # type: ignore[no-untyped-def]
    """The Bot exactly as the composition root builds it (session middlewares included), with a
    short request timeout so the lost answer takes half a second instead of a minute."""
    bot = make_bot(api.token, api.base_url)
    bot.session.timeout = CLIENT_TIMEOUT_S
    return bot


def delivered(api: LateAnswerBotAPI) -> Counter[int]:
    """Messages the users can see, per chat (the fake server stores a message before answering)."""
    return Counter(int(c.params["chat_id"]) for c in api.calls("sendMessage") if c.ok)


async def test_broadcast_timeout_after_delivery_sends_once_and_marks_unknown(store: Store) -> None:
    with store.transaction():
        for uid in range(1, 11):
            store.db.execute("INSERT INTO users (id, first_name) VALUES (?, ?)", [uid, f"顾客{uid}"])
    campaign = CampaignRepository(store).create(
        Campaign.build(slug="late", name="超时测试", channel="broadcast", holdout_pct=0)
    )
    async with LateAnswerBotAPI() as api:
        bot = production_bot(api)
        broadcaster = Broadcaster(store, AiogramNotifier(bot), rate=200, concurrency=1)
        broadcaster.plan(campaign, range(1, 11), text="{name}，冬季新课上线！", now=NOW)
        api.answer_late("sendMessage", LATE_S)  # the very first send: delivered, answer lost
        try:
            report = await broadcaster.send(campaign)
        finally:
            broadcaster.close()
            await bot.session.close()
        counts = delivered(api)
    assert counts == Counter(dict.fromkeys(range(1, 11), 1))  # one message each, user 1 included
    assert report.unknown == 1 and report.sent == 9 and report.stopped is None
    status = dict(store.db.execute(
        "SELECT user_id, send_status FROM campaign_assignments WHERE campaign_id = ?", [campaign.campaign_id]
    ).fetchall())
    assert status[1] == "unknown" and {status[u] for u in range(2, 11)} == {"sent"}


async def test_digest_delivery_with_a_lost_answer_is_unknown_and_not_resent() -> None:
    async with LateAnswerBotAPI() as api:
        bot = production_bot(api)
        notifier = AiogramNotifier(bot)
        api.answer_late("sendMessage", LATE_S)
        delivery = await deliver(notifier, [Outgoing(-100777, "日报 1/2"), Outgoing(-100777, "日报 2/2")])
        texts = [m["text"] for m in api.sent_messages(-100777)]
        assert delivery.status == "unknown" and delivery.final and len(delivery.message_ids) == 1
        assert texts == ["日报 1/2", "日报 2/2"]  # each once; the second still went out
        await bot.session.close()


async def test_server_error_on_a_send_is_unknown_but_reads_are_retried() -> None:
    async with LateAnswerBotAPI() as api:
        bot = production_bot(api)
        api.fail_next("sendMessage", 502)
        with pytest.raises(DeliveryUnknown):
            await AiogramNotifier(bot).send(Outgoing(5, "hi"))
        assert len(api.calls("sendMessage")) == 1  # a send is never repeated by the session
        api.answer_late("getMe", LATE_S)
        me = await bot.get_me()  # idempotent: the session retries it after the timeout
        assert me.id == api.bot_id and [c.ok for c in api.calls("getMe")] == [True, True]
        await bot.session.close()
