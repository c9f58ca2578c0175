"""Live consultations (人工客服) through a staff supergroup with Topics: one forum topic per customer.

`from_customer` (private chats) and `from_forum` (the staff chat) each expose `get_router()`;
`get_router(staff_chat_id)` assembles both behind the ticket-lookup middleware. Include it before
the customer router: a customer with an open ticket talks to staff, not to the recommender.
"""

from __future__ import annotations

from aiogram import Router

from bot.support import from_customer, from_forum
from bot.support.middlewares import TicketMiddleware
from bot.support.service import SupportService

__all__ = ["SupportService", "get_router"]


def get_router(staff_chat_id: int) -> Router:
    router = Router(name="support")
    router.message.outer_middleware(TicketMiddleware())
    router.edited_message.outer_middleware(TicketMiddleware())
    router.include_routers(from_forum.get_router(staff_chat_id), from_customer.get_router())
    return router
