"""Tests of the fake Telegram Bot API server, driven by a real aiogram Bot / Dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.fakebot import FakeBotAPI

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

USER = 1001
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x06\x00\x00\x00"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> Bot:
    return api.make_bot()


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)] for text, data in pairs]
    )


async def test_get_me_and_unknown_method(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456 and me.is_bot and me.username == "xianke_test_bot"

    class Bogus(TelegramMethod[bool]):
        __returning__ = bool
        __api_method__ = "doesNotExist"

    with pytest.raises(TelegramNotFound, match="method not found"):
        await bot(Bogus())
    assert [c.method for c in api.calls()] == ["getMe", "doesNotExist"]
    assert api.calls("getme")[0].ok


async def test_bad_token_is_unauthorized(api: FakeBotAPI) -> None:
    other = api.make_bot(token="42:wrong-token")
    with pytest.raises(TelegramUnauthorizedError):
        await other.get_me()
    assert api.last_call().status == 401


async def test_send_and_edit_message(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(
        USER, "  <b>你好</b> &amp; hi  ", parse_mode="HTML", reply_markup=keyboard(("Buy", "buy:1"))
    )
    assert sent.text == "你好 & hi"
    assert sent.from_user and sent.from_user.id == bot.id
    assert sent.entities and sent.entities[0].type == "bold" and sent.entities[0].length == 2
    assert sent.reply_markup and sent.reply_markup.inline_keyboard[0][0].callback_data == "buy:1"
    call = api.last_call("sendMessage")
    assert call.params["chat_id"] == USER
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Buy"

    second = await bot.send_message(USER, "two")
    assert second.message_id == sent.message_id + 1

    edited = await bot.edit_message_text(
        text="changed", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("Ok", "ok"))
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    seen = api.get_message(USER, sent.message_id)
    assert seen["text"] == "changed" and seen["reply_markup"]["inline_keyboard"][0][0]["text"] == "Ok"
    assert api.texts(USER) == ["changed", "two"]

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="changed", chat_id=USER, message_id=sent.message_id, reply_markup=keyboard(("Ok", "ok"))
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=999)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "1 < 2 <br>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="reserved"):
        await bot.send_message(USER, "price 9.5", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=keyboard(("Long", "x" * 65)))

    assert await bot.delete_message(USER, second.message_id)
    assert api.last_message(USER)["text"] == "changed"


async def test_send_photo_upload_and_file_id(api: FakeBotAPI, bot: Bot) -> None:
    msg = await bot.send_photo(USER, BufferedInputFile(PNG, filename="dish.png"), caption="红烧肉")
    call = api.last_call("sendPhoto")
    assert call.params["photo"].startswith("attach://")
    assert call.files[call.params["photo"].removeprefix("attach://")] == PNG
    assert msg.photo and msg.photo[-1].width == 2 and msg.caption == "红烧肉"
    file_id = msg.photo[-1].file_id
    assert api.file_bytes(file_id) == PNG

    again = await bot.send_photo(USER, file_id)
    assert again.photo and again.photo[-1].file_id == file_id
    downloaded = await bot.download(file_id)
    assert downloaded is not None and downloaded.read() == PNG

    doc = await bot.send_document(USER, BufferedInputFile(b"a,b\n1,2\n", filename="menu.csv"))
    assert doc.document and doc.document.file_name == "menu.csv"
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "not-a-known-file-id")


async def test_forum_topic_and_copy_message(api: FakeBotAPI, bot: Bot) -> None:
    group = -1001234567890
    api.add_chat(group, "supergroup", title="Kitchen", is_forum=True)
    topic = await bot.create_forum_topic(group, "Order #7")
    assert topic.name == "Order #7" and topic.message_thread_id > 0

    update = api.push_message(USER, "我想订两份", username="alice")
    user_message_id = update["message"]["message_id"]
    copied = await bot.copy_message(group, USER, user_message_id, message_thread_id=topic.message_thread_id)
    stored = api.get_message(group, copied.message_id)
    assert stored["text"] == "我想订两份"
    assert stored["message_thread_id"] == topic.message_thread_id and stored["is_topic_message"]

    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(group, USER, 4242)
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(USER, "nope")

    assert await bot.close_forum_topic(group, topic.message_thread_id)
    api.delete_topic(group, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group, "late", message_thread_id=topic.message_thread_id)


async def test_injected_errors(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as exc_info:
        await bot.send_message(USER, "hi")
    assert exc_info.value.retry_after == 7
    assert api.last_call().status == 429
    assert (await bot.send_message(USER, "hi")).text == "hi"  # only fails once

    api.fail_next("sendMessage", 403, chat_id=2002)
    assert await bot.send_message(USER, "other chat is fine")
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(2002, "x")

    api.block_user(3003)
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(3003, "x")
    api.unblock_user(3003)
    assert await bot.send_message(3003, "x")


async def test_polling_echo_with_offsets(api: FakeBotAPI) -> None:
    bot = api.make_bot()
    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}", reply_markup=keyboard(("Again 再来", "again")))

    @router.callback_query()
    async def on_click(query: CallbackQuery) -> None:
        await query.answer("ok")

    dp = Dispatcher()
    dp.include_router(router)
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=5))
    try:
        await api.wait_for_poll()  # the long poll is parked: no busy loop
        first = api.push_message(USER, "/start")
        call = await api.wait_for("sendMessage")
        assert call.params["text"] == "echo: /start" and call.params["chat_id"] == USER

        second = api.push_message(USER, "再来一次")
        await api.wait_for("sendMessage", count=2)
        assert api.texts(USER) == ["echo: /start", "echo: 再来一次"]

        # callback queries flow through the same loop and are answered once
        click = api.click_button(USER, "Again")
        assert click["callback_query"]["data"] == "again"
        answered = await api.wait_for("answerCallbackQuery")
        assert answered.ok and api.callback_answers[answered.params["callback_query_id"]]["text"] == "ok"
        await api.wait_for_poll()
    finally:
        await dp.stop_polling()
        await task

    ids = [first["update_id"], second["update_id"], click["update_id"]]
    assert api.delivery_counts == dict.fromkeys(ids, 1)  # nothing delivered twice
    polls = api.calls("getUpdates")
    assert sorted(polls[0].params["allowed_updates"]) == ["callback_query", "message"]
    offsets = [c.params.get("offset") for c in polls]
    assert offsets[0] is None and offsets[-1] == ids[-1] + 1  # the last (cancelled) poll confirmed all
    confirmed = [o for o in offsets if o is not None]
    assert confirmed == sorted(confirmed)  # offsets only move forward


async def test_long_poll_waits_and_conflicts(api: FakeBotAPI, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot(GetUpdates(timeout=1)) == []
    assert loop.time() - started >= 0.9

    poll = asyncio.create_task(bot(GetUpdates(timeout=5)))
    await api.wait_for_poll()
    api.push_message(USER, "wake up")
    updates = await asyncio.wait_for(poll, 1)
    assert [u.message.text for u in updates if u.message] == ["wake up"]

    # an unconfirmed update is delivered again; confirming it drops it
    again = await bot(GetUpdates(timeout=0))
    assert again[0].update_id == updates[0].update_id
    assert await bot(GetUpdates(offset=updates[0].update_id + 1, timeout=0)) == []

    first = asyncio.create_task(bot(GetUpdates(timeout=5)))
    await api.wait_for_poll()
    second = asyncio.create_task(bot(GetUpdates(timeout=0)))
    with pytest.raises(TelegramConflictError):
        await first
    assert await second == []


async def test_webhook_roundtrip(api: FakeBotAPI) -> None:
    bot = api.make_bot()
    router = Router()

    @router.message()
    async def reply(message: Message) -> object:
        return message.answer("via webhook reply")

    dp = Dispatcher()
    dp.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="s3cret", handle_in_background=False).register(app, "/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/hook"
        assert await bot.set_webhook(url, secret_token="s3cret")
        with pytest.raises(TelegramConflictError):
            await bot(GetUpdates(timeout=0))
        update = api.push_message(USER, "hello")
        assert await api.post_webhook(url, update, secret_token="wrong") == 401
        assert (await bot.get_webhook_info()).pending_update_count == 1
        assert await api.post_webhook(url, update, secret_token="s3cret") == 200
        call = api.last_call("sendMessage")
        assert call.via_webhook and call.params["text"] == "via webhook reply"
        assert api.last_message(USER)["text"] == "via webhook reply"
        assert (await bot.get_webhook_info()).pending_update_count == 0
    finally:
        await runner.cleanup()


async def test_commands_and_chat(api: FakeBotAPI, bot: Bot) -> None:
    from aiogram.types import BotCommand

    assert await bot.set_my_commands([BotCommand(command="start", description="开始")], language_code="zh")
    assert api.bot_commands(language_code="zh") == [{"command": "start", "description": "开始"}]
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start"]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start!", description="x")])
    assert await bot.delete_my_commands(language_code="zh")
    assert api.bot_commands(language_code="zh") == []

    api.push_message(USER, "hi", first_name="Alice")
    chat = await bot.get_chat(USER)
    assert chat.type == "private" and chat.first_name == "Alice"
    assert await bot.send_chat_action(USER, "typing")


async def test_manual_session_setup() -> None:
    async with FakeBotAPI() as api:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
        bot = Bot(api.token, session=session)
        try:
            assert (await bot.get_me()).first_name == "XianKe Test Bot"
        finally:
            await bot.session.close()
