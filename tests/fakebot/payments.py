"""Telegram Payments for the fake Bot API server: sendInvoice, answerShippingQuery,
answerPreCheckoutQuery, and the updates a customer's payment produces (shipping_query,
pre_checkout_query, a message with successful_payment).

The checks follow the Bot API documentation: title 1–32 characters, description 1–255, payload
1–128 bytes, a three-letter currency, at least one price (amounts are integers in the smallest
unit; negative lines are discounts, the total must be positive); Telegram Stars (XTR) take an empty
provider token and exactly one price and cannot ask for shipping; other currencies need a provider
token. A pre-checkout query must be answered once, an error needs error_message. The invoice's
provider token is kept out of `invoices` (tests read them; a token is a secret).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakebot.server import _Request

STARS = "XTR"


@dataclass
class SentInvoice:
    chat_id: int
    message_id: int
    title: str
    description: str
    payload: str
    currency: str
    prices: list[dict[str, Any]]
    flexible: bool
    needs: dict[str, bool]
    has_provider_token: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(int(p["amount"]) for p in self.prices)


def _as_bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class PaymentsMixin:
    """Mixed into FakeBotAPI (whose chats, users and update queue it uses); its handlers are
    registered in `_build_handlers`."""

    users: dict[int, dict[str, Any]]
    _changed: Any
    _resolve_chat: Any
    _markup: Any
    _new_message: Any
    _remember_user: Any
    _ensure_chat: Any
    _enqueue: Any
    _bad_request: Any  # message -> the server's ApiError (400)

    invoices: list[SentInvoice]
    shipping_answers: dict[str, dict[str, Any]]
    pre_checkout_answers: dict[str, dict[str, Any]]
    _payment_queries: dict[str, dict[str, Any]]
    _payment_counter: int

    def _init_payments(self) -> None:
        self.invoices = []
        self.shipping_answers = {}
        self.pre_checkout_answers = {}
        self._payment_queries = {}
        self._payment_counter = 0

    def payment_handlers(self) -> dict[str, Any]:
        return {
            "sendinvoice": self._m_send_invoice,
            "answershippingquery": self._m_answer_shipping_query,
            "answerprecheckoutquery": self._m_answer_pre_checkout_query,
        }

    # -- methods ----------------------------------------------------------------------------------
    async def _m_send_invoice(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"))
        title, description = str(p.get("title") or ""), str(p.get("description") or "")
        payload, currency = str(p.get("payload") or ""), str(p.get("currency") or "")
        if not 1 <= len(title) <= 32:
            raise self._bad_request("INVOICE_TITLE_INVALID" if title else "Bad Request: title is empty")
        if not 1 <= len(description) <= 255:
            raise self._bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode("utf-8")) <= 128:
            raise self._bad_request("INVOICE_PAYLOAD_INVALID")
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise self._bad_request("CURRENCY_INVALID")
        prices = p.get("prices")
        if not isinstance(prices, list) or not prices:
            raise self._bad_request("can't parse prices JSON object")
        for price in prices:
            if not isinstance(price, dict) or not price.get("label") or not isinstance(price.get("amount"), int):
                raise self._bad_request("can't parse labeled price")
        token = str(p.get("provider_token") or "")
        flexible = _as_bool(p.get("is_flexible"))
        needs = {k: _as_bool(p.get(k)) for k in ("need_name", "need_phone_number", "need_email",
                                                  "need_shipping_address")}
        if currency == STARS:
            if token:
                raise self._bad_request("PROVIDER_TOKEN_INVALID: Telegram Stars invoices take an empty provider token")
            if len(prices) != 1:
                raise self._bad_request("Telegram Stars invoices must contain exactly one price")
            if flexible or needs["need_shipping_address"]:
                raise self._bad_request("Telegram Stars invoices can't ask for shipping")
        elif not token:
            raise self._bad_request("PAYMENT_PROVIDER_INVALID")
        total = sum(int(x["amount"]) for x in prices)
        if total <= 0:
            raise self._bad_request("TOTAL_AMOUNT_INVALID")
        inline, _ = self._markup(p)
        content: dict[str, Any] = {"invoice": {
            "title": title, "description": description, "start_parameter": str(p.get("start_parameter") or ""),
            "currency": currency, "total_amount": total,
        }}
        if inline:
            content["reply_markup"] = inline
        stored = self._new_message(chat, content, from_bot=True, method=req.method)
        self.invoices.append(SentInvoice(
            chat["id"], stored.message_id, title, description, payload, currency, copy.deepcopy(prices),
            flexible, needs, bool(token),
        ))
        return copy.deepcopy(stored.data)

    async def _m_answer_shipping_query(self, req: _Request) -> Any:
        p = req.params
        query_id = str(p.get("shipping_query_id") or "")
        if self._payment_queries.get(query_id, {}).get("kind") != "shipping" or query_id in self.shipping_answers:
            raise self._bad_request("QUERY_ID_INVALID")
        ok = _as_bool(p.get("ok"))
        if ok:
            options = p.get("shipping_options")
            if not isinstance(options, list) or not options:
                raise self._bad_request("SHIPPING_OPTIONS_EMPTY")
            for option in options:
                if not isinstance(option, dict) or not option.get("id") or not isinstance(option.get("prices"), list):
                    raise self._bad_request("can't parse shipping option")
        elif not p.get("error_message"):
            raise self._bad_request("error_message is required when ok is False")
        self.shipping_answers[query_id] = dict(p)
        self._changed.notify()
        return True

    async def _m_answer_pre_checkout_query(self, req: _Request) -> Any:
        p = req.params
        query_id = str(p.get("pre_checkout_query_id") or "")
        if self._payment_queries.get(query_id, {}).get("kind") != "pre_checkout" or query_id in self.pre_checkout_answers:
            raise self._bad_request("QUERY_ID_INVALID")
        ok = _as_bool(p.get("ok"))
        if not ok and not p.get("error_message"):
            raise self._bad_request("error_message is required when ok is False")
        self.pre_checkout_answers[query_id] = {**p, "ok": ok, "answered_at": time.monotonic(),
                                               "asked_at": self._payment_queries[query_id]["asked_at"]}
        self._changed.notify()
        return True

    # -- what a paying customer sends --------------------------------------------------------------
    def _payment_query_id(self, kind: str) -> str:
        self._payment_counter += 1
        query_id = str(7_000_000_000_000_000 + self._payment_counter)
        self._payment_queries[query_id] = {"kind": kind, "asked_at": time.monotonic()}
        return query_id

    def push_shipping_query(
        self, user_id: int, invoice_payload: str, shipping_address: dict[str, Any]
    ) -> dict[str, Any]:
        """The customer entered an address on a flexible invoice."""
        user = self.users.get(user_id) or self._remember_user(user_id, "Tester", None, None, "zh-hans")
        query = {"id": self._payment_query_id("shipping"), "from": copy.deepcopy(user),
                 "invoice_payload": invoice_payload, "shipping_address": copy.deepcopy(shipping_address)}
        return self._enqueue({"shipping_query": query})

    def push_pre_checkout_query(
        self,
        user_id: int,
        currency: str,
        total_amount: int,
        invoice_payload: str,
        *,
        shipping_option_id: str | None = None,
        order_info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The customer pressed Pay: Telegram asks the bot to confirm (answer within 10 s)."""
        user = self.users.get(user_id) or self._remember_user(user_id, "Tester", None, None, "zh-hans")
        query: dict[str, Any] = {"id": self._payment_query_id("pre_checkout"), "from": copy.deepcopy(user),
                                 "currency": currency, "total_amount": total_amount, "invoice_payload": invoice_payload}
        if shipping_option_id:
            query["shipping_option_id"] = shipping_option_id
        if order_info:
            query["order_info"] = copy.deepcopy(order_info)
        return self._enqueue({"pre_checkout_query": query})

    def push_successful_payment(
        self,
        user_id: int,
        currency: str,
        total_amount: int,
        invoice_payload: str,
        telegram_payment_charge_id: str,
        *,
        provider_payment_charge_id: str = "",
        shipping_option_id: str | None = None,
        order_info: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The service message Telegram sends after the money moved (the same one may be delivered twice)."""
        user = self.users.get(user_id) or self._remember_user(user_id, "Tester", None, None, "zh-hans")
        chat = self._ensure_chat(user_id, user, None, None, None)
        payment: dict[str, Any] = {
            "currency": currency, "total_amount": total_amount, "invoice_payload": invoice_payload,
            "telegram_payment_charge_id": telegram_payment_charge_id,
            "provider_payment_charge_id": provider_payment_charge_id,
        }
        if shipping_option_id:
            payment["shipping_option_id"] = shipping_option_id
        if order_info:
            payment["order_info"] = copy.deepcopy(order_info)
        stored = self._new_message(chat, {"successful_payment": payment}, from_bot=False, user=user)
        return self._enqueue({"message": copy.deepcopy(stored.data)})

    def last_invoice(self, chat_id: int | None = None, currency: str | None = None) -> SentInvoice | None:
        found = [i for i in self.invoices
                 if (chat_id is None or i.chat_id == chat_id) and (currency is None or i.currency == currency)]
        return found[-1] if found else None

    def shipping_options_of(self, query_update: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.shipping_answers.get(query_update["shipping_query"]["id"]) or {}
        return list(answer.get("shipping_options") or [])

    def pre_checkout_answer(self, query_update: dict[str, Any]) -> dict[str, Any] | None:
        return self.pre_checkout_answers.get(query_update["pre_checkout_query"]["id"])
