"""Order import (CSV / JSON) and the order webhook: per-row reasons, idempotency, coupons, attribution."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from commerce.campaigns import Campaign, CampaignRepository, arm_for, record_entry
from commerce.orders import import_orders, record_orders
from core.repos.coupons import CouponRepository
from core.store import Store, loads
from web.orders import make_order_webhook_app

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOKEN = "orders-token-for-tests"


@pytest.fixture
def shop(store: Store) -> Store:
    for uid in (101, 102, 103):
        store.db.execute("INSERT INTO users (id, first_name) VALUES (?, ?)", [uid, f"顾客{uid}"])
    return store


def purchases(store: Store) -> list[dict]:
    return store.query("SELECT user_id, campaign_id, payload FROM events WHERE kind = 'purchase' ORDER BY id")


def order_json(tmp_path: Path, orders: list[dict], name: str = "orders.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(orders, ensure_ascii=False), encoding="utf-8")
    return path


def test_csv_import_keeps_good_rows_and_names_bad_ones(shop: Store) -> None:
    report = import_orders(shop, DATA / "orders_lines.csv", now=NOW)
    assert report.added == 3 and report.duplicates == 0
    problems = {p.external_id: (p.where, " ".join(p.reasons)) for p in report.rejected}
    assert set(problems) == {"B1", "B2", "B3", "B4", "B5", "B6"}
    assert "user_id / coupon_code" in problems["B1"][1]
    assert problems["B2"][0] == "第 6 行" and "created_at" in problems["B2"][1]
    assert "slug" in problems["B3"][1] and "quantity" in problems["B4"][1]
    assert "不是机器人的用户" in problems["B5"][1]
    assert problems["B6"][0] == "第 10–11 行" and "user_id" in problems["B6"][1]
    # A1's two CSV lines became one order with two items; the total is the sum of its lines.
    a1 = shop.query("SELECT id, total_cents, created_at FROM orders WHERE external_id = 'A1'")[0]
    assert a1["total_cents"] == 2 * 5900 + 900 and a1["created_at"] == "2026-11-20T02:00:00.000Z"  # Asia/Shanghai
    assert shop.scalar("SELECT count(*) FROM order_items WHERE order_id = ?", [a1["id"]]) == 2
    events = purchases(shop)
    assert len(events) == 3 and loads(events[0]["payload"])["order"] == "A1"

    again = import_orders(shop, DATA / "orders_lines.csv", now=NOW)
    assert again.added == 0 and again.duplicates == 3 and len(again.rejected) == 6
    assert shop.scalar("SELECT count(*) FROM orders") == 3 and len(purchases(shop)) == 3


def test_json_import(shop: Store) -> None:
    report = import_orders(shop, DATA / "orders_batch.json", now=NOW)
    assert report.added == 2
    reasons = {p.lines[0]: " ".join(p.reasons) for p in report.rejected}
    assert set(reasons) == {3, 4, 5}
    assert "items" in reasons[3]
    assert "user_id" in reasons[4] and "price_cents" in reasons[4]
    assert "对象" in reasons[5]
    j1 = shop.query("SELECT total_cents FROM orders WHERE external_id = 'J1'")[0]
    assert j1["total_cents"] == 12000  # a given total (after the shop's own discounts) wins
    j2 = shop.query("SELECT o.total_cents, i.quantity FROM orders o JOIN order_items i ON i.order_id = o.id "
                    "WHERE external_id = 'J2'")
    assert j2 == [{"total_cents": 13800, "quantity": 2}]  # duplicate lines of one slug are merged


def test_coupon_redemption_through_import(shop: Store, tmp_path: Path) -> None:
    campaigns = CampaignRepository(shop)
    spring = campaigns.create(Campaign.build(
        slug="spring_qr", name="春季海报", starts_at=NOW - timedelta(days=30), attribution_days=7,
        coupon_rule={"trigger": "entry", "target_type": "kit", "discount_cents": 1000, "min_spend_cents": 5000,
                     "days_valid": 10},
    ))
    entry = record_entry(shop, 101, "spring_qr", now=NOW - timedelta(days=20))
    assert entry is not None and entry.coupon is not None
    code = entry.coupon["code"]
    t0 = NOW - timedelta(days=19)
    orders = [
        # No user id: the coupon says who the customer is. 2 × ¥59 kits − ¥10.
        {"external_id": "C1", "coupon_code": code.lower(), "created_at": t0.isoformat(),
         "items": [{"slug": "kit/mapo-tofu", "quantity": 2, "price_cents": 5900}]},
        {"external_id": "C2", "user_id": 101, "coupon_code": code, "created_at": (t0 + timedelta(hours=1)).isoformat(),
         "items": [{"slug": "kit/mapo-tofu", "price_cents": 5900}]},
    ]
    report = import_orders(shop, order_json(tmp_path, orders), now=NOW)
    assert report.added == 2 and report.coupons_redeemed == 1
    assert [p.external_id for p in report.warnings] == ["C2"] and "使用过" in report.warnings[0].reasons[0]
    c1 = shop.query("SELECT id, user_id, total_cents FROM orders WHERE external_id = 'C1'")[0]
    assert c1["user_id"] == 101 and c1["total_cents"] == 2 * 5900 - 1000
    coupon = CouponRepository(shop).get(code)
    assert coupon["status"] == "redeemed" and coupon["order_id"] == c1["id"]
    redeem = shop.query("SELECT user_id, campaign_id, payload FROM events WHERE kind = 'redeem'")
    assert len(redeem) == 1 and redeem[0]["campaign_id"] == spring.id
    first = purchases(shop)[0]
    assert first["campaign_id"] == spring.id and loads(first["payload"])["attribution"] == "coupon"


def test_import_refuses_expired_foreign_and_small_orders_but_keeps_them(shop: Store, tmp_path: Path) -> None:
    coupons = CouponRepository(shop)
    mine = coupons.issue(101, rule="t", target_type="course", discount_cents=2000, min_spend_cents=10000,
                         days_valid=3, now=NOW - timedelta(days=10))
    other = coupons.issue(102, rule="t", target_type="any", discount_cents=500, now=NOW - timedelta(days=1))
    small = coupons.issue(103, rule="t", target_type="course", discount_cents=2000, min_spend_cents=10000,
                          now=NOW - timedelta(days=1))
    at = (NOW - timedelta(hours=2)).isoformat()
    orders = [
        {"external_id": "E1", "user_id": 101, "coupon_code": mine["code"], "created_at": at,
         "items": [{"slug": "course/knife-skills", "price_cents": 19900}]},
        {"external_id": "E2", "user_id": 101, "coupon_code": other["code"], "created_at": at,
         "items": [{"slug": "kit/hotpot", "price_cents": 6900}]},
        {"external_id": "E3", "user_id": 103, "coupon_code": small["code"], "created_at": at,
         "items": [{"slug": "course/knife-skills", "price_cents": 5900}, {"slug": "kit/hotpot", "price_cents": 9000}]},
    ]
    report = import_orders(shop, order_json(tmp_path, orders), now=NOW)
    assert report.added == 3 and report.coupons_redeemed == 0
    why = {p.external_id: p.reasons[0] for p in report.warnings}
    assert "过期" in why["E1"] and "其他顾客" in why["E2"] and "满 ¥100" in why["E3"] and "¥59" in why["E3"]
    assert shop.scalar("SELECT count(*) FROM coupons WHERE status = 'redeemed'") == 0


def test_attribution_window_and_latest_entry(shop: Store) -> None:
    repo = CampaignRepository(shop)
    poster = repo.create(Campaign.build(slug="poster", name="海报", attribution_days=7))
    partner = repo.create(Campaign.build(slug="partner", name="合作推文", channel="partner_post", attribution_days=3))
    t = NOW - timedelta(days=30)
    record_entry(shop, 101, "poster", now=t)
    record_entry(shop, 102, "poster", now=t)
    record_entry(shop, 102, "partner", now=t + timedelta(days=2))  # the latest entry wins
    rows = [
        ((1,), {"external_id": "in", "user_id": 101, "created_at": (t + timedelta(days=3)).isoformat(),
                "items": [{"slug": "kit/hotpot", "price_cents": 6900}]}),
        ((2,), {"external_id": "late", "user_id": 101, "created_at": (t + timedelta(days=7, hours=1)).isoformat(),
                "items": [{"slug": "kit/hotpot", "price_cents": 6900}]}),
        ((3,), {"external_id": "before", "user_id": 101, "created_at": (t - timedelta(hours=1)).isoformat(),
                "items": [{"slug": "kit/hotpot", "price_cents": 6900}]}),
        ((4,), {"external_id": "latest", "user_id": 102, "created_at": (t + timedelta(days=4)).isoformat(),
                "items": [{"slug": "kit/hotpot", "price_cents": 6900}]}),
        # partner's 3-day window has passed, but poster's 7-day window has not: the newest *live* entry counts
        ((5,), {"external_id": "fallback", "user_id": 102, "created_at": (t + timedelta(days=6)).isoformat(),
                "items": [{"slug": "kit/hotpot", "price_cents": 6900}]}),
    ]
    report = record_orders(shop, rows, now=NOW)
    assert report.added == 5 and report.attributed == 3
    got = {loads(e["payload"])["order"]: e["campaign_id"] for e in purchases(shop)}
    assert got == {"in": poster.id, "late": None, "before": None, "latest": partner.id, "fallback": poster.id}
    assert repo.stats(poster.id)["attributed_orders"] == 2


def test_purchase_rule_issues_one_cross_sell_coupon(shop: Store) -> None:
    repo = CampaignRepository(shop)
    rule = {"trigger": "purchase_kit", "target_type": "course", "discount_cents": 3000, "min_spend_cents": 15000}
    cross = repo.create(Campaign.build(slug="kit2course", name="买食材包送课程券", holdout_pct=50, coupon_rule=rule))
    treated = next(u for u in range(200, 400) if arm_for(cross.id, u, 50) == "treatment")
    held = next(u for u in range(200, 400) if arm_for(cross.id, u, 50) == "holdout")
    for uid in (treated, held):
        shop.db.execute("INSERT INTO users (id) VALUES (?)", [uid])
    at = (NOW - timedelta(days=1)).isoformat()

    def kit_order(ext: str, uid: int, slug: str = "kit/hotpot") -> tuple:
        return ((1,), {"external_id": ext, "user_id": uid, "created_at": at, "items": [{"slug": slug, "price_cents": 6900}]})

    report = record_orders(shop, [kit_order("k1", treated), kit_order("k2", treated), kit_order("k3", held),
                                  kit_order("i1", 101, "ingredient/tofu")], now=NOW)
    assert [c["user_id"] for c in report.coupons_issued] == [treated]
    coupon = CouponRepository(shop).for_campaign(treated, cross.id)
    assert coupon["target_type"] == "course" and coupon["discount_cents"] == 3000
    assert CouponRepository(shop).for_campaign(held, cross.id) is None
    arms = dict(shop.db.execute("SELECT user_id, arm FROM campaign_assignments WHERE campaign_id = ?", [cross.id]).fetchall())
    assert arms == {treated: "treatment", held: "holdout"}  # 101 bought no kit: not part of the experiment

    # An old order imported long after its coupon would have expired hands out nothing.
    old = ((1,), {"external_id": "old", "user_id": 102, "created_at": (NOW - timedelta(days=60)).isoformat(),
                  "items": [{"slug": "kit/hotpot", "price_cents": 6900}]})
    repo.update("kit2course", starts_at=NOW - timedelta(days=90))
    assert record_orders(shop, [old], now=NOW).coupons_issued == []


# -- webhook -----------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    db = tmp_path / "orders.db"
    setup = Store(db)
    setup.db.execute("INSERT INTO users (id) VALUES (101)")
    setup.close()
    app = make_order_webhook_app(lambda: Store(db), TOKEN, max_bytes=4096, max_orders=20)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        test_client.db_path = db  # type: ignore[attr-defined]
        yield test_client


def webhook_order(ext: str, **extra: object) -> dict:
    return {"external_id": ext, "user_id": 101, "created_at": "2026-11-28T10:00:00+08:00",
            "items": [{"slug": "kit/hotpot", "quantity": 1, "price_cents": 6900}], **extra}


async def test_webhook_statuses(client: TestClient) -> None:
    assert (await client.post("/v1/orders", json=webhook_order("w1"))).status == 401
    wrong = await client.post("/v1/orders", json=webhook_order("w1"), headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and "Bearer" in wrong.headers["WWW-Authenticate"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    json_type = {**auth, "Content-Type": "application/json"}
    assert (await client.post("/v1/orders", data=b"{not json", headers=json_type)).status == 400
    plain = await client.post("/v1/orders", data=b"[]", headers={**auth, "Content-Type": "text/plain"})
    assert plain.status == 415
    big = await client.post("/v1/orders", json=[webhook_order(f"b{i}", note="x" * 300) for i in range(20)], headers=auth)
    assert big.status == 413

    mixed = await client.post("/v1/orders", json={"orders": [webhook_order("w1"), webhook_order("w2", user_id="abc")]},
                              headers=auth)
    assert mixed.status == 422
    body = await mixed.json()
    assert body["added"] == 1 and body["rejected"][0]["index"] == 2 and "user_id" in body["rejected"][0]["reasons"][0]

    retry = await client.post("/v1/orders", json=webhook_order("w1"), headers=auth)  # a retried delivery
    assert retry.status == 200 and (await retry.json())["duplicates"] == 1
    store = Store(client.db_path)  # type: ignore[attr-defined]
    try:
        assert store.query("SELECT external_id, source FROM orders") == [{"external_id": "w1", "source": "webhook"}]
    finally:
        store.close()


def test_unusable_files_are_refused_whole(shop: Store, tmp_path: Path) -> None:
    from listening.ingest import FileRejected

    no_items = tmp_path / "orders.csv"
    no_items.write_text("external_id,user_id,created_at\nA,101,2026-11-20\n", encoding="utf-8")
    with pytest.raises(FileRejected, match="item_slug"):
        import_orders(shop, no_items, now=NOW)
    with pytest.raises(FileRejected, match="不支持"):
        import_orders(shop, order_json(tmp_path, [], name="orders.xlsx"), now=NOW)
    gbk = tmp_path / "gbk.csv"  # shop exports from Windows are often GBK
    gbk.write_bytes("external_id,user_id,created_at,item_slug,price_cents\n甲1,101,2026-11-20,kit/hotpot,6900\n"
                    .encode("gbk"))
    assert import_orders(shop, gbk, now=NOW).added == 1
