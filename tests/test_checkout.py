"""Checkout domain on a real SQLite file with the shipped catalog: cart, coupons, invoices, the
pre-checkout gate, idempotent payment recording, stock, enrolment, attribution and order status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commerce.cart import CNY, XTR, delivery_options, split_invoices
from commerce.checkout import CheckoutService, OpenedInvoice, PaymentFacts, Refusal
from commerce.order_status import orders_for, set_status
from core.repos import CatalogRepository, CouponRepository, EventRepository, UserRepository
from core.store import Store
from recsys.catalog_io import load_shipped

KIT = "kit/mapo-tofu-2p"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def shop(store: Store) -> CheckoutService:
    load_shipped(CatalogRepository(store))
    users = UserRepository(store)
    for uid in (1, 2):
        users.ensure(uid, first_name=f"U{uid}")
    return CheckoutService(store)


def _course(store: Store) -> str:
    return store.query("SELECT slug FROM courses WHERE price_cents > 0 ORDER BY id LIMIT 1")[0]["slug"]


def _pay(shop: CheckoutService, invoice: OpenedInvoice, charge: str, *, user: int = 1, option: str | None = None,
         amount: int | None = None) -> PaymentFacts:
    options = shop.delivery_for(shop.checkout(invoice.payload), NOW) if invoice.draft.currency == CNY else []
    chosen = option or (options[0].option_id if options else None)
    fee = next((o.fee_cents for o in options if o.option_id == chosen), 0)
    return PaymentFacts(user, invoice.draft.currency, invoice.draft.total + fee if amount is None else amount,
                        invoice.payload, charge, f"prov-{charge}", chosen,
                        {"name": "王小明", "phone_number": "13800000000",
                         "shipping_address": {"country_code": "CN", "city": "上海"}})


def _stock(store: Store, slug: str) -> dict[str, int]:
    rows = store.query(
        """SELECT i.slug, i.stock FROM kit_items ki JOIN kits k ON k.id = ki.kit_id
           JOIN ingredients i ON i.id = ki.ingredient_id WHERE k.slug = ?""", [slug])
    return {r["slug"]: r["stock"] for r in rows}


def test_mixed_cart_with_coupon_becomes_two_invoices_and_pays_once(shop: CheckoutService, store: Store) -> None:
    course = _course(store)
    coupon = CouponRepository(store).issue(1, rule="t:kit", target_type="kit", discount_cents=500,
                                           min_spend_cents=3000, now=NOW - timedelta(days=1))
    assert shop.add(1, KIT, 2).quantity == 2  # type: ignore[union-attr]
    assert shop.add(1, course).quantity == 1  # type: ignore[union-attr]
    assert shop.add(1, course).quantity == 1  # type: ignore[union-attr]  # a course counts once
    verdict = shop.apply_coupon(1, coupon["code"].lower(), NOW)
    assert verdict.ok and verdict.discount_cents == 500
    totals = shop.cart(1, NOW)
    kit_price = store.scalar("SELECT price_cents FROM kits WHERE slug = ?", [KIT])
    course_price = store.scalar("SELECT price_cents FROM courses WHERE slug = ?", [course])
    assert totals.items_cents == 2 * kit_price + course_price and totals.discount_cents == 500

    opened = shop.open_checkout(1, NOW)
    assert not isinstance(opened, Refusal)
    by = {o.draft.currency: o for o in opened}
    assert set(by) == {CNY, XTR}
    assert by[CNY].draft.total == 2 * kit_price - 500 and by[CNY].draft.coupon_code == coupon["code"]
    assert by[XTR].draft.discount == 0 and by[XTR].draft.total == by[XTR].draft.lines[0].unit_stars
    before = _stock(store, KIT)

    for invoice in opened:
        facts = _pay(shop, invoice, f"charge-{invoice.draft.currency}")
        assert shop.pre_checkout(facts, NOW) is None
        first = shop.record_payment(facts, NOW)
        again = shop.record_payment(facts, NOW)
        assert not first.already and again.already and again.order_id == first.order_id
    assert store.scalar("SELECT count(*) FROM orders WHERE source = 'bot'") == 2
    assert store.scalar("SELECT status FROM coupons WHERE code = ?", [coupon["code"]]) == "redeemed"
    assert {k: before[k] - v for k, v in _stock(store, KIT).items()} == {k: 2 for k in before}
    assert store.scalar("SELECT count(*) FROM enrolments WHERE user_id = 1") == 1
    assert store.scalar("SELECT count(*) FROM events WHERE kind = 'purchase' AND user_id = 1") == 2
    assert store.scalar("SELECT count(*) FROM cart_items WHERE user_id = 1") == 0
    kinds = {r["status"] for r in store.query("SELECT status FROM orders")}
    assert kinds == {"paid", "enrolled"}
    kit_order = store.query("SELECT * FROM orders WHERE currency = 'CNY'")[0]
    assert kit_order["total_cents"] == 2 * kit_price - 500 and "13800000000" in kit_order["delivery"]


def test_gate_refuses_foreign_coupon_price_change_and_stock(shop: CheckoutService, store: Store) -> None:
    foreign = CouponRepository(store).issue(2, rule="t:any", target_type="any", discount_cents=300, now=NOW)
    shop.add(1, KIT)
    refused = shop.apply_coupon(1, foreign["code"], NOW)
    assert not refused.ok and refused.reason == "foreign"
    assert shop.apply_coupon(1, "X", NOW).reason == "unknown"

    opened = shop.open_checkout(1, NOW)
    assert not isinstance(opened, Refusal)
    facts = _pay(shop, opened[0], "c-1")
    price = store.scalar("SELECT price_cents FROM kits WHERE slug = ?", [KIT])
    store.db.execute("UPDATE kits SET price_cents = ? WHERE slug = ?", [price + 100, KIT])
    changed = shop.pre_checkout(facts, NOW)
    assert changed is not None and changed.code == "price_changed" and changed.params["new_cents"] == price + 100
    store.db.execute("UPDATE kits SET price_cents = ? WHERE slug = ?", [price, KIT])

    assert shop.pre_checkout(_pay(shop, opened[0], "c-1", amount=1), NOW).code == "amount_mismatch"  # type: ignore[union-attr]
    assert shop.pre_checkout(_pay(shop, opened[0], "c-1", user=2), NOW).code == "unknown_order"  # type: ignore[union-attr]
    tofu = next(iter(_stock(store, KIT)))
    store.db.execute("UPDATE ingredients SET stock = 0 WHERE slug = ?", [tofu])
    short = shop.pre_checkout(facts, NOW)
    assert short is not None and short.code == "out_of_stock" and short.params["title"]
    assert store.scalar("SELECT count(*) FROM orders") == 0 and store.scalar("SELECT count(*) FROM stock_holds") == 0


def test_payment_after_stock_ran_out_is_kept_for_refund(shop: CheckoutService, store: Store) -> None:
    shop.add(1, KIT)
    opened = shop.open_checkout(1, NOW)
    assert not isinstance(opened, Refusal)
    facts = _pay(shop, opened[0], "late-1")
    assert shop.pre_checkout(facts, NOW) is None
    assert store.scalar("SELECT count(*) FROM stock_holds") >= 1  # perishables held for this checkout
    stock = _stock(store, KIT)
    marks = ",".join("?" * len(stock))
    store.db.execute(f"UPDATE ingredients SET stock = 0 WHERE slug IN ({marks})", list(stock))
    outcome = shop.record_payment(facts, NOW)
    assert outcome.status == "refund_due" and outcome.refund_reason.code == "out_of_stock"  # type: ignore[union-attr]
    order = store.query("SELECT * FROM orders")[0]
    assert order["status"] == "refund_due" and order["telegram_charge_id"] == "late-1"
    assert store.scalar("SELECT count(*) FROM events WHERE kind = 'purchase'") == 0
    assert shop.record_payment(facts, NOW).already


def test_holds_of_one_customer_keep_the_last_unit_from_another(shop: CheckoutService, store: Store) -> None:
    stock = _stock(store, KIT)
    marks = ",".join("?" * len(stock))
    perishable = store.query(
        f"SELECT slug FROM ingredients WHERE shelf_life_days <= 7 AND slug IN ({marks})", list(stock)
    )[0]["slug"]
    store.db.execute("UPDATE ingredients SET stock = 1 WHERE slug = ?", [perishable])
    for uid in (1, 2):
        shop.add(uid, KIT)
    first, second = shop.open_checkout(1, NOW), shop.open_checkout(2, NOW)
    assert not isinstance(first, Refusal) and not isinstance(second, Refusal)
    assert shop.pre_checkout(_pay(shop, first[0], "a"), NOW) is None
    blocked = shop.pre_checkout(_pay(shop, second[0], "b", user=2), NOW)
    assert blocked is not None and blocked.code == "out_of_stock"
    later = NOW + timedelta(minutes=30)  # the hold lapsed without a payment
    assert shop.pre_checkout(_pay(shop, second[0], "b", user=2), later) is None


def test_order_status_path_and_views(shop: CheckoutService, store: Store) -> None:
    shop.add(1, KIT)
    opened = shop.open_checkout(1, NOW)
    assert not isinstance(opened, Refusal)
    facts = _pay(shop, opened[0], "s-1")
    outcome = shop.record_payment(facts, NOW)
    assert orders_for(store, 1)[0].status == "paid" and orders_for(store, 1)[0].cancellable
    assert set_status(store, outcome.order_id, "delivered").problem == "not_allowed"
    assert set_status(store, outcome.order_id, "lost").problem == "unknown_status"
    assert set_status(store, 999, "shipped").problem == "unknown_order"
    assert set_status(store, outcome.order_id, "shipped").ok
    assert not orders_for(store, 1)[0].cancellable
    assert set_status(store, outcome.order_id, "delivered").ok


def test_cart_input_is_validated(shop: CheckoutService) -> None:
    assert isinstance(shop.add(1, "kit/nope"), Refusal)
    assert shop.add(1, "drop table", 1).code == "item_gone"  # type: ignore[union-attr]
    assert shop.add(1, KIT, 0).code == "bad_quantity"  # type: ignore[union-attr]
    assert shop.add(1, KIT, 100).code == "bad_quantity"  # type: ignore[union-attr]
    assert shop.set_quantity(1, KIT, 3).code == "not_in_cart"  # type: ignore[union-attr]
    assert shop.open_checkout(1, NOW).code == "cart_empty"  # type: ignore[union-attr]


def test_split_and_delivery_are_pure() -> None:
    assert split_invoices((), None, None) == []
    slots = delivery_options(5000, True, NOW)
    assert len(slots) == 4 and all(s.fee_cents == 800 for s in slots)
    assert delivery_options(20000, False, NOW)[0].option_id == "courier"
    assert delivery_options(20000, False, NOW)[0].fee_cents == 0


def test_attribution_matches_imported_orders(shop: CheckoutService, store: Store) -> None:
    cid = store.db.execute("INSERT INTO campaigns (slug, name) VALUES ('qr-1', 'QR')").lastrowid
    EventRepository(store).record(1, "start_deeplink", campaign_id=cid, created_at="2026-11-30T00:00:00.000Z")
    shop.add(1, KIT)
    opened = shop.open_checkout(1, NOW)
    assert not isinstance(opened, Refusal)
    shop.record_payment(_pay(shop, opened[0], "attr-1"), NOW)
    event = store.query("SELECT campaign_id, payload FROM events WHERE kind = 'purchase'")[0]
    assert event["campaign_id"] == cid and '"source": "bot"' in event["payload"]
