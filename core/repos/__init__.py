"""Repositories: one per aggregate, parameters only, multi-row writes in one transaction."""

from core.repos.catalog import CatalogRepository
from core.repos.coupons import CouponRepository
from core.repos.events import EventRepository
from core.repos.users import UserRepository

__all__ = ["CatalogRepository", "CouponRepository", "EventRepository", "UserRepository"]
