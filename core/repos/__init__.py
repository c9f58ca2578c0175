"""Repositories: one per aggregate, parameters only, multi-row writes in one transaction."""

from core.repos.catalog import CatalogRepository
from core.repos.corrections import CorrectionRepository
from core.repos.coupons import CouponRepository
from core.repos.events import EventRepository
from core.repos.tickets import CannedReplyRepository, Ticket, TicketRepository
from core.repos.users import UserRepository

__all__ = [
    "CannedReplyRepository",
    "CatalogRepository",
    "CorrectionRepository",
    "CouponRepository",
    "EventRepository",
    "Ticket",
    "TicketRepository",
    "UserRepository",
]
