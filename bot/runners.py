"""Dispatcher assembly and the two ways to run it: long polling and a webhook (aiohttp)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats
from aiogram.webhook.aiohttp_server import setup_application
from aiohttp import web

from bot import customer, marketer_feedback, referral
from bot.cart_dialogue import CartDialogue
from bot.customer import checkout as checkout_router
from bot.dialogue import DialogueService
from bot.marketer import get_router as marketer_router
from bot.metrics import UpdateMetricsMiddleware
from bot.middlewares import (
    BotStats,
    IdempotencyMiddleware,
    StaleButtonMiddleware,
    StoreMiddleware,
    ThrottlingMiddleware,
    make_error_handler,
)
from bot.retry import install_request_middlewares
from bot.security import SecretCheckingRequestHandler
from bot.storage import SQLiteStorage
from bot.support import SupportService
from bot.support import get_router as support_router
from bot.texts import Texts
from core.logging import log_event
from core.metrics import metrics_view
from core.store import Store

log = logging.getLogger(__name__)

COMMANDS: dict[str, list[tuple[str, str]]] = {
    "zh": [
        ("start", "开始 / 欢迎"),
        ("profile", "我的口味资料"),
        ("coupons", "我的优惠券"),
        ("cart", "购物车"),
        ("orders", "我的订单"),
        ("invite", "邀请好友得券"),
        ("consult", "人工客服"),
        ("help", "使用帮助"),
        ("privacy", "隐私说明"),
        ("mydata", "导出我的数据"),
        ("forget", "删除我的数据"),
        ("lang", "切换 English"),
    ],
    "en": [
        ("start", "Start / welcome"),
        ("profile", "My taste profile"),
        ("coupons", "My coupons"),
        ("cart", "My cart"),
        ("orders", "My orders"),
        ("invite", "Invite friends"),
        ("consult", "Talk to a human"),
        ("help", "Help"),
        ("privacy", "What we store"),
        ("mydata", "Export my data"),
        ("forget", "Delete my data"),
        ("lang", "切换中文"),
    ],
}


def make_bot(token: str, api_base: str | None = None) -> Bot:
    """A Bot whose requests go to `api_base` (a self-hosted Bot API server or the fake one in tests)."""
    session = None
    if api_base and api_base.rstrip("/") != PRODUCTION.base.split("/bot", 1)[0]:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base.rstrip("/")))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    install_request_middlewares(bot)  # wait out 429s and retry; tolerate late callback answers
    return bot


def build_dispatcher(
    dialogue: DialogueService,
    fsm_store: Store,
    *,
    texts: Texts | None = None,
    stats: BotStats | None = None,
    throttle_rate: int = 5,
    throttle_per: float = 3.0,
    throttle_callback_rate: int = 12,
    throttle_callback_per: float = 6.0,
    events_isolation: BaseEventIsolation | None = None,
    storage: BaseStorage | None = None,
    support: SupportService | None = None,
    **workflow_data: Any,
) -> Dispatcher:
    """Routers, middlewares and FSM storage over SQLite.

    `fsm_store` is a connection for the event-loop thread (FSM state, processed update ids); the
    dialogue keeps its own connection on its worker thread. Both may point at the same file.
    """
    texts = texts or dialogue.t
    stats = stats or BotStats()
    # Checkout (issue 14): without XIANKE_PAYMENT_PROVIDER_TOKEN, carts with goods become order requests.
    workflow_data.setdefault("payment_provider_token", None)
    workflow_data.setdefault("cart", CartDialogue(dialogue, payments_enabled=bool(workflow_data["payment_provider_token"])))
    dp = Dispatcher(
        storage=storage or SQLiteStorage(fsm_store),
        events_isolation=events_isolation or SimpleEventIsolation(),
        stats=stats,
        texts=texts,
        **workflow_data,
    )
    dp.update.outer_middleware(UpdateMetricsMiddleware())  # first: times everything below
    dp.update.outer_middleware(IdempotencyMiddleware(fsm_store, stats))
    throttling = ThrottlingMiddleware(
        texts, rate=throttle_rate, per=throttle_per, callback_rate=throttle_callback_rate,
        callback_per=throttle_callback_per, stats=stats,
    )
    dp.update.outer_middleware(throttling)
    dp.update.outer_middleware(StaleButtonMiddleware(dialogue))  # before a customer row is (re)created
    dp.update.outer_middleware(StoreMiddleware(dialogue))
    dp.errors.register(make_error_handler(texts, stats))
    # Marketers first: their wizard answers are free text the customer router would take for questions.
    dp.include_router(marketer_feedback.get_router())  # 判断有误 buttons under digests and alerts
    dp.include_router(marketer_router())
    # Before support: payments and /order must not be relayed as consultation chat.
    dp.include_router(checkout_router.get_router(support.staff_chat_id if support is not None else None))
    if support is not None:  # staff topics, and customers with an open ticket talk to staff, not the recommender
        dp["support"] = support
        dp.include_router(support_router(support.staff_chat_id))
        dp.startup.register(support.check_staff_chat)
    dp.include_router(referral.get_router())  # /invite before the customer fallback takes it as unknown
    dp.include_router(customer.get_router())
    return dp


async def set_commands(bot: Bot) -> None:
    """The command menu, in Chinese (default) and English."""
    scope = BotCommandScopeAllPrivateChats()
    zh = [BotCommand(command=c, description=d) for c, d in COMMANDS["zh"]]
    en = [BotCommand(command=c, description=d) for c, d in COMMANDS["en"]]
    await bot.set_my_commands(zh, scope=scope)
    await bot.set_my_commands(zh, scope=scope, language_code="zh")
    await bot.set_my_commands(en, scope=scope, language_code="en")


async def run_polling(bot: Bot, dp: Dispatcher, *, handle_signals: bool = True, polling_timeout: int = 10) -> None:
    """Long polling: drop any webhook first (Telegram refuses getUpdates while one is set)."""
    await bot.delete_webhook(drop_pending_updates=False)
    await set_commands(bot)
    log_event(log, "polling started")
    await dp.start_polling(
        bot,
        allowed_updates=dp.resolve_used_update_types(),
        handle_signals=handle_signals,
        polling_timeout=polling_timeout,
    )


def make_webhook_app(bot: Bot, dp: Dispatcher, *, url: str, path: str = "/telegram/webhook", secret: str | None) -> web.Application:
    """aiohttp app: POST `path` (secret header checked), GET /healthz; setWebhook + menu on start-up."""

    async def on_startup(bot: Bot) -> None:
        await set_commands(bot)
        await bot.set_webhook(
            url, secret_token=secret, allowed_updates=dp.resolve_used_update_types(), drop_pending_updates=False
        )
        log_event(log, "webhook set", url=url)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def on_shutdown(bot: Bot) -> None:
        await bot.session.close()  # the webhook itself stays set, so Telegram queues updates meanwhile

    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    app = web.Application()
    SecretCheckingRequestHandler(dp, bot, secret_token=secret).register(app, path=path)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    setup_application(app, dp, bot=bot)
    return app
