"""Checkout in the chat end to end: the real Dispatcher polling the fake Bot API server over HTTP,
the real encoder and recommender, a real SQLite file. Invoices, shipping, pre-checkout and payments
are Telegram's own update shapes, injected by the fake server like a paying customer would cause."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from analytics.campaign_report import estimate_campaign
from bot.support import SupportService
from commerce.checkout import CheckoutService, PaymentFacts
from core.repos import CouponRepository
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, RunningBot, buttons, running_bot
from tests.fakebot import FakeBotAPI

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

TOKEN = "284685063:TEST:fake-provider"
STAFF = -1001500000014
AGENT = 7014
ADDRESS = {"country_code": "CN", "state": "上海", "city": "上海", "street_line1": "南京西路 1 号",
           "street_line2": "", "post_code": "200040"}
ORDER_INFO = {"name": "王小明", "phone_number": "+8613800000000", "shipping_address": ADDRESS}


async def pushed(rb: RunningBot, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Queue one update and wait until the dispatcher has handled it."""
    target = rb.stats.processed + 1
    update = make()
    await rb.stats.wait_processed(target, timeout=20)
    return update


def kit_in_cart(env: BotEnv, user: int) -> str:
    rows = env.store.query("SELECT item_slug FROM cart_items WHERE user_id = ? AND item_slug LIKE 'kit/%'", [user])
    assert rows, "the kit should be in the cart"
    return rows[0]["item_slug"]


def kit_stock(env: BotEnv, slug: str) -> dict[str, int]:
    rows = env.store.query(
        """SELECT i.slug, i.stock FROM kit_items ki JOIN kits k ON k.id = ki.kit_id
           JOIN ingredients i ON i.id = ki.ingredient_id WHERE k.slug = ?""", [slug])
    return {r["slug"]: r["stock"] for r in rows}


@contextlib.contextmanager
def restored_stock(env: BotEnv) -> Any:
    saved = env.store.query("SELECT id, stock FROM ingredients")
    try:
        yield
    finally:
        with env.store.transaction() as db:  # executemany alone would leave an implicit transaction open
            db.conn.executemany("UPDATE ingredients SET stock = ? WHERE id = ?", [(r["stock"], r["id"]) for r in saved])


async def add_pairing_kit(rb: RunningBot, user: int) -> dict[str, Any]:
    """A pairing answer (recommendation) → 一次买齐: the kit goes into the cart, the cart is shown."""
    [pairing] = await rb.say(user, "牛腩配什么")
    assert any("一次买齐" in b["text"] for b in buttons(pairing))
    await rb.press(user, "一次买齐")
    cart = rb.api.last_message(user)
    assert cart is not None and "购物车" in cart["text"]
    return cart


async def checkout(rb: RunningBot, user: int, currency: str = "CNY") -> Any:
    await rb.press(user, "去结算")
    invoice = rb.api.last_invoice(user, currency)
    assert invoice is not None
    return invoice


async def first_slot(rb: RunningBot, user: int, invoice: Any) -> tuple[str, int]:
    """The customer enters an address; the bot offers delivery slots: (first slot id, its fee)."""
    ship = await pushed(rb, lambda: rb.api.push_shipping_query(user, invoice.payload, ADDRESS))
    option = rb.api.shipping_options_of(ship)[0]
    return option["id"], option["prices"][0]["amount"]


@pytest.fixture
def campaign_coupon(bot_env: BotEnv) -> Callable[[int], tuple[int, str]]:
    def make(user: int) -> tuple[int, str]:
        cid = int(bot_env.store.db.execute(
            "INSERT INTO campaigns (slug, name) VALUES (?, '冬季食材包')", [f"winter-{user}"]).lastrowid or 0)
        coupon, _ = CouponRepository(bot_env.store).issue_for_campaign(
            user, cid, rule="winter", target_type="kit", discount_cents=500, min_spend_cents=1000)
        return cid, coupon["code"]
    return make


async def test_full_purchase_journey(bot_env: BotEnv, campaign_coupon: Callable[[int], tuple[int, str]]) -> None:
    user = 14001
    async with running_bot(bot_env, payment_provider_token=TOKEN) as rb:
        api = rb.api
        await rb.say(user, "/start")
        cid, code = campaign_coupon(user)
        await add_pairing_kit(rb, user)
        kit = kit_in_cart(bot_env, user)
        price = bot_env.store.scalar("SELECT price_cents FROM kits WHERE slug = ?", [kit])
        before = kit_stock(bot_env, kit)

        await rb.press(user, "用券")
        await rb.press(user, code)
        cart = api.last_message(user)
        assert cart is not None and code in cart["text"] and "-¥5" in cart["text"]

        invoice = await checkout(rb, user)
        assert invoice.has_provider_token and invoice.flexible and invoice.needs["need_phone_number"]
        assert invoice.total == price - 500 and invoice.prices[-1]["amount"] == -500
        ship = await pushed(rb, lambda: api.push_shipping_query(user, invoice.payload, ADDRESS))
        options = api.shipping_options_of(ship)
        assert len(options) == 4 and options[0]["id"].startswith("slot-")
        fee = options[0]["prices"][0]["amount"]
        total = invoice.total + fee
        query = await pushed(rb, lambda: api.push_pre_checkout_query(
            user, "CNY", total, invoice.payload, shipping_option_id=options[0]["id"], order_info=ORDER_INFO))
        answer = api.pre_checkout_answer(query)
        assert answer is not None and answer["ok"] is True
        assert answer["answered_at"] - answer["asked_at"] < 10  # Telegram's limit

        def pay() -> dict[str, Any]:
            return api.push_successful_payment(user, "CNY", total, invoice.payload, "tg-charge-14001",
                                               provider_payment_charge_id="prov-1",
                                               shipping_option_id=options[0]["id"], order_info=ORDER_INFO)
        sent_before = len(api.sent_messages(user))
        await pushed(rb, pay)
        await pushed(rb, pay)  # Telegram delivered the same payment twice
        receipts = [m["text"] for m in api.sent_messages(user)[sent_before:]]
        assert len(receipts) == 1 and "支付成功" in receipts[0] and "bot-" in receipts[0]

        orders = bot_env.store.query("SELECT * FROM orders WHERE user_id = ?", [user])
        assert len(orders) == 1 and orders[0]["status"] == "paid" and orders[0]["total_cents"] == price - 500
        assert orders[0]["paid_amount"] == total and orders[0]["telegram_charge_id"] == "tg-charge-14001"
        assert bot_env.store.scalar("SELECT status FROM coupons WHERE code = ?", [code]) == "redeemed"
        assert {k: before[k] - v for k, v in kit_stock(bot_env, kit).items()} == {k: 1 for k in before}
        [listing] = await rb.say(user, "/orders")
        assert f"#{orders[0]['id']}" in listing["text"] and "已支付" in listing["text"]

        report = estimate_campaign(bot_env.store, cid)
        assert report.counts["attributed_orders"] == 1 and report.counts["attributed_bot_orders"] == 1
        assert "机器人内支付 1 笔" in report.summary_zh()
        assert TOKEN not in str([c.result for c in api.calls()])  # the provider token never comes back
        assert rb.stats.errors == []


async def test_out_of_stock_at_pre_checkout_is_refused_politely(bot_env: BotEnv) -> None:
    user = 14002
    async with running_bot(bot_env, payment_provider_token=TOKEN) as rb:
        api = rb.api
        await add_pairing_kit(rb, user)
        invoice = await checkout(rb, user)
        kit = kit_in_cart(bot_env, user)
        slot, fee = await first_slot(rb, user, invoice)
        with restored_stock(bot_env):
            first = next(iter(kit_stock(bot_env, kit)))
            bot_env.store.db.execute("UPDATE ingredients SET stock = 0 WHERE slug = ?", [first])
            query = await pushed(rb, lambda: api.push_pre_checkout_query(
                user, "CNY", invoice.total + fee, invoice.payload, shipping_option_id=slot, order_info=ORDER_INFO))
        answer = api.pre_checkout_answer(query)
        assert answer is not None and answer["ok"] is False and "库存不足" in answer["error_message"]
        assert "没有扣款" in answer["error_message"]
        assert bot_env.store.scalar("SELECT count(*) FROM orders WHERE user_id = ?", [user]) == 0
        assert bot_env.store.scalar("SELECT count(*) FROM stock_holds") == 0


async def test_foreign_coupon_and_price_change_are_refused(bot_env: BotEnv) -> None:
    user, other = 14003, 14004
    async with running_bot(bot_env, payment_provider_token=TOKEN) as rb:
        api = rb.api
        await rb.say(other, "/start")
        foreign = CouponRepository(bot_env.store).issue(other, rule="t", target_type="any", discount_cents=300)
        await add_pairing_kit(rb, user)
        await rb.press(user, "用券")
        replies = await rb.say(user, foreign["code"], replies=2)
        assert "属于其他顾客" in replies[0]["text"]
        assert bot_env.store.scalar("SELECT coupon_code FROM carts WHERE user_id = ?", [user]) is None

        invoice = await checkout(rb, user)
        kit = kit_in_cart(bot_env, user)
        price = bot_env.store.scalar("SELECT price_cents FROM kits WHERE slug = ?", [kit])
        slot, fee = await first_slot(rb, user, invoice)
        bot_env.store.db.execute("UPDATE kits SET price_cents = ? WHERE slug = ?", [price + 1000, kit])
        try:
            query = await pushed(rb, lambda: api.push_pre_checkout_query(
                user, "CNY", invoice.total + fee, invoice.payload, shipping_option_id=slot, order_info=ORDER_INFO))
        finally:
            bot_env.store.db.execute("UPDATE kits SET price_cents = ? WHERE slug = ?", [price, kit])
        answer = api.pre_checkout_answer(query)
        new_price = f"¥{(price + 1000) // 100}"
        assert answer is not None and answer["ok"] is False and new_price in answer["error_message"]
        assert bot_env.store.scalar("SELECT count(*) FROM orders WHERE user_id = ?", [user]) == 0


async def test_course_is_paid_in_stars_and_enrolled(bot_env: BotEnv) -> None:
    user = 14005
    async with running_bot(bot_env) as rb:  # no provider token: Stars need none
        api = rb.api
        [cards] = await rb.say(user, "想学川菜的课程")
        course = next(b for b in buttons(cards) if "加购" in b["text"])
        await pushed(rb, lambda: api.push_callback(user, course["callback_data"], cards["message_id"]))
        slug = bot_env.store.query("SELECT item_slug FROM cart_items WHERE user_id = ?", [user])[0]["item_slug"]
        if not slug.startswith("course/"):
            pytest.skip("the first card was not a course")
        invoice = await checkout(rb, user, "XTR")
        assert not invoice.has_provider_token and len(invoice.prices) == 1
        await pushed(rb, lambda: api.push_pre_checkout_query(user, "XTR", invoice.total, invoice.payload))
        await pushed(rb, lambda: api.push_successful_payment(user, "XTR", invoice.total, invoice.payload, "tg-stars-1"))
        assert "已开通" in api.texts(user)[-1]
        assert bot_env.store.scalar("SELECT count(*) FROM enrolments WHERE user_id = ?", [user]) == 1
        assert bot_env.store.scalar("SELECT status FROM orders WHERE user_id = ?", [user]) == "enrolled"


@contextlib.asynccontextmanager
async def staff_bot(env: BotEnv, **kwargs: Any) -> AsyncIterator[RunningBot]:
    async with FakeBotAPI() as api:
        env.store.db.execute("DELETE FROM processed_updates")
        api.add_chat(STAFF, "supergroup", title="鲜课客服", is_forum=True)
        api.set_member_status(STAFF, AGENT, "administrator")
        env.dialogue.live_support = True
        support = SupportService(env.dialogue, STAFF)
        try:
            async with running_bot(env, api, support=support, **kwargs) as rb:
                yield rb
        finally:
            env.dialogue.live_support = False


async def test_without_provider_token_the_cart_becomes_a_support_ticket(bot_env: BotEnv) -> None:
    user = 14006
    async with staff_bot(bot_env) as rb:
        cart = await add_pairing_kit(rb, user)
        assert "在线支付尚未开通" in cart["text"] and not any("去结算" in b["text"] for b in buttons(cart))
        await rb.press(user, "提交订单给客服")
        assert "已提交给客服" in rb.api.texts(user)[-1]
        assert rb.api.invoices == []
        ticket = bot_env.store.query("SELECT * FROM tickets WHERE user_id = ? AND status <> 'closed'", [user])
        assert ticket and ticket[0]["reason"] == "order_request"
        kit = kit_in_cart(bot_env, user)
        title = bot_env.store.scalar("SELECT title FROM kits WHERE slug = ?", [kit])
        price = bot_env.store.scalar("SELECT price_cents FROM kits WHERE slug = ?", [kit])
        staff_texts = [m["text"] for m in rb.api.sent_messages(STAFF) if "订单请求" in m.get("text", "")]
        assert staff_texts and title in staff_texts[0] and f"¥{price // 100}" in staff_texts[0]
        assert bot_env.store.scalar("SELECT count(*) FROM events WHERE user_id = ? AND kind = 'order_requested'",
                                    [user]) == 1


async def test_staff_moves_an_order_and_the_customer_is_told(bot_env: BotEnv) -> None:
    user = 14007
    async with staff_bot(bot_env, payment_provider_token=TOKEN) as rb:
        await add_pairing_kit(rb, user)
        shop = CheckoutService(bot_env.store)
        [opened] = shop.open_checkout(user)  # type: ignore[misc]
        fee = shop.delivery_for(shop.checkout(opened.payload))[0]
        outcome = shop.record_payment(PaymentFacts(user, "CNY", opened.draft.total + fee.fee_cents, opened.payload,
                                                   "tg-staff-1", "", fee.option_id, ORDER_INFO))
        await pushed(rb, lambda: rb.api.push_message(AGENT, "/order 99999 shipped", chat_id=STAFF, chat_type="supergroup"))
        assert "没有订单" in rb.api.texts(STAFF)[-1]
        await pushed(rb, lambda: rb.api.push_message(AGENT, f"/order {outcome.order_id} shipped", chat_id=STAFF,
                                                     chat_type="supergroup"))
        assert "已通知顾客" in rb.api.texts(STAFF)[-1]
        assert "已发货" in rb.api.texts(user)[-1]
        [listing] = await rb.say(user, "/orders")
        assert "已发货" in listing["text"] and "取消订单" not in str(buttons(listing))
