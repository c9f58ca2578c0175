"""The bad-input corpus: nothing raises; each update gets a polite reply or is ignored on purpose."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.texts import ZH
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, RunningBot, buttons, running_bot

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

LONG_CJK = ("我想学做川菜，最好是零基础能跟上的，预算三百块以内，家里有两个孩子不太能吃辣。" * 120)[:4096]
CONTROL = "\u202e想学\u200b做\u0007蛋糕\u2066\ufeff\u0000"
HTML_TEXT = '<b>想学</b> <a href="javascript:alert(1)">川菜</a> & <script>x</script> &amp; <'

# (name, message kwargs for push_message, what the user should see: a text fragment)
MESSAGES: list[tuple[str, dict[str, Any], str | None]] = [
    ("unknown command", {"text": "/foobar"}, ZH["unknown_command"]),
    ("long unknown command", {"text": "/" + "x" * 120}, ZH["unknown_command"]),
    ("command for another bot", {"text": "/help@some_other_bot"}, ZH["unknown_command"]),
    ("start with too long payload", {"text": "/start " + "a" * 65}, "鲜课"),
    ("start with bad characters", {"text": "/start spring$sale!<b>"}, "鲜课"),
    ("start with spaces in payload", {"text": "/start two words"}, "鲜课"),
    ("start with unknown campaign", {"text": "/start no_such_campaign"}, "鲜课"),
    ("start with referral payload", {"text": "/start ref_AB12"}, "鲜课"),
    ("4096-char message", {"text": LONG_CJK}, "为你挑了"),
    ("4096 x 'a'", {"text": "a" * 4096}, None),
    ("empty text", {"text": ""}, ZH["empty"]),
    ("whitespace only", {"text": "  \n\t  "}, ZH["empty"]),
    ("emoji only", {"text": "😂🤣😂"}, ZH["unclear"]),
    ("RTL and control characters", {"text": CONTROL}, None),
    ("HTML in text", {"text": HTML_TEXT}, None),
    ("HTML in the user's name", {"text": "/start", "first_name": "<b>Bob</b> & <i>Co"}, "<b>Bob</b> & <i>Co"),
    ("sticker", {"sticker": True}, ZH["sticker"]),
    ("photo", {"photo": True}, ZH["photo"]),
    ("photo with a caption", {"photo": True, "caption": "牛腩配什么"}, ZH["photo"]),
    ("voice", {"voice": True}, ZH["voice"]),
    ("document", {"document": True}, ZH["non_text"]),
    ("no language code", {"text": "你好", "language_code": None}, ZH["greeting"]),
    ("unknown language", {"text": "hello", "language_code": "ru"}, "Hi there"),
    ("location", {"location": True}, ZH["non_text"]),
]

# Callback data a user (or a forger) can send; every one must be answered, never crash.
CALLBACKS: list[str] = [
    "zzz:1",
    "c:like:abc",
    "c:like:999999999",
    "c:like:-1",
    "c:hack:1000000001",
    "c:like:1:extra",
    "c:like",
    "m:5",
    "m:not-a-number",
    "o:diet:0",
    "o:diet:99",
    "o:nope:1",
    "p:hack",
    "q:evil",
    "h:nope",
    "l:fr",
    ":",
    "x" * 64,
    "长" * 21,
    "c:like:" + "9" * 57,
]


async def _message_case(rb: RunningBot, user: int, kwargs: dict[str, Any], expect: str | None) -> None:
    kwargs = dict(kwargs)
    if kwargs.pop("location", False):
        before = len(rb.api.sent_messages(user))
        sender = {"id": user, "is_bot": False, "first_name": "Loc", "language_code": "zh"}
        await rb.push({"message": {
            "message_id": 1, "date": int(time.time()), "chat": {"id": user, "type": "private"},
            "from": sender, "location": {"latitude": 31.2, "longitude": 121.5},
        }})
        new = rb.api.sent_messages(user)[before:]
    else:
        new = await rb.send(user, **kwargs)
    assert new, f"no reply for {kwargs!r}"
    for message in new:
        assert len(message["text"]) <= 4096
        assert all(len(b["callback_data"].encode()) <= 64 for b in buttons(message))
    if expect is not None:
        assert any(expect in m["text"] for m in new), [m["text"][:80] for m in new]


async def test_bad_message_corpus(bot_env: BotEnv) -> None:
    async with running_bot(bot_env) as rb:
        for n, (name, kwargs, expect) in enumerate(MESSAGES):
            try:
                await _message_case(rb, 8000 + n, kwargs, expect)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        assert rb.stats.errors == [], "the error handler was hit"
    entries = bot_env.store.query("SELECT payload FROM events WHERE kind = 'start_deeplink' AND user_id >= 8000")
    payloads = [e["payload"] for e in entries]
    assert any("unknown_campaign" in p for p in payloads) and any("referral" in p for p in payloads)
    assert not any("spring$sale" in p for p in payloads)  # malformed payloads are logged, not stored


async def test_forged_and_stale_callbacks(bot_env: BotEnv) -> None:
    async with running_bot(bot_env) as rb:
        user = 8500
        await rb.say(user, "/start")
        for data in CALLBACKS:
            since = rb.api.call_count
            update = await rb.callback(user, data)
            query_id = update["callback_query"]["id"]
            answer = await rb.api.wait_for(
                "answerCallbackQuery", lambda c, q=query_id: c.params.get("callback_query_id") == q, since=since
            )
            assert answer.ok and answer.params.get("text"), f"{data!r} was not answered politely"
        assert rb.stats.errors == []


async def test_edited_and_group_messages_are_ignored(bot_env: BotEnv) -> None:
    async with running_bot(bot_env) as rb:
        user = 8600
        [reply] = await rb.say(user, "你好")
        original = rb.api.messages(user)[0]["message_id"]
        target = rb.stats.processed + 1
        rb.api.push_edited_message(user, original, "零基础想学川菜")
        await rb.stats.wait_processed(target)
        assert rb.api.sent_messages(user) == [reply]  # an edit does not trigger a second answer

        group = -100_123
        await rb.send(user, text="零基础想学川菜", chat_id=group, chat_type="supergroup")
        assert rb.api.sent_messages(group) == []  # the customer bot talks in private chats only
        assert rb.stats.errors == []


async def test_stale_page_after_a_new_question(bot_env: BotEnv) -> None:
    async with running_bot(bot_env) as rb:
        user = 8700
        [old] = await rb.say(user, "想学烘焙")
        await rb.say(user, "火锅食材包")
        toast = await rb.press(user, "更多", message_id=old["message_id"])
        assert toast["text"] == ZH["stale_page"]
        assert rb.stats.errors == []
