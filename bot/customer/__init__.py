"""Customer-facing routers, one module per conversation area; `get_router()` assembles them."""

from __future__ import annotations

from aiogram import F, Router

from bot.customer import fallback, profile, shopping, start, support
from bot.customer import privacy as privacy_commands


def get_router() -> Router:
    router = Router(name="customer")
    router.message.filter(F.chat.type == "private")
    router.edited_message.filter(F.chat.type == "private")
    router.include_router(privacy_commands.get_router())  # /mydata, /forget: before free text and fallback
    for module in (start, profile, support, shopping, fallback):  # fallback last: it catches the rest
        router.include_router(module.get_router())
    return router
