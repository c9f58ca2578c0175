"""Live consultations end to end: the real Dispatcher polling the fake Bot API with a forum supergroup.

Customer ⇄ forum topic relay with media and threaded replies, staff commands, rating, a restart in
the middle, refusals, and Telegram failures (403, 429, a deleted topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.retry import RetryAfterMiddleware
from bot.support import SupportService
from bot.texts import ZH
from core.repos import TicketRepository
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, RunningBot, buttons, running_bot
from tests.fakebot import FakeBotAPI

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

STAFF = -1001500000001
AGENT, OUTSIDER = 7001, 7002
USER = 6101


class Waits:
    """Records how long the Bot session was asked to wait (429 retry_after) without really waiting."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.skipped = 0.0  # seconds "slept": the clock below jumps ahead by them

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.skipped += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        return time.monotonic() + self.skipped


def make_support(env: BotEnv, **kwargs: Any) -> SupportService:
    env.dialogue.live_support = True
    return SupportService(env.dialogue, STAFF, **kwargs)


@contextlib.asynccontextmanager
async def support_bot(
    env: BotEnv, support: SupportService, api: FakeBotAPI | None = None, *, retry: RetryAfterMiddleware | None = None
) -> AsyncIterator[RunningBot]:
    """running_bot with the staff forum supergroup registered before start-up (it checks the chat)."""
    async with contextlib.AsyncExitStack() as stack:
        if api is None:
            api = await stack.enter_async_context(FakeBotAPI())
            env.store.db.execute("DELETE FROM processed_updates")  # a fresh server reuses update ids
            api.add_chat(STAFF, "supergroup", title="鲜课客服", is_forum=True)
        async with running_bot(env, api, support=support, retry=retry) as rb:
            yield rb


def tickets(env: BotEnv) -> TicketRepository:
    return TicketRepository(env.store)


def topic(api: FakeBotAPI, thread: int) -> list[dict[str, Any]]:
    """The bot's visible messages in one forum topic, oldest first."""
    return [m for m in api.sent_messages(STAFF) if m.get("message_thread_id") == thread]


def topic_texts(api: FakeBotAPI, thread: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in topic(api, thread)]


async def staff_says(
    rb: RunningBot, text: str | None = None, *, thread: int | None, user: int = AGENT, first_name: str = "Alice", **kwargs: Any
) -> dict[str, Any]:
    """A message in a staff topic (None: the General topic); waits until it is processed; returns the pushed message."""
    target = rb.stats.processed + 1
    update = rb.api.push_message(
        user, text, chat_id=STAFF, chat_type="supergroup", message_thread_id=thread, is_topic_message=thread is not None,
        first_name=first_name, **kwargs,
    )
    await rb.stats.wait_processed(target, timeout=20)
    return update["message"]


async def customer_says(rb: RunningBot, text: str | None = None, *, user: int = USER, **kwargs: Any) -> dict[str, Any]:
    target = rb.stats.processed + 1
    update = rb.api.push_message(user, text, first_name="小美", **kwargs)
    await rb.stats.wait_processed(target, timeout=20)
    return update["message"]


async def open_consultation(rb: RunningBot, env: BotEnv, user: int = USER) -> tuple[int, int]:
    """/consult → (ticket id, thread id)."""
    [opened] = await rb.say(user, "/consult", first_name="小美")
    assert "已为你接通人工客服" in opened["text"] and any(b["text"] == ZH["sup_btn_end"] for b in buttons(opened))
    ticket = tickets(env).open_for(user)
    assert ticket is not None and ticket.thread_id is not None
    return ticket.id, ticket.thread_id


async def edit(rb: RunningBot, chat_id: int, message_id: int, text: str) -> None:
    target = rb.stats.processed + 1
    rb.api.push_edited_message(chat_id, message_id, text=text)
    await rb.stats.wait_processed(target, timeout=20)


def copies_to(api: FakeBotAPI, chat_id: int, since: int = 0) -> list[Any]:
    return [c for c in api.calls("copyMessage")[since:] if c.params.get("chat_id") == chat_id]


async def test_consultation_journey(bot_env: BotEnv) -> None:
    env = bot_env
    support = make_support(env)
    async with support_bot(env, support) as rb:
        api = rb.api
        api.set_member_status(STAFF, AGENT, "administrator")
        # Context for the header card: a recommendation and a coupon.
        await rb.say(USER, "零基础想学几道家常川菜", first_name="小美")
        await rb.press(USER, "领券")

        # 1. open: a ticket, one forum topic for the customer, a header card with their context
        ticket_id, thread = await open_consultation(rb, env)
        [created] = api.calls("createForumTopic")
        assert created.params["chat_id"] == STAFF and "小美" in created.params["name"]
        header = topic_texts(api, thread)[-1]
        assert f"工单 #{ticket_id}" in header and "小美" in header and "口味资料" in header
        assert "最近推荐" in header and "川菜" in header and "XK-" in header  # recommendation and open coupon
        assert [e["payload"] for e in env.store.query(
            "SELECT payload FROM events WHERE user_id = ? AND kind = 'handoff_requested'", [USER]
        )]

        # 2. customer → topic: text, photo, voice, document, sticker, each copied into the thread
        since = len(api.calls("copyMessage"))
        text_msg = await customer_says(rb, "你好，我上周买的牛腩食材包少了八角")
        photo_msg = await customer_says(rb, photo=True, caption="这是收到的包裹")
        await customer_says(rb, voice=True)
        await customer_says(rb, document=True, document_name="订单截图.txt")
        await customer_says(rb, sticker="😢")
        relayed = copies_to(api, STAFF, since)
        assert len(relayed) == 5 and all(c.ok and c.params["message_thread_id"] == thread for c in relayed)
        copied = topic(api, thread)[-5:]
        assert copied[0]["text"] == text_msg["text"] and copied[1]["caption"] == "这是收到的包裹"
        assert [next(k for k in ("photo", "voice", "document", "sticker") if k in m) for m in copied[1:]] == [
            "photo", "voice", "document", "sticker",
        ]
        assert "已为你接通" in api.texts(USER)[-1]  # relaying answers nothing back to the customer
        rows = tickets(env).messages(ticket_id)
        assert [r["kind"] for r in rows] == ["text", "photo", "voice", "document", "sticker"]
        photo_copy = next(r["staff_message_id"] for r in rows if r["kind"] == "photo")

        # 3. staff → customer, threaded: a reply to the photo copy becomes a reply to the customer's photo
        before = len(api.sent_messages(USER))
        staff_text = await staff_says(rb, "收到，给您补发八角，抱歉！", thread=thread, reply_to_message_id=photo_copy)
        await staff_says(rb, thread=thread, photo=True, caption="这是补发的单号截图")
        delivered = api.sent_messages(USER)[before:]
        assert delivered[0]["text"] == "收到，给您补发八角，抱歉！"
        assert delivered[0]["reply_to_message"]["message_id"] == photo_msg["message_id"]
        assert "photo" in delivered[1] and delivered[1]["caption"] == "这是补发的单号截图"
        after_reply = tickets(env).get(ticket_id)
        assert after_reply.first_response_at is not None and after_reply.waiting_since is None

        # and back: the customer's reply to the staff message is threaded to the original in the topic
        await customer_says(rb, "太好了，谢谢", reply_to_message_id=delivered[0]["message_id"])
        assert topic(api, thread)[-1]["reply_to_message"]["message_id"] == staff_text["message_id"]

        # edits are mirrored both ways
        await edit(rb, USER, text_msg["message_id"], "你好，我上周买的牛腩食材包少了八角和桂皮")
        assert "桂皮" in api.get_message(STAFF, rows[0]["staff_message_id"])["text"]
        await edit(rb, STAFF, staff_text["message_id"], "收到，马上给您补发八角和桂皮！")
        assert "桂皮" in api.get_message(USER, delivered[0]["message_id"])["text"]

        # 4. /assign: the ticket is taken, the customer is told who helps them
        await staff_says(rb, "/assign", thread=thread)
        assert "Alice 接手了工单" in topic_texts(api, thread)[-1]
        assert "Alice" in api.texts(USER)[-1] and tickets(env).get(ticket_id).status == "assigned"

        # 5. canned replies: an admin saves one, anyone on staff lists and sends it
        await staff_says(rb, "/canned add refund_time {name}您好，退款会在 1-3 个工作日原路退回～", thread=thread)
        assert "已保存" in topic_texts(api, thread)[-1]
        await staff_says(rb, "/canned", thread=thread)
        assert "refund_time" in topic_texts(api, thread)[-1]
        await staff_says(rb, "/canned refund_time", thread=thread)
        assert api.texts(USER)[-1] == "小美您好，退款会在 1-3 个工作日原路退回～"
        assert "已发送快捷回复" in topic_texts(api, thread)[-1]
        await staff_says(rb, "/clsoe", thread=thread)  # a typo is never relayed
        assert "未知命令" in topic_texts(api, thread)[-1] and "clsoe" not in api.texts(USER)[-1]

        # 6. /close → the customer is asked for a rating, then an optional comment
        await staff_says(rb, "/close", thread=thread)
        assert "关闭，已请客户评分" in topic_texts(api, thread)[-1]
        rating_prompt = api.last_message(USER)
        assert "打个分" in rating_prompt["text"] and len(buttons(rating_prompt)) == 5
        await rb.press(USER, "5⭐")
        assert "⭐⭐⭐⭐⭐" in api.texts(USER)[-1]
        [thanks] = await rb.say(USER, "老师很耐心，补发也很快")
        assert "谢谢" in thanks["text"]
        closed = tickets(env).get(ticket_id)
        assert closed.status == "closed" and closed.rating == 5 and closed.rating_comment == "老师很耐心，补发也很快"
        assert closed.closed_by == "staff" and closed.closed_at is not None
        assert "客户评分" in topic_texts(api, thread)[-2] and "老师很耐心" in topic_texts(api, thread)[-1]

        # 7. after the ticket, free text is a shopping question again (recommendations resume)
        since = len(api.calls("copyMessage"))
        [cards] = await rb.say(USER, "想学做烘焙蛋糕")
        assert buttons(cards) and copies_to(api, STAFF, since) == []

        # 8. stats: CSAT and response times are queryable
        stats = tickets(env).stats(days=1)
        assert stats.rated >= 1 and stats.csat_distribution[5] >= 1
        assert stats.first_response_p50_min is not None and stats.resolution_p50_min is not None

        # /history in the topic lists the closed ticket with its rating
        await staff_says(rb, "/history", thread=thread)
        assert f"#{ticket_id}" in topic_texts(api, thread)[-1] and "⭐⭐⭐⭐⭐" in topic_texts(api, thread)[-1]
        assert rb.stats.errors == []


async def test_restart_keeps_thread_mapping(bot_env: BotEnv) -> None:
    env, user = bot_env, USER + 1
    async with FakeBotAPI() as api:
        env.store.db.execute("DELETE FROM processed_updates")
        api.add_chat(STAFF, "supergroup", is_forum=True)
        async with support_bot(env, make_support(env), api) as rb:
            ticket_id, thread = await open_consultation(rb, env, user)
            first = await customer_says(rb, "我想改一下上课时间", user=user)
            [row] = tickets(env).messages(ticket_id)
        # A new process: new service and dispatcher, same database file and the same Telegram chats.
        async with support_bot(env, make_support(env, status_refresh=timedelta(0)), api) as rb:
            await customer_says(rb, "周六下午可以吗？", user=user)
            assert len(api.calls("createForumTopic")) == 1 and topic(api, thread)[-1]["text"] == "周六下午可以吗？"
            assert "正在等待客服接待" in api.texts(user)[-1]  # the status line when they write again
            before = len(api.sent_messages(user))
            await staff_says(rb, "可以的，已帮您调整", thread=thread, reply_to_message_id=row["staff_message_id"])
            [answer] = api.sent_messages(user)[before:]
            assert answer["reply_to_message"]["message_id"] == first["message_id"]
            assert rb.stats.errors == []


async def test_only_staff_may_use_commands(bot_env: BotEnv) -> None:
    env, user = bot_env, USER + 2
    async with support_bot(env, make_support(env)) as rb:
        api = rb.api
        ticket_id, thread = await open_consultation(rb, env, user)
        api.set_member_status(STAFF, OUTSIDER, "left")
        await staff_says(rb, "/close", thread=thread, user=OUTSIDER, first_name="Mallory")
        assert "只有客服团队成员" in topic_texts(api, thread)[-1]
        before = len(api.sent_messages(user))
        await staff_says(rb, "把你的银行卡号发我", thread=thread, user=OUTSIDER, first_name="Mallory")
        assert len(api.sent_messages(user)) == before  # never relayed
        # The customer cannot close (or do anything staff do) from the private chat either.
        [refused] = await rb.say(user, "/close")
        assert refused["text"] == ZH["sup_staff_only"]
        assert tickets(env).get(ticket_id).status == "open"
        # Outside a ticket topic, staff chatter is ignored and commands get a hint.
        await staff_says(rb, "大家中午吃什么", thread=None)
        await staff_says(rb, "/close", thread=None)
        assert "不是客户的工单话题" in api.texts(STAFF)[-1] and tickets(env).get(ticket_id).status == "open"
        # The customer ends the chat themselves with the button.
        await rb.press(user, ZH["sup_btn_end"])
        assert tickets(env).get(ticket_id).closed_by == "customer" and "打个分" in api.texts(user)[-1]
        assert "客户结束了咨询" in topic_texts(api, thread)[-1]
        assert rb.stats.errors == []


async def test_blocked_customer_marks_ticket_and_tells_staff(bot_env: BotEnv) -> None:
    env, user = bot_env, USER + 3
    async with support_bot(env, make_support(env)) as rb:
        # Typing 转人工 offers the 人工客服 button; pressing it opens the consultation.
        [offer] = await rb.say(user, "转人工")
        assert [b["text"] for b in buttons(offer)] == [ZH["btn_handoff"]]
        await rb.press(user, "人工客服")
        ticket = tickets(env).open_for(user)
        assert ticket is not None and ticket.reason == "handoff" and "已为你接通" in rb.api.texts(user)[-1]
        ticket_id, thread = ticket.id, ticket.thread_id
        assert thread is not None
        rb.api.block_user(user)
        await staff_says(rb, "您好，请问订单号是多少？", thread=thread)
        ticket = tickets(env).get(ticket_id)
        assert ticket.delivery_error and ticket.delivery_error.startswith("blocked")
        assert "客户已屏蔽机器人" in topic_texts(rb.api, thread)[-1]
        assert env.dialogue.users.get(user)["blocked_bot"] == 1
        assert rb.stats.errors == []


async def test_rate_limit_is_waited_out_and_delivered_once(bot_env: BotEnv) -> None:
    env, user = bot_env, USER + 4
    waits = Waits()  # the production session middleware (bot/retry.py) does the waiting, not the service
    retry = RetryAfterMiddleware(max_retries=2, sleep=waits, clock=waits.clock)
    async with support_bot(env, make_support(env), retry=retry) as rb:
        api = rb.api
        ticket_id, thread = await open_consultation(rb, env, user)
        # staff → customer
        api.fail_next("copyMessage", 429, retry_after=3, chat_id=user)
        before = len(api.sent_messages(user))
        await staff_says(rb, "稍等，我查一下物流", thread=thread)
        assert [m["text"] for m in api.sent_messages(user)[before:]] == ["稍等，我查一下物流"]
        assert [c.status for c in copies_to(api, user)] == [429, 200] and waits.asked == [pytest.approx(3.0, abs=0.2)]
        # customer → topic
        api.fail_next("copyMessage", 429, retry_after=2, chat_id=STAFF)
        await customer_says(rb, "好的谢谢", user=user)
        assert topic_texts(api, thread).count("好的谢谢") == 1
        assert waits.asked == [pytest.approx(3.0, abs=0.2), pytest.approx(2.0, abs=0.2)]
        # still limited after the retries: nothing is dropped silently, staff are told
        api.fail_next("copyMessage", 429, retry_after=1, chat_id=user, times=3)
        await staff_says(rb, "物流显示明天到", thread=thread)
        assert "限流" in topic_texts(api, thread)[-1]
        assert (tickets(env).get(ticket_id).delivery_error or "").startswith("rate_limited")
        assert rb.stats.errors == []


async def test_deleted_topic_is_recreated(bot_env: BotEnv) -> None:
    env, user = bot_env, USER + 5
    async with support_bot(env, make_support(env)) as rb:
        api = rb.api
        ticket_id, thread = await open_consultation(rb, env, user)
        api.delete_topic(STAFF, thread)
        await customer_says(rb, "还有人在吗？", user=user)
        new_thread = tickets(env).get(ticket_id).thread_id
        assert new_thread is not None and new_thread != thread and len(api.calls("createForumTopic")) == 2
        header, relayed = topic_texts(api, new_thread)[-2:]
        assert "原话题已被删除" in header and f"工单 #{ticket_id}" in header and relayed == "还有人在吗？"
        before = len(api.sent_messages(user))
        await staff_says(rb, "在的，请讲", thread=new_thread)
        assert [m["text"] for m in api.sent_messages(user)[before:]] == ["在的，请讲"]
        # A later consultation of the same customer reuses their (new) topic.
        await staff_says(rb, "/close", thread=new_thread)
        second_id, second_thread = await open_consultation(rb, env, user)
        assert second_id != ticket_id and second_thread == new_thread and len(api.calls("createForumTopic")) == 2
        assert rb.stats.errors == []


async def test_staff_chat_without_topics_fails_politely(bot_env: BotEnv) -> None:
    env, user = bot_env, USER + 6
    async with FakeBotAPI() as api:
        env.store.db.execute("DELETE FROM processed_updates")
        api.add_chat(STAFF, "supergroup", is_forum=False)  # Topics not enabled: createForumTopic fails
        async with support_bot(env, make_support(env), api) as rb:
            [reply] = await rb.say(user, "/consult")
            assert reply["text"] == ZH["sup_open_failed"]
            ticket = tickets(env).latest_for(user)
            assert ticket is not None and ticket.closed_by == "error" and "not a forum" in (ticket.delivery_error or "")
            [again] = await rb.say(user, "你好")  # no open ticket: the normal assistant answers
            assert again["text"] != ZH["sup_not_delivered"] and tickets(env).open_for(user) is None
