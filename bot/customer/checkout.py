"""Cart, invoices and payments on Telegram: a thin front door over bot.cart_dialogue / commerce.checkout.

Included before the support router, so a customer with an open consultation can still pay (a
successful_payment must never be relayed to staff as chat) and staff can run `/order <id> <status>`.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    ShippingOption,
    ShippingQuery,
)

from bot.callbacks import CartCB, OrderCB
from bot.cart_dialogue import COUPON_STATE, CartAnswer, CartDialogue, InvoiceOut
from bot.customer.send import answer_press, reply_to, send
from bot.dialogue import Customer
from bot.replies import Reply
from bot.support import SupportService
from bot.texts import Texts, language_from_telegram
from commerce.checkout import PaymentFacts
from core.logging import log_event

log = logging.getLogger(__name__)


async def send_invoices(bot: Bot, chat_id: int, invoices: list[InvoiceOut], provider_token: str | None) -> None:
    for invoice in invoices:
        physical = invoice.physical
        await bot.send_invoice(
            chat_id, title=invoice.title, description=invoice.description, payload=invoice.payload,
            currency=invoice.currency, prices=[LabeledPrice(label=label, amount=amount) for label, amount in invoice.prices],
            provider_token=(provider_token or "") if physical else "",  # Stars: empty token, as Telegram requires
            is_flexible=physical, need_name=physical, need_phone_number=physical, need_shipping_address=physical,
        )


async def hand_to_staff(bot: Bot, c: Customer, answer: CartAnswer, support: SupportService | None) -> None:
    """Order requests, refunds and cancellations go into the customer's support topic."""
    if answer.staff_text is None or support is None:
        if answer.staff_text is not None:
            log_event(log, "checkout notice without live support", logging.WARNING, user_id=c.id,
                      reason=answer.staff_reason)
        return
    ticket = await support.open_ticket(c.id)
    if ticket is None:
        await support.open(bot, c, answer.staff_reason or "order")
        ticket = await support.open_ticket(c.id)
    if ticket is not None:
        await support.say(bot, ticket, answer.staff_text)


async def on_cart_button(
    query: CallbackQuery, callback_data: CartCB, bot: Bot, cart: CartDialogue, customer: Customer,
    state: FSMContext, payment_provider_token: str | None = None, support: SupportService | None = None,
) -> None:
    answer = await cart.press(customer, callback_data, state)
    await answer_press(query, bot, answer)
    await send_invoices(bot, customer.id, answer.invoices, payment_provider_token)
    await hand_to_staff(bot, customer, answer, support)


async def on_order_button(
    query: CallbackQuery, callback_data: OrderCB, bot: Bot, cart: CartDialogue, customer: Customer,
    state: FSMContext, support: SupportService | None = None,
) -> None:
    answer = await cart.press(customer, callback_data, state)
    await answer_press(query, bot, answer)
    await hand_to_staff(bot, customer, answer, support)


async def on_cart(message: Message, cart: CartDialogue, customer: Customer) -> None:
    await reply_to(message, [await cart.view(customer)])


async def on_orders(message: Message, cart: CartDialogue, customer: Customer) -> None:
    await reply_to(message, await cart.orders(customer))


async def on_coupon_code(message: Message, cart: CartDialogue, customer: Customer, state: FSMContext) -> None:
    await reply_to(message, await cart.typed_coupon(customer, message.text or "", state))


async def on_shipping(query: ShippingQuery, cart: CartDialogue) -> None:
    lang = language_from_telegram(query.from_user.language_code)
    found = await cart.shipping_options(query.from_user.id, lang, query.invoice_payload,
                                        query.shipping_address.country_code)
    if isinstance(found, str):
        await query.answer(ok=False, error_message=found)
        return
    await query.answer(ok=True, shipping_options=[
        ShippingOption(id=option_id, title=title, prices=[LabeledPrice(label=label, amount=amount) for label, amount in prices])
        for option_id, title, prices in found
    ])


def _facts(user_id: int, source: PreCheckoutQuery | Message) -> PaymentFacts:
    if isinstance(source, PreCheckoutQuery):
        info = source.order_info.model_dump(exclude_none=True) if source.order_info else {}
        return PaymentFacts(user_id, source.currency, source.total_amount, source.invoice_payload,
                            shipping_option_id=source.shipping_option_id, order_info=info)
    paid = source.successful_payment
    assert paid is not None
    info = paid.order_info.model_dump(exclude_none=True) if paid.order_info else {}
    return PaymentFacts(user_id, paid.currency, paid.total_amount, paid.invoice_payload,
                        paid.telegram_payment_charge_id, paid.provider_payment_charge_id or "",
                        paid.shipping_option_id, info)


async def on_pre_checkout(query: PreCheckoutQuery, cart: CartDialogue) -> None:
    """Telegram waits at most 10 s for this answer; the gate is one short write transaction."""
    lang = language_from_telegram(query.from_user.language_code)
    refusal = await cart.pre_checkout(lang, _facts(query.from_user.id, query))
    await query.answer(ok=refusal is None, error_message=refusal)
    log_event(log, "pre-checkout answered", user_id=query.from_user.id, ok=refusal is None)


async def on_successful_payment(
    message: Message, bot: Bot, cart: CartDialogue, customer: Customer, support: SupportService | None = None,
) -> None:
    answer = await cart.paid(customer, _facts(customer.id, message))
    await reply_to(message, answer.replies)
    await hand_to_staff(bot, customer, answer, support)


async def on_staff_order(
    message: Message, command: CommandObject, bot: Bot, cart: CartDialogue, texts: Texts,
    support: SupportService | None = None,
) -> None:
    """`/order <id> shipped` in the staff group: staff only; the customer is told."""
    if support is None or message.from_user is None or not await support.is_staff(bot, message.from_user.id):
        return
    reply, notice = await cart.staff_order_command(command.args)
    await message.reply(reply)
    if notice is not None:
        await send(bot, notice[0], [Reply(notice[1])])


def get_router(staff_chat_id: int | None = None) -> Router:
    router = Router(name="customer.checkout")
    private = F.chat.type == "private"
    router.callback_query.register(on_cart_button, CartCB.filter())
    router.callback_query.register(on_order_button, OrderCB.filter())
    router.message.register(on_successful_payment, private, F.successful_payment)
    router.message.register(on_cart, private, Command("cart"))
    router.message.register(on_orders, private, Command("orders"))
    router.message.register(on_coupon_code, private, StateFilter(COUPON_STATE), F.text, ~F.text.startswith("/"))
    router.shipping_query.register(on_shipping)
    router.pre_checkout_query.register(on_pre_checkout)
    if staff_chat_id is not None:
        router.message.register(on_staff_order, F.chat.id == staff_chat_id, Command("order"))
    return router
