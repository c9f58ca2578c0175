"""Segments: RFM + behaviour features, seeded KMeans with readable names, and rule filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commerce.campaigns import SegmentRule
from commerce.segments import segment_users, select_users, user_features
from core.repos.coupons import iso_utc
from core.store import Store, dumps

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def add_user(store: Store, uid: int, *, diet: list[str] | None = None, language: str = "zh", **flags: int) -> None:
    store.db.execute(
        "INSERT INTO users (id, first_name, language, profile, created_at) VALUES (?, ?, ?, ?, ?)",
        [uid, f"u{uid}", language, dumps({"diet": diet or []}), iso_utc(NOW - timedelta(days=400))],
    )
    for flag, value in flags.items():
        store.db.execute(f"UPDATE users SET {flag} = ? WHERE id = ?", [value, uid])


def add_order(store: Store, uid: int, days_ago: float, items: list[tuple[str, int]], n: list[int] = [0]) -> None:  # noqa: B006
    n[0] += 1
    total = sum(price for _, price in items)
    cursor = store.db.execute(
        "INSERT INTO orders (external_id, user_id, total_cents, created_at) VALUES (?, ?, ?, ?)",
        [f"o{n[0]}-{uid}", uid, total, iso_utc(NOW - timedelta(days=days_ago))],
    )
    for slug, price in items:
        store.db.execute(
            "INSERT INTO order_items (order_id, item_slug, quantity, price_cents) VALUES (?, ?, 1, ?)",
            [cursor.lastrowid, slug, price],
        )


def add_likes(store: Store, uid: int, count: int) -> None:
    for i in range(count):
        store.db.execute(
            "INSERT INTO events (user_id, kind, item_slug, created_at) VALUES (?, 'like', ?, ?)",
            [uid, f"course/c{i}", iso_utc(NOW - timedelta(days=3 + i))],
        )


@pytest.fixture
def shop(store: Store) -> Store:
    """Five behaviour groups of 12 users each, with a little jitter so clusters are not degenerate."""
    with store.transaction():
        for i in range(12):
            vip = 1000 + i  # frequent, big spenders, recent
            add_user(store, vip, diet=["素食"] if i % 2 else [])
            for d in range(10 + i % 3):
                add_order(store, vip, 2 + d * 20, [("kit/mapo", 8900), ("course/knife", 29900)])
            course = 2000 + i  # buy courses, a couple of times, a month ago
            add_user(store, course)
            add_order(store, course, 20 + i, [("course/baking", 19900)])
            add_order(store, course, 60 + i, [("course/dumplings", 15900)])
            kit = 3000 + i  # fresh-food buyers
            add_user(store, kit, language="en" if i < 3 else "zh")
            for d in range(3):
                add_order(store, kit, 10 + i + 15 * d, [("ingredient/tofu", 900), ("kit/hotpot", 6900)])
            dormant = 4000 + i  # bought long ago
            add_user(store, dormant)
            add_order(store, dormant, 250 + i * 5, [("kit/mapo", 8900)])
            browser = 5000 + i  # never bought, likes things
            add_user(store, browser)
            add_likes(store, browser, 4 + i % 3)
        add_user(store, 9001, opted_out=1)
        add_user(store, 9002, blocked_bot=1)
        add_user(store, 9003, banned=1)
    return store


def test_features_rfm(shop: Store) -> None:
    df = user_features(shop, NOW)
    assert df.loc[1000, "frequency"] == 10 and df.loc[1000, "recency_days"] == pytest.approx(2, abs=0.01)
    assert df.loc[2000, "course_share"] == 1.0 and df.loc[3000, "kit_share"] == 1.0
    assert df.loc[5000, "recency_days"] == 365 and df.loc[5000, "likes"] == 4 and df.loc[5000, "bought"] == 0
    assert df.loc[4000, "frequency"] == 1 and df.loc[4000, "monetary_yuan"] == 89.0


def test_segments_are_named_from_profiles_and_deterministic(shop: Store) -> None:
    first = segment_users(shop, NOW, k=5, seed=3)
    again = segment_users(shop, NOW, k=5, seed=3)
    assert first.labels == again.labels
    assert len(set(first.names())) == 5  # names are unique
    assert first.labels[1000] == "高价值常客"
    assert first.labels[2005] == "课程党"
    assert first.labels[3005] == "食材党"
    assert first.labels[4005] == "沉睡用户"
    assert first.labels[5005] == "潜在用户"
    assert 9003 not in first.labels  # banned users are never segmented
    vip = first.get("高价值常客")
    assert vip is not None and vip.size == 12 and "课程占比" in vip.describe_zh()


def test_rule_filters(shop: Store) -> None:
    everyone = select_users(shop, SegmentRule(), NOW)
    assert 9001 not in everyone and 9002 not in everyone and 9003 not in everyone
    assert len(everyone) == 60
    buyers = select_users(shop, SegmentRule(min_orders=1, last_active_days=45), NOW)
    assert set(buyers) == {u for u in everyone if u < 4000}  # dormant and browsers drop out
    veg = select_users(shop, SegmentRule(segment="高价值常客", diet="素食"), NOW)
    assert veg == [1001, 1003, 1005, 1007, 1009, 1011]
    english_kit = select_users(shop, SegmentRule(bought="ingredient", language="en"), NOW)
    assert english_kit == [3000, 3001, 3002]
    assert select_users(shop, SegmentRule(inactive_days=200), NOW) == list(range(4000, 4012))
    with pytest.raises(ValueError, match="现有人群"):
        select_users(shop, SegmentRule(segment="不存在"), NOW)


def test_tiny_and_empty_stores(store: Store) -> None:
    assert segment_users(store, NOW).segments == []
    add_user(store, 1)
    seg = segment_users(store, NOW, k=5)
    assert [s.size for s in seg.segments] == [1]
