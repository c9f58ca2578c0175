"""The fake Bot API server's payments: real aiogram Bot calls and a Dispatcher polling the payment updates."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery, ShippingOption, ShippingQuery

from tests.fakebot import FakeBotAPI

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

USER = 1001


async def test_send_invoice_rules() -> None:
    async with FakeBotAPI() as api:
        bot = api.make_bot()
        stars = [LabeledPrice(label="课程", amount=70)]
        sent = await bot.send_invoice(USER, "川菜课", "十节课", "ck-1", "XTR", stars, provider_token="")
        assert sent.invoice is not None and sent.invoice.total_amount == 70
        invoice = api.last_invoice(USER)
        assert invoice is not None and invoice.payload == "ck-1" and not invoice.has_provider_token
        with pytest.raises(TelegramBadRequest, match="empty provider token"):
            await bot.send_invoice(USER, "x", "y", "ck-2", "XTR", stars, provider_token="123:TEST")
        with pytest.raises(TelegramBadRequest, match="exactly one price"):
            await bot.send_invoice(USER, "x", "y", "ck-2", "XTR", stars * 2)
        with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
            await bot.send_invoice(USER, "x", "y", "ck-2", "CNY", [LabeledPrice(label="包", amount=3900)])
        with pytest.raises(TelegramBadRequest, match="TOTAL_AMOUNT_INVALID"):
            await bot.send_invoice(USER, "x", "y", "ck-2", "CNY", [LabeledPrice(label="包", amount=100),
                                   LabeledPrice(label="券", amount=-100)], provider_token="123:TEST")
        with pytest.raises(TelegramBadRequest, match="INVOICE_PAYLOAD_INVALID"):
            await bot.send_invoice(USER, "x", "y", "p" * 129, "XTR", stars)
        await bot.send_invoice(USER, "包", "送到家", "ck-3", "CNY",
                               [LabeledPrice(label="包", amount=3900), LabeledPrice(label="券", amount=-500)],
                               provider_token="123:TEST", is_flexible=True, need_phone_number=True,
                               need_shipping_address=True)
        cny = api.last_invoice(USER, "CNY")
        assert cny is not None and cny.total == 3400 and cny.flexible and cny.needs["need_phone_number"]
        assert "123:TEST" not in repr(cny)  # the token is never kept where tests print
        await bot.session.close()


async def test_payment_updates_reach_handlers_and_answers_are_checked() -> None:
    router = Router()
    seen: list[str] = []

    @router.shipping_query()
    async def shipping(query: ShippingQuery, bot: Bot) -> None:
        await query.answer(ok=True, shipping_options=[
            ShippingOption(id="am", title="明天上午", prices=[LabeledPrice(label="配送", amount=800)])])

    @router.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        ok = query.total_amount == 4200
        await query.answer(ok=ok, error_message=None if ok else "金额不对")

    @router.message(F.successful_payment)
    async def paid(message: Message) -> None:
        assert message.successful_payment is not None
        seen.append(message.successful_payment.telegram_payment_charge_id)

    async with FakeBotAPI() as api:
        bot = api.make_bot()
        dp = Dispatcher()
        dp.include_router(router)
        ship = api.push_shipping_query(USER, "ck-3", {"country_code": "CN", "state": "上海", "city": "上海",
                                                      "street_line1": "南京路 1 号", "street_line2": "",
                                                      "post_code": "200000"})
        good = api.push_pre_checkout_query(USER, "CNY", 4200, "ck-3", shipping_option_id="am")
        bad = api.push_pre_checkout_query(USER, "CNY", 1, "ck-3")
        api.push_successful_payment(USER, "CNY", 4200, "ck-3", "tg-charge-1", provider_payment_charge_id="p-1")
        task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1,
                                                    allowed_updates=dp.resolve_used_update_types()))
        try:
            await api.wait_until(lambda: seen == ["tg-charge-1"] and len(api.pre_checkout_answers) == 2)
        finally:
            await dp.stop_polling()
            await task
        assert [o["id"] for o in api.shipping_options_of(ship)] == ["am"]
        assert api.pre_checkout_answer(good)["ok"] is True
        refused = api.pre_checkout_answer(bad)
        assert refused["ok"] is False and refused["error_message"] == "金额不对"
        with pytest.raises(TelegramBadRequest, match="QUERY_ID_INVALID"):  # answered once only
            await bot.answer_pre_checkout_query(good["pre_checkout_query"]["id"], ok=True)
        await bot.session.close()
