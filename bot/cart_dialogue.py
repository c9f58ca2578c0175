"""The cart and checkout conversation without aiogram types, shared by Telegram and the console chat.

Every domain decision is commerce.checkout's; this module renders its results (Reply/Answer,
framework-free invoices) in the customer's language and keeps the typed-coupon state.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from bot.callbacks import CartCB, OrderCB
from bot.dialogue import Conversation, Customer, DialogueService
from bot.replies import Answer, Button, Reply
from bot.texts import Html
from commerce.cart import CNY, FREE_DELIVERY_FROM_CENTS, XTR, CartTotals, DeliveryOption
from commerce.checkout import CheckoutService, OpenedInvoice, PaymentFacts, PaymentOutcome, Refusal
from commerce.order_status import OrderView, order_view, orders_for, set_status
from core.domain import EventKind, ItemKind, format_price
from core.repos.coupons import Redemption
from recsys.documents import KIND_BASE

COUPON_STATE = "checkout:coupon"
_KIND_OF_BASE = {base: kind.value for kind, base in KIND_BASE.items()}
_TABLE = {"course": "courses", "kit": "kits", "ingredient": "ingredients"}


@dataclass(frozen=True)
class InvoiceOut:
    """One sendInvoice call, with prices in the currency's smallest unit."""

    checkout_id: int
    title: str
    description: str
    payload: str
    currency: str
    prices: list[tuple[str, int]]

    @property
    def physical(self) -> bool:
        return self.currency == CNY


@dataclass
class CartAnswer(Answer):
    invoices: list[InvoiceOut] = field(default_factory=list)
    staff_text: str | None = None  # to post in the customer's support topic
    staff_reason: str | None = None  # the ticket reason when a topic must be opened for it


def money(currency: str, amount: int) -> str:
    return f"{amount} ⭐" if currency == XTR else format_price(amount)


class CartDialogue:
    def __init__(self, dialogue: DialogueService, *, payments_enabled: bool, course_url_base: str | None = None):
        self.dialogue = dialogue
        self.t = dialogue.t
        self.payments_enabled = payments_enabled  # a provider token is configured (CNY goods)
        self.course_url_base = course_url_base
        self.checkout = CheckoutService(dialogue.users.store, referral_rules=dialogue.referrals.rules)

    # -- catalog ids ---------------------------------------------------------------------------
    def _slug_of(self, item: int) -> str | None:
        kind = _KIND_OF_BASE.get(item // 1_000_000_000 * 1_000_000_000)
        if kind is None:
            return None
        return self.dialogue.users.store.scalar(f"SELECT slug FROM {_TABLE[kind]} WHERE id = ?", [item % 1_000_000_000])

    def _item_of(self, slug: str) -> int:
        row = self.checkout.catalog_item(slug)
        return KIND_BASE[ItemKind(slug.split("/", 1)[0])] + int(row["id"]) if row else 0

    # -- buttons ---------------------------------------------------------------------------------
    async def press(self, c: Customer, cb: CartCB | OrderCB, conv: Conversation) -> CartAnswer:
        if isinstance(cb, OrderCB):
            return await self.dialogue.run(self._cancel_request, c, cb.order)
        if cb.action == "cpn":
            await conv.set_state(COUPON_STATE)
            return await self.dialogue.run(self._coupon_prompt, c)
        if await conv.get_state() == COUPON_STATE:  # any other cart button ends the typed-coupon step
            await conv.set_state(None)
        return await self.dialogue.run(self._press, c, cb)

    def _press(self, c: Customer, cb: CartCB) -> CartAnswer:
        if cb.action == "view":
            return CartAnswer(replies=[self._view(c)])
        if cb.action == "pay":
            return self._pay(c)
        if cb.action == "req":
            return self._order_request(c)
        if cb.action == "nocpn":
            self.checkout.drop_coupon(c.id)
            return CartAnswer(toast=self.t(c.lang, "cart_coupon_dropped"), edit=self._view(c))
        if cb.action == "use":
            code = self.dialogue.users.store.scalar(
                "SELECT code FROM coupons WHERE id = ? AND user_id = ?", [cb.item, c.id])
            return self._coupon_result(c, self.checkout.apply_coupon(c.id, code or ""))
        if cb.action == "demo":
            return self._console_pay(c, cb.item)
        slug = self._slug_of(cb.item)
        if slug is None:
            return CartAnswer(toast=self.t(c.lang, "ck_refuse_item_gone", title=""), alert=True)
        if cb.action == "add":
            added = self.checkout.add(c.id, slug)
            if isinstance(added, Refusal):
                return CartAnswer(toast=self._refusal(c.lang, added), alert=True)
            return CartAnswer(toast=self.t(c.lang, "cart_added", title=added.title, quantity=added.quantity),
                              replies=[self._view(c)])
        have = {line.slug: line.quantity for line in self.checkout.cart(c.id).lines}
        quantity = 0 if cb.action == "rm" else have.get(slug, 0) + (1 if cb.action == "inc" else -1)
        problem = self.checkout.set_quantity(c.id, slug, max(0, quantity))
        if problem is not None:
            return CartAnswer(toast=self._refusal(c.lang, problem), alert=True)
        return CartAnswer(edit=self._view(c))

    async def typed_coupon(self, c: Customer, text: str, conv: Conversation) -> list[Reply]:
        await conv.set_state(None)
        answer = await self.dialogue.run(lambda: self._coupon_result(c, self.checkout.apply_coupon(c.id, text)))
        return [r for r in ([answer.edit] if answer.edit else []) + answer.replies]

    def _coupon_prompt(self, c: Customer) -> CartAnswer:
        rows = [[Button(self.t(c.lang, "btn_cart_use_coupon", code=r["code"], discount=format_price(r["discount_cents"])),
                        CartCB(action="use", item=r["id"]).pack())]
                for r in self.dialogue.coupons.list_for(c.id, include_used=False)[:6] if r["status"] == "issued"]
        return CartAnswer(replies=[Reply(self.t(c.lang, "cart_coupon_prompt"), rows)])

    def _coupon_result(self, c: Customer, verdict: Redemption) -> CartAnswer:
        if not verdict.ok:
            why = self.t(c.lang, f"ck_coupon_{verdict.reason or 'unknown'}")
            text = self.t(c.lang, "cart_coupon_bad", code=verdict.code or "—", why=why)
            return CartAnswer(replies=[Reply(text), self._view(c)])
        text = self.t(c.lang, "cart_coupon_ok", code=verdict.code, discount=format_price(verdict.discount_cents))
        return CartAnswer(replies=[Reply(text), self._view(c)])

    # -- the cart --------------------------------------------------------------------------------
    async def view(self, c: Customer) -> Reply:
        return await self.dialogue.run(self._view, c)

    def _view(self, c: Customer) -> Reply:
        t, lang = self.t, c.lang
        totals = self.checkout.cart(c.id)
        if not totals.lines:
            return Reply(t(lang, "cart_empty"))
        text = [t(lang, "cart_header")]
        rows: list[list[Button]] = []
        for line in totals.lines:
            amount = format_price(line.total_cents)
            key = "cart_line_course" if line.kind == "course" else "cart_line"
            text.append(t(lang, key, title=line.title, quantity=line.quantity, amount=amount, stars=line.unit_stars))
            item = self._item_of(line.slug)
            rows.append([
                Button(t(lang, "btn_cart_less"), CartCB(action="dec", item=item).pack()),
                Button(t(lang, "btn_cart_more", title=line.title[:14]), CartCB(action="inc", item=item).pack()),
                Button(t(lang, "btn_cart_remove"), CartCB(action="rm", item=item).pack()),
            ])
        text.append(t(lang, "cart_items_total", amount=format_price(totals.items_cents)))
        text.extend(self._coupon_lines(lang, totals))
        text.append(t(lang, "cart_total", amount=format_price(totals.total_cents),
                      free=format_price(FREE_DELIVERY_FROM_CENTS)))
        if any(line.kind == "course" for line in totals.lines):
            text.append(t(lang, "cart_courses_stars"))
        coupon_button = ("btn_cart_drop_coupon", "nocpn") if totals.coupon else ("btn_cart_coupon", "cpn")
        rows.append([Button(t(lang, coupon_button[0]), CartCB(action=coupon_button[1]).pack())])  # type: ignore[arg-type]
        if self._needs_request(totals):
            text.append(t(lang, "cart_no_payments"))
            rows.append([Button(t(lang, "btn_cart_request", total=format_price(totals.total_cents)),
                                CartCB(action="req").pack())])
        else:
            rows.append([Button(t(lang, "btn_cart_pay", total=format_price(totals.total_cents)),
                                CartCB(action="pay").pack())])
        return Reply("\n".join(text), rows)

    def _coupon_lines(self, lang: str, totals: CartTotals) -> list[str]:
        verdict = totals.coupon
        if verdict is None:
            return []
        if verdict.ok:
            return [self.t(lang, "cart_discount", code=verdict.code, amount=format_price(verdict.discount_cents))]
        why = self.t(lang, f"ck_coupon_{verdict.reason or 'unknown'}")
        return [self.t(lang, "cart_coupon_bad", code=verdict.code, why=why)]

    def _needs_request(self, totals: CartTotals) -> bool:
        """Kits and ingredients need the payment provider; courses (Stars) do not."""
        return not self.payments_enabled and any(line.physical for line in totals.lines)

    # -- invoices --------------------------------------------------------------------------------
    def _pay(self, c: Customer) -> CartAnswer:
        totals = self.checkout.cart(c.id)
        if self._needs_request(totals):
            return self._order_request(c)
        opened = self.checkout.open_checkout(c.id)
        if isinstance(opened, Refusal):
            return CartAnswer(toast=self._refusal(c.lang, opened), alert=True)
        invoices = [self._invoice(c.lang, o) for o in opened]
        return CartAnswer(replies=[Reply(self.t(c.lang, "ck_invoices_sent"))], invoices=invoices)

    def _invoice(self, lang: str, opened: OpenedInvoice) -> InvoiceOut:
        draft = opened.draft
        names = "、".join(f"{line.title}×{line.quantity}" for line in draft.lines)
        if draft.currency == XTR:
            title = self.t(lang, "ck_invoice_title_courses")
            prices = [(names[:60], draft.total)]  # Stars: exactly one price line, the discount already off
        else:
            title = self.t(lang, "ck_invoice_title_goods")
            prices = [(f"{line.title[:40]} ×{line.quantity}", line.total_cents) for line in draft.lines]
            if draft.discount:
                prices.append((self.t(lang, "ck_price_discount", code=draft.coupon_code), -draft.discount))
        description = self.t(lang, "ck_invoice_desc", items=names)[:255]
        return InvoiceOut(opened.checkout_id, title[:32], description, opened.payload, draft.currency, prices)

    def slot_label(self, lang: str, option: DeliveryOption) -> str:
        if option.part == "courier":
            return self.t(lang, "ck_slot_courier")
        return self.t(lang, f"ck_slot_{option.part}", day=option.day[5:])

    async def shipping_options(
        self, user_id: int, lang: str, payload: str, country_code: str | None
    ) -> list[tuple[str, str, list[tuple[str, int]]]] | str:
        """(id, title, prices) per delivery slot for a shipping_query, or the refusal to show."""
        found = await self.dialogue.run(self.checkout.shipping_check, user_id, payload, country_code)
        if isinstance(found, Refusal):
            return self._refusal(lang, found)
        fee = self.t(lang, "ck_price_delivery")
        return [(o.option_id, self.slot_label(lang, o), [(fee, o.fee_cents)]) for o in found]

    async def pre_checkout(self, lang: str, facts: PaymentFacts) -> str | None:
        """None: ok to charge. Otherwise the sentence for answerPreCheckoutQuery's error_message."""
        refusal = await self.dialogue.run(self.checkout.pre_checkout, facts)
        return None if refusal is None else self._refusal(lang, refusal)

    # -- payments --------------------------------------------------------------------------------
    async def paid(self, c: Customer, facts: PaymentFacts) -> CartAnswer:
        return await self.dialogue.run(self._paid, c, facts)

    def _paid(self, c: Customer, facts: PaymentFacts) -> CartAnswer:
        outcome = self.checkout.record_payment(facts)
        view = order_view(self.dialogue.users.store, outcome.order_id)
        if outcome.status == "refund_due":
            return self._refund_answer(c, outcome, facts)
        if outcome.already:
            return CartAnswer()  # the same payment delivered again: the receipt went out the first time
        assert view is not None
        return CartAnswer(replies=[self._receipt(c.lang, view, outcome)])

    def _receipt(self, lang: str, view: OrderView, outcome: PaymentOutcome) -> Reply:
        t = self.t
        lines = [t(lang, "cart_line", title=r["title"], quantity=r["quantity"],
                   amount=format_price(r["quantity"] * r["price_cents"])) for r in view.lines]
        if view.delivery.get("option"):
            slot = DeliveryOption(view.delivery["option"], view.delivery.get("day") or "",
                                  view.delivery.get("part") or "courier", 0)
            lines.append(t(lang, "ck_receipt_delivery", slot=self.slot_label(lang, slot)))
        for course in outcome.courses:
            lines.append(t(lang, "ck_receipt_course", title=course["title"], link=Html(self._course_link(lang, course["slug"]))))
        text = t(lang, "ck_receipt", ref=view.external_id, lines=Html("\n".join(lines)),
                 paid=money(outcome.currency, outcome.paid_amount), status=t(lang, f"ck_status_{view.status}"))
        return Reply(text + "\n" + t(lang, "ck_receipt_more"))

    def _course_link(self, lang: str, slug: str) -> str:
        if not self.course_url_base:
            return ""
        return self.t(lang, "ck_course_link", url=self.course_url_base + slug.split("/", 1)[1])

    def _refund_answer(self, c: Customer, outcome: PaymentOutcome, facts: PaymentFacts) -> CartAnswer:
        problem = outcome.refund_reason or Refusal("other")
        paid = money(outcome.currency, outcome.paid_amount)
        ref = outcome.external_id
        why_key = "ck_why_out_of_stock" if problem.code == "out_of_stock" else "ck_why_other"
        why = self.t(c.lang, why_key, title=problem.params.get("title", ""))
        customer = Reply(self.t(c.lang, "ck_refund_due", ref=ref, paid=paid, why=why))
        staff = self.t("zh", "staff_refund_due", order=outcome.order_id, ref=ref, user=c.id,
                       why=self.t("zh", why_key, title=problem.params.get("title", "")), paid=paid,
                       charge=facts.telegram_charge_id)
        if outcome.already:
            return CartAnswer()
        return CartAnswer(replies=[customer], staff_text=staff, staff_reason="refund")

    def _console_pay(self, c: Customer, checkout_id: int) -> CartAnswer:
        """The console chat has no Telegram wallet: it runs the same gate and recording with a
        console charge id, clearly labelled as a simulation."""
        row = self.checkout.checkout(f"ck-{checkout_id}")
        if row is None or row["user_id"] != c.id:
            return CartAnswer(toast=self._refusal(c.lang, Refusal("unknown_order")), alert=True)
        draft = self.checkout.draft_of(row)
        option = self.checkout.delivery_for(row)[0] if draft.needs_delivery else None
        facts = PaymentFacts(c.id, draft.currency, draft.total + (option.fee_cents if option else 0), f"ck-{checkout_id}",
                             f"console-{uuid.uuid4().hex[:16]}", "", option.option_id if option else None,
                             {"name": c.first_name, "phone_number": "", "shipping_address": {"country_code": "CN"}})
        refusal = self.checkout.pre_checkout(facts)
        if refusal is not None:
            return CartAnswer(replies=[Reply(self._refusal(c.lang, refusal))])
        answer = self._paid(c, facts)
        answer.replies.append(Reply(self.t(c.lang, "ck_console_paid_note")))
        return answer

    def console_invoice_reply(self, lang: str, invoice: InvoiceOut) -> Reply:
        """How the console shows an invoice: its price lines and a button standing in for Pay."""
        lines = [f"<b>{escape(invoice.title)}</b>"] + [f"• {escape(label)}　{money(invoice.currency, amount)}"
                                                        for label, amount in invoice.prices]
        total = money(invoice.currency, sum(a for _, a in invoice.prices))
        button = Button(self.t(lang, "btn_cart_console_pay", what=total), CartCB(action="demo", item=invoice.checkout_id).pack())
        return Reply("\n".join(lines), [[button]])

    # -- order request, orders, cancellation, staff status --------------------------------------
    def _order_request(self, c: Customer) -> CartAnswer:
        totals = self.checkout.cart(c.id)
        if not totals.lines:
            return CartAnswer(toast=self._refusal(c.lang, Refusal("cart_empty")), alert=True)
        total = format_price(totals.total_cents)
        lines = [self.t("zh", "cart_line", title=line.title, quantity=line.quantity, amount=format_price(line.total_cents))
                 for line in totals.lines]
        lines.extend(self._coupon_lines("zh", totals))
        self.dialogue.events.record(c.id, EventKind.ORDER_REQUESTED, payload={
            "items": [line.to_dict() for line in totals.lines], "total_cents": totals.total_cents,
            "coupon_code": totals.coupon.code if totals.coupon and totals.coupon.ok else None,
        })
        staff = self.t("zh", "staff_order_request", user=c.id, lines=Html("\n".join(lines)), total=total)
        key = "ck_request_sent" if self.dialogue.live_support else "ck_request_offline"
        return CartAnswer(replies=[Reply(self.t(c.lang, key, total=total))], staff_text=staff,
                          staff_reason="order_request")

    async def orders(self, c: Customer) -> list[Reply]:
        return await self.dialogue.run(self._orders, c)

    def _orders(self, c: Customer) -> list[Reply]:
        views = orders_for(self.dialogue.users.store, c.id)
        if not views:
            return [Reply(self.t(c.lang, "orders_empty"))]
        text = [self.t(c.lang, "orders_header")]
        rows = []
        for v in views:
            items = "、".join(f"{r['title']}×{r['quantity']}" for r in v.lines)[:80]
            amount = money(v.currency, v.paid_amount) if v.paid_amount is not None else format_price(v.total_cents)
            text.append(self.t(c.lang, "orders_line", order=v.order_id, when=v.created_at[:10], items=items,
                               amount=amount, status=self.t(c.lang, f"ck_status_{v.status}")))
            if v.cancellable:
                rows.append([Button(self.t(c.lang, "btn_order_cancel", order=v.order_id),
                                    OrderCB(action="cancel", order=v.order_id).pack())])
        return [Reply("\n".join(text), rows)]

    def _cancel_request(self, c: Customer, order_id: int) -> CartAnswer:
        view = order_view(self.dialogue.users.store, order_id)
        if view is None or view.user_id != c.id or not view.cancellable:
            return CartAnswer(replies=[Reply(self.t(c.lang, "ck_cancel_refused", order=order_id))])
        items = "、".join(f"{r['title']}×{r['quantity']}" for r in view.lines)[:200]
        staff = self.t("zh", "staff_cancel_request", user=c.id, order=order_id, items=items,
                       status=self.t("zh", f"ck_status_{view.status}"), amount=money(view.currency, view.paid_amount or 0))
        return CartAnswer(replies=[Reply(self.t(c.lang, "ck_cancel_sent", order=order_id))], staff_text=staff,
                          staff_reason="refund")

    async def staff_order_command(self, args: str | None) -> tuple[str, tuple[int, str] | None]:
        """`/order <id> <status>` in the staff group: (reply to staff, (customer id, notice) or None)."""
        return await self.dialogue.run(self._staff_order_command, args)

    def _staff_order_command(self, args: str | None) -> tuple[str, tuple[int, str] | None]:
        words = (args or "").split()
        if len(words) != 2 or not words[0].lstrip("#").isdigit():
            return self.t("zh", "staff_order_usage"), None
        order_id, status = int(words[0].lstrip("#")), words[1].lower()
        change = set_status(self.dialogue.users.store, order_id, status, datetime.now(UTC))
        if change.problem == "unknown_order":
            return self.t("zh", "staff_order_unknown", order=order_id), None
        if not change.ok or change.order is None:
            if change.problem == "unknown_status":
                return self.t("zh", "staff_order_usage"), None
            before = self.t("zh", f"ck_status_{change.before}")
            return self.t("zh", "staff_order_not_allowed", order=order_id, before=before,
                          status=self.t("zh", f"ck_status_{status}")), None
        reply = self.t("zh", "staff_order_moved", order=order_id, before=self.t("zh", f"ck_status_{change.before}"),
                       status=self.t("zh", f"ck_status_{status}"))
        user_id = change.order.user_id
        if user_id is None:
            return reply, None
        lang = (self.dialogue.users.get(user_id) or {}).get("language") or "zh"
        notice = self.t(lang, "ck_status_notice", order=order_id, status=self.t(lang, f"ck_status_{status}"))
        return reply, (user_id, notice)

    # -- wording ---------------------------------------------------------------------------------
    def _refusal(self, lang: str, refusal: Refusal) -> str:
        p: Mapping[str, Any] = refusal.params
        if refusal.code == "price_changed":
            new = money(XTR, p["new_stars"]) if p.get("currency") == XTR else format_price(p["new_cents"])
            return self.t(lang, "ck_refuse_price_changed", title=p["title"], new=new)
        if refusal.code == "coupon":
            why = self.t(lang, f"ck_coupon_{p.get('reason') or 'unknown'}")
            return self.t(lang, "ck_refuse_coupon", code=p.get("code", ""), why=why)
        key = f"ck_refuse_{refusal.code}"
        if key not in self.t.catalogs["zh"]:
            key = "ck_refuse_unknown_order"
        return self.t(lang, key, title=p.get("title", ""), max=p.get("max", ""))
