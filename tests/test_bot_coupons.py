"""CouponRepository: readable unique codes, one live coupon per (user, rule), events for every issue."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.repos import CouponRepository, EventRepository, UserRepository
from core.repos.coupons import CODE_ALPHABET
from core.store import Store


def test_issue_once_list_and_expiry(store: Store) -> None:
    UserRepository(store).ensure(1, first_name="A")
    coupons = CouponRepository(store, EventRepository(store))
    first, created = coupons.issue_once(1, rule="xsell:kit:course/a", target_type="kit", discount_cents=1000,
                                        min_spend_cents=5000, item_slug="course/a")
    again, created_again = coupons.issue_once(1, rule="xsell:kit:course/a", target_type="kit", discount_cents=1000)
    assert created and not created_again and again["code"] == first["code"]
    assert re.fullmatch(rf"XK-[{CODE_ALPHABET}]{{6}}", first["code"])
    assert coupons.get(first["code"].lower())["id"] == first["id"]
    old = coupons.issue(1, rule="old", target_type="any", discount_cents=500,
                        now=datetime.now(UTC) - timedelta(days=30), days_valid=14)
    listed = {row["code"]: row["status"] for row in coupons.list_for(1)}
    assert listed == {first["code"]: "issued", old["code"]: "expired"}
    issued = store.query("SELECT item_slug, payload FROM events WHERE kind = 'coupon_issued' ORDER BY id")
    assert len(issued) == 2 and issued[0]["item_slug"] == "course/a" and first["code"] in issued[0]["payload"]
    codes = {coupons.issue(1, rule=f"r{n}", target_type="course", discount_cents=100)["code"] for n in range(50)}
    assert len(codes) == 50
    with pytest.raises(ValueError, match="target_type"):
        coupons.issue(1, rule="x", target_type="shoes", discount_cents=100)
