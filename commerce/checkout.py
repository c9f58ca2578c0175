"""Checkout in the chat: the stored cart, invoices, the pre-checkout gate and payment recording.

The flow Telegram imposes (sendInvoice → shipping_query → pre_checkout_query → successful_payment)
maps onto four calls here, each one transaction on the caller's store:

- `open_checkout` freezes the cart's priced lines into one `checkouts` row per invoice; the invoice
  payload names that row (``ck-<id>``), never a price.
- `pre_checkout` is the gate (BEGIN IMMEDIATE, so two customers cannot both take the last kit):
  every item still sold at the frozen price, the coupon still valid for this customer, enough stock
  of every ingredient the kits and ingredients need, the amount Telegram shows equal to ours; then
  perishable ingredients are held for `HOLD_MINUTES` for this checkout.
- `record_payment` is idempotent on `telegram_payment_charge_id`. A good payment becomes an order
  through `commerce.orders.OrderRecorder` — the same code path as imported orders, so coupon
  redemption, the purchase event, campaign attribution, purchase-rule coupons and the referral
  reward are exactly theirs — then stock goes down and courses are enrolled. A payment that cannot
  be fulfilled (stock gone meanwhile, an amount or payload that does not match) is still stored, as
  an order with status `refund_due`, for support to refund: money received is never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from commerce.cart import (
    CNY,
    MAX_LINES,
    MAX_QUANTITY,
    CartLine,
    CartTotals,
    DeliveryOption,
    InvoiceDraft,
    StockNeed,
    delivery_options,
    find_option,
    is_perishable,
    split_invoices,
    stars_for,
)
from commerce.orders import OrderImportReport, OrderRecord, OrderRecorder
from commerce.referrals import ReferralRules
from core.domain import EventKind
from core.repos.coupons import CouponRepository, Redemption, assess_coupon, iso_utc
from core.repos.events import EventRepository
from core.store import Store, dumps, loads

HOLD_MINUTES = 15
PAYLOAD_RE = re.compile(r"^ck-(\d{1,12})$")
SLUG_RE = re.compile(r"^(course|kit|ingredient)/[a-z0-9]+(?:-[a-z0-9]+)*$")
COUPON_RE = re.compile(r"^[A-Za-z0-9-]{3,32}$")
_TABLES = {"course": "courses", "kit": "kits", "ingredient": "ingredients"}


@dataclass(frozen=True)
class Refusal:
    """Why a cart action, a pre-checkout or a payment was refused: a stable code and its details,
    which the front door turns into a sentence in the customer's language."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenedInvoice:
    checkout_id: int
    draft: InvoiceDraft

    @property
    def payload(self) -> str:
        return f"ck-{self.checkout_id}"


@dataclass(frozen=True)
class PaymentFacts:
    """What a successful_payment message (or a pre_checkout_query) tells us, already unpacked."""

    user_id: int
    currency: str
    total_amount: int
    payload: str
    telegram_charge_id: str = ""
    provider_charge_id: str = ""
    shipping_option_id: str | None = None
    order_info: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PaymentOutcome:
    order_id: int
    external_id: str
    status: str  # paid, enrolled or refund_due
    already: bool = False  # the same charge was recorded before
    courses: list[dict[str, Any]] = field(default_factory=list)  # slug, title of newly enrolled courses
    refund_reason: Refusal | None = None
    currency: str = CNY
    paid_amount: int = 0
    lines: list[CartLine] = field(default_factory=list)
    report: OrderImportReport | None = None  # coupons issued / referral rewards of the recorder


class CheckoutService:
    """Carts, invoices, pre-checkout and payments over one store (one per thread, like the store)."""

    def __init__(self, store: Store, *, referral_rules: ReferralRules | None = None):
        self.store = store
        self.events = EventRepository(store)
        self.coupons = CouponRepository(store, self.events)
        self.referral_rules = referral_rules

    # -- catalog ---------------------------------------------------------------------------------
    def catalog_item(self, slug: str) -> dict[str, Any] | None:
        """title, price_cents, stars_price, active, id — or None for an unknown slug."""
        if not SLUG_RE.match(slug or ""):
            return None
        kind = slug.split("/", 1)[0]
        title = "name" if kind == "ingredient" else "title"
        stars = "stars_price" if kind == "course" else "NULL"
        rows = self.store.query(
            f"SELECT id, {title} AS title, price_cents, {stars} AS stars_price, active FROM {_TABLES[kind]} WHERE slug = ?",
            [slug],
        )
        return rows[0] if rows else None

    def priced(self, slug: str, quantity: int) -> CartLine | None:
        item = self.catalog_item(slug)
        if item is None or not item["active"]:
            return None
        stars = stars_for(item["price_cents"], item["stars_price"]) if slug.startswith("course/") else None
        return CartLine(slug, item["title"], quantity, int(item["price_cents"]), stars)

    # -- the cart --------------------------------------------------------------------------------
    def cart(self, user_id: int, now: datetime | None = None) -> CartTotals:
        """The cart at today's prices; items no longer sold are left out, the coupon re-assessed."""
        rows = self.store.query(
            "SELECT item_slug, quantity FROM cart_items WHERE user_id = ? ORDER BY added_at, item_slug", [user_id]
        )
        lines = tuple(line for r in rows if (line := self.priced(r["item_slug"], r["quantity"])) is not None)
        code = self.store.scalar("SELECT coupon_code FROM carts WHERE user_id = ?", [user_id])
        verdict = self._assess(user_id, code, lines, now) if code and lines else None
        return CartTotals(lines, verdict)

    def _assess(self, user_id: int, code: str, lines: tuple[CartLine, ...], now: datetime | None) -> Redemption:
        return assess_coupon(self.coupons.get(code), code, user_id=user_id,
                             items=[line.as_order_item() for line in lines], now=now or datetime.now(UTC))

    def add(self, user_id: int, slug: str, quantity: int = 1) -> Refusal | CartLine:
        """Put an item in the cart (or more of it); courses count once and not if already enrolled."""
        line = self.priced(slug, 1)
        if line is None:
            return Refusal("item_gone")
        if not 1 <= quantity <= MAX_QUANTITY:
            return Refusal("bad_quantity", {"max": MAX_QUANTITY})
        with self.store.transaction() as db:
            if line.kind == "course" and self._enrolled(user_id, slug):
                return Refusal("already_enrolled", {"title": line.title})
            have = self.store.scalar("SELECT quantity FROM cart_items WHERE user_id = ? AND item_slug = ?",
                                     [user_id, slug])
            if have is None and (self.store.scalar("SELECT count(*) FROM cart_items WHERE user_id = ?", [user_id])
                                 >= MAX_LINES):
                return Refusal("cart_full", {"max": MAX_LINES})
            new = 1 if line.kind == "course" else min(MAX_QUANTITY, (have or 0) + quantity)
            self._touch(user_id)
            db.execute(
                """INSERT INTO cart_items (user_id, item_slug, quantity) VALUES (?, ?, ?)
                   ON CONFLICT (user_id, item_slug) DO UPDATE SET quantity = excluded.quantity""",
                [user_id, slug, new],
            )
            self.events.record(user_id, EventKind.ADD_TO_CART, slug, payload={"quantity": new})
        return CartLine(line.slug, line.title, new, line.unit_cents, line.unit_stars)

    def set_quantity(self, user_id: int, slug: str, quantity: int) -> Refusal | None:
        """0 removes the line; courses stay at one."""
        if not 0 <= quantity <= MAX_QUANTITY:
            return Refusal("bad_quantity", {"max": MAX_QUANTITY})
        with self.store.transaction() as db:
            if quantity == 0:
                db.execute("DELETE FROM cart_items WHERE user_id = ? AND item_slug = ?", [user_id, slug])
                return None
            if slug.startswith("course/") and quantity > 1:
                return Refusal("course_once")
            cursor = db.execute("UPDATE cart_items SET quantity = ? WHERE user_id = ? AND item_slug = ?",
                                [quantity, user_id, slug])
            return None if cursor.rowcount == 1 else Refusal("not_in_cart")

    def apply_coupon(self, user_id: int, code: str, now: datetime | None = None) -> Redemption:
        """Check the coupon against this cart (owner, expiry, one use, target kind, minimum spend) and
        remember it on the cart if it passes; it is checked again at pre-checkout and used on payment."""
        shown = (code or "").strip().upper()
        if not COUPON_RE.match(shown):
            return Redemption.refused(shown, "unknown", "")
        totals = self.cart(user_id, now)
        verdict = self._assess(user_id, shown, totals.lines, now)
        if verdict.ok:
            with self.store.transaction() as db:
                self._touch(user_id)
                db.execute("UPDATE carts SET coupon_code = ? WHERE user_id = ?", [shown, user_id])
        return verdict

    def drop_coupon(self, user_id: int) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE carts SET coupon_code = NULL WHERE user_id = ?", [user_id])

    def _touch(self, user_id: int) -> None:
        self.store.db.execute(
            """INSERT INTO carts (user_id) VALUES (?)
               ON CONFLICT (user_id) DO UPDATE SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')""",
            [user_id],
        )

    def _enrolled(self, user_id: int, course_slug: str) -> bool:
        return bool(self.store.scalar(
            "SELECT 1 FROM enrolments e JOIN courses c ON c.id = e.course_id WHERE e.user_id = ? AND c.slug = ?",
            [user_id, course_slug],
        ))

    # -- invoices --------------------------------------------------------------------------------
    def open_checkout(self, user_id: int, now: datetime | None = None) -> list[OpenedInvoice] | Refusal:
        """One checkout row per invoice (CNY goods, XTR courses); older open ones of the user lapse."""
        moment = now or datetime.now(UTC)
        totals = self.cart(user_id, moment)
        if not totals.lines:
            return Refusal("cart_empty")
        coupon = totals.coupon if totals.coupon is not None and totals.coupon.ok else None
        target = coupon.coupon["target_type"] if coupon is not None and coupon.coupon else None
        drafts = split_invoices(totals.lines, coupon, target)
        opened = []
        with self.store.transaction() as db:
            db.execute("UPDATE checkouts SET status = 'superseded' WHERE user_id = ? AND status = 'open'", [user_id])
            db.execute("DELETE FROM stock_holds WHERE checkout_id IN (SELECT id FROM checkouts WHERE user_id = ?"
                       " AND status = 'superseded')", [user_id])
            for draft in drafts:
                cursor = db.execute(
                    """INSERT INTO checkouts (user_id, currency, lines, coupon_code, discount, items_total, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    [user_id, draft.currency, dumps([line.to_dict() for line in draft.lines]), draft.coupon_code,
                     draft.discount, draft.items_total, iso_utc(moment)],
                )
                opened.append(OpenedInvoice(int(cursor.lastrowid or 0), draft))
            self.events.record(user_id, EventKind.CHECKOUT, payload={
                "checkouts": [o.checkout_id for o in opened], "total_cents": totals.total_cents,
                "currencies": [o.draft.currency for o in opened],
            }, created_at=iso_utc(moment))
        return opened

    def checkout(self, payload: str) -> dict[str, Any] | None:
        match = PAYLOAD_RE.match(payload or "")
        if match is None:
            return None
        rows = self.store.query("SELECT * FROM checkouts WHERE id = ?", [int(match.group(1))])
        if not rows:
            return None
        row = rows[0]
        row["lines"] = [CartLine.from_dict(d) for d in loads(row["lines"], [])]
        return row

    def draft_of(self, row: Mapping[str, Any]) -> InvoiceDraft:
        return InvoiceDraft(row["currency"], tuple(row["lines"]), row["items_total"], row["discount"],
                            row["coupon_code"])

    def delivery_for(self, row: Mapping[str, Any], now: datetime | None = None) -> list[DeliveryOption]:
        """Shipping options for a CNY checkout: half-day slots when fresh goods are in it."""
        lines = row["lines"]
        fresh = any(line.kind == "kit" for line in lines) or any(
            is_perishable(self.store.scalar("SELECT shelf_life_days FROM ingredients WHERE slug = ?", [line.slug]))
            for line in lines if line.kind == "ingredient"
        )
        goods = row["items_total"] - row["discount"]
        return delivery_options(goods, fresh, (now or datetime.now(UTC)) + timedelta(hours=8))  # Beijing date

    def shipping_check(self, user_id: int, payload: str, country_code: str | None) -> list[DeliveryOption] | Refusal:
        row = self.checkout(payload)
        if row is None or row["user_id"] != user_id or row["status"] != "open" or row["currency"] != CNY:
            return Refusal("unknown_order")
        if (country_code or "").upper() != "CN":
            return Refusal("no_delivery_area")
        return self.delivery_for(row)

    # -- the gate ----------------------------------------------------------------------------------
    def pre_checkout(self, facts: PaymentFacts, now: datetime | None = None) -> Refusal | None:
        """None when the order may be paid (and its perishables are held); else why not."""
        moment = now or datetime.now(UTC)
        with self.store.transaction() as db:
            row = self.checkout(facts.payload)
            if row is None or row["user_id"] != facts.user_id:
                return Refusal("unknown_order")
            if row["status"] != "open":
                return Refusal("stale_invoice")
            problem = self._still_sellable(row, moment) or self._amount_problem(row, facts, moment)
            if problem is not None:
                return problem
            need = self._stock_need(row["lines"])
            short = self._short_line(row, need, moment)
            if short is not None:
                return Refusal("out_of_stock", {"title": short})
            db.execute("DELETE FROM stock_holds WHERE checkout_id = ?", [row["id"]])
            until = iso_utc(moment + timedelta(minutes=HOLD_MINUTES))
            for ingredient_id, units in need.units.items():
                if self._perishable(ingredient_id):
                    db.execute("INSERT INTO stock_holds (checkout_id, ingredient_id, quantity, expires_at)"
                               " VALUES (?, ?, ?, ?)", [row["id"], ingredient_id, units, until])
        return None

    def _still_sellable(self, row: Mapping[str, Any], moment: datetime) -> Refusal | None:
        for line in row["lines"]:
            now_line = self.priced(line.slug, line.quantity)
            if now_line is None:
                return Refusal("item_gone", {"title": line.title})
            if now_line.unit_cents != line.unit_cents or now_line.unit_stars != line.unit_stars:
                return Refusal("price_changed", {
                    "title": line.title, "old_cents": line.unit_cents, "new_cents": now_line.unit_cents,
                    "currency": row["currency"], "old_stars": line.unit_stars, "new_stars": now_line.unit_stars,
                })
        if row["coupon_code"]:
            verdict = self._assess(row["user_id"], row["coupon_code"], tuple(row["lines"]), moment)
            if not verdict.ok:
                return Refusal("coupon", {"code": row["coupon_code"], "reason": verdict.reason})
        return None

    def _amount_problem(self, row: Mapping[str, Any], facts: PaymentFacts, moment: datetime) -> Refusal | None:
        if facts.currency != row["currency"]:
            return Refusal("amount_mismatch")
        expected = self.draft_of(row).total
        if row["currency"] == CNY:
            option = find_option(self.delivery_for(row, moment), facts.shipping_option_id)
            if option is None:
                return Refusal("no_delivery_slot")
            expected += option.fee_cents
        return None if facts.total_amount == expected else Refusal("amount_mismatch")

    def _perishable(self, ingredient_id: int) -> bool:
        return is_perishable(self.store.scalar("SELECT shelf_life_days FROM ingredients WHERE id = ?", [ingredient_id]))

    def _stock_need(self, lines: list[CartLine]) -> StockNeed:
        need = StockNeed()
        for line in lines:
            if line.kind == "ingredient":
                need.add(int(self.store.scalar("SELECT id FROM ingredients WHERE slug = ?", [line.slug])), line.quantity)
            elif line.kind == "kit":
                for (ingredient_id,) in self.store.db.execute(
                    "SELECT ki.ingredient_id FROM kit_items ki JOIN kits k ON k.id = ki.kit_id WHERE k.slug = ?",
                    [line.slug],
                ):
                    need.add(int(ingredient_id), line.quantity)
        return need

    def _available(self, ingredient_id: int, checkout_id: int, moment: datetime) -> int:
        """Stock less what other checkouts hold right now."""
        stock = int(self.store.scalar("SELECT stock FROM ingredients WHERE id = ?", [ingredient_id]) or 0)
        held = self.store.scalar(
            "SELECT coalesce(sum(quantity), 0) FROM stock_holds WHERE ingredient_id = ? AND checkout_id <> ?"
            " AND expires_at > ?", [ingredient_id, checkout_id, iso_utc(moment)],
        )
        return stock - int(held or 0)

    def _short_line(self, row: Mapping[str, Any], need: StockNeed, moment: datetime) -> str | None:
        """The title of a line that cannot be filled, or None when every ingredient suffices."""
        short = {i for i, units in need.units.items() if self._available(i, row["id"], moment) < units}
        if not short:
            return None
        for line in row["lines"]:
            if line.physical and set(self._stock_need([line]).units) & short:
                return line.title
        return row["lines"][0].title

    # -- payments ----------------------------------------------------------------------------------
    def record_payment(self, facts: PaymentFacts, now: datetime | None = None) -> PaymentOutcome:
        """Store a successful payment once; a replay of the same charge returns the first order."""
        moment = now or datetime.now(UTC)
        with self.store.transaction():
            known = self._order_by_charge(facts.telegram_charge_id)
            if known is not None:
                return known
            row = self.checkout(facts.payload)
            problem = self._payment_problem(row, facts, moment)
            if problem is not None:
                return self._refund_due(row, facts, problem, moment)
            assert row is not None
            need = self._stock_need(row["lines"])
            short = self._short_line(row, need, moment)
            if short is not None:
                return self._refund_due(row, facts, Refusal("out_of_stock", {"title": short}), moment)
            return self._fulfil(row, facts, need, moment)

    def _payment_problem(self, row: Mapping[str, Any] | None, facts: PaymentFacts, moment: datetime) -> Refusal | None:
        if not facts.telegram_charge_id:
            return Refusal("amount_mismatch")
        if row is None or row["user_id"] != facts.user_id:
            return Refusal("unknown_order")
        if row["status"] == "paid":
            return Refusal("stale_invoice")
        return self._amount_problem(row, facts, moment)

    def _order_by_charge(self, charge_id: str) -> PaymentOutcome | None:
        if not charge_id:
            return None
        rows = self.store.query("SELECT * FROM orders WHERE telegram_charge_id = ?", [charge_id])
        if not rows:
            return None
        order = rows[0]
        return PaymentOutcome(order["id"], order["external_id"], order["status"], already=True,
                              currency=order["currency"], paid_amount=order["paid_amount"] or 0)

    def _fulfil(self, row: Mapping[str, Any], facts: PaymentFacts, need: StockNeed, moment: datetime) -> PaymentOutcome:
        lines: list[CartLine] = row["lines"]
        external_id = f"bot-{row['id']}"
        record = OrderRecord(external_id, facts.user_id, row["coupon_code"], moment,
                             tuple(line.as_order_item() for line in lines), None, "bot")
        report = OrderImportReport()
        OrderRecorder(self.store, as_of=lambda: moment, referral_rules=self.referral_rules).record(record, (), report)
        order_id = self.store.scalar("SELECT id FROM orders WHERE external_id = ?", [external_id])
        if order_id is None:  # the recorder refused it (e.g. the customer's row is gone): still keep the money
            reasons = "; ".join(r for p in report.rejected for r in p.reasons)
            return self._refund_due(row, facts, Refusal("not_recorded", {"reasons": reasons[:300]}), moment)
        status = "enrolled" if all(line.kind == "course" for line in lines) else "paid"
        db = self.store.db
        db.execute(
            """UPDATE orders SET status = ?, status_at = ?, currency = ?, paid_amount = ?, telegram_charge_id = ?,
                   provider_charge_id = ?, delivery = ? WHERE id = ?""",
            [status, iso_utc(moment), facts.currency, facts.total_amount, facts.telegram_charge_id,
             facts.provider_charge_id or None, dumps(self._delivery(row, facts, moment)), order_id],
        )
        for ingredient_id, units in need.units.items():
            db.execute("UPDATE ingredients SET stock = stock - ? WHERE id = ?", [units, ingredient_id])
        courses = []
        for line in lines:
            if line.kind == "course":
                cursor = db.execute(
                    "INSERT OR IGNORE INTO enrolments (user_id, course_id, order_id, enrolled_at)"
                    " SELECT ?, id, ?, ? FROM courses WHERE slug = ?",
                    [facts.user_id, order_id, iso_utc(moment), line.slug],
                )
                if cursor.rowcount:
                    courses.append({"slug": line.slug, "title": line.title})
        self._close_checkout(row, order_id, lines)
        return PaymentOutcome(order_id, external_id, status, courses=courses, currency=facts.currency,
                              paid_amount=facts.total_amount, lines=lines, report=report)

    def _delivery(self, row: Mapping[str, Any], facts: PaymentFacts, moment: datetime) -> dict[str, Any]:
        if row["currency"] != CNY:
            return {}
        option = find_option(self.delivery_for(row, moment), facts.shipping_option_id)
        info = dict(facts.order_info or {})
        return {"option": facts.shipping_option_id, "day": option.day if option else None,
                "part": option.part if option else None, "fee_cents": option.fee_cents if option else 0,
                "name": info.get("name"), "phone": info.get("phone_number"),
                "address": info.get("shipping_address")}

    def _close_checkout(self, row: Mapping[str, Any], order_id: int, lines: list[CartLine]) -> None:
        db = self.store.db
        db.execute("UPDATE checkouts SET status = 'paid', order_id = ? WHERE id = ?", [order_id, row["id"]])
        db.execute("DELETE FROM stock_holds WHERE checkout_id = ?", [row["id"]])
        for line in lines:
            db.execute("DELETE FROM cart_items WHERE user_id = ? AND item_slug = ?", [row["user_id"], line.slug])
        if row["coupon_code"]:
            db.execute("UPDATE carts SET coupon_code = NULL WHERE user_id = ? AND coupon_code = ?",
                       [row["user_id"], row["coupon_code"]])

    def _refund_due(self, row: Mapping[str, Any] | None, facts: PaymentFacts, problem: Refusal,
                    moment: datetime) -> PaymentOutcome:
        """Money arrived for an order we cannot fulfil: keep it as an order for support to refund.
        No purchase event, coupon use, stock change or enrolment — it is not a sale."""
        charge = facts.telegram_charge_id or f"missing-{int(moment.timestamp() * 1000)}"
        external_id = f"bot-refund-{charge}"[:128]
        lines: list[CartLine] = list(row["lines"]) if row is not None and row["user_id"] == facts.user_id else []
        user = facts.user_id if self.store.scalar("SELECT 1 FROM users WHERE id = ?", [facts.user_id]) else None
        db = self.store.db
        cursor = db.execute(
            """INSERT INTO orders (external_id, user_id, coupon_code, total_cents, source, created_at, status,
                   status_at, currency, paid_amount, telegram_charge_id, provider_charge_id, delivery)
               VALUES (?, ?, NULL, 0, 'bot', ?, 'refund_due', ?, ?, ?, ?, ?, ?)""",
            [external_id, user, iso_utc(moment), iso_utc(moment), facts.currency[:3], max(0, facts.total_amount),
             facts.telegram_charge_id or None, facts.provider_charge_id or None,
             dumps({"problem": problem.code, **problem.params, "payload": facts.payload[:128]})],
        )
        order_id = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO order_items (order_id, item_slug, quantity, price_cents) VALUES (?, ?, ?, ?)",
            [(order_id, line.slug, line.quantity, line.unit_cents) for line in lines],
        )
        if row is not None and row["user_id"] == facts.user_id:
            db.execute("DELETE FROM stock_holds WHERE checkout_id = ?", [row["id"]])
            db.execute("UPDATE checkouts SET status = 'paid', order_id = ? WHERE id = ?", [order_id, row["id"]])
        return PaymentOutcome(order_id, external_id, "refund_due", refund_reason=problem, currency=facts.currency,
                              paid_amount=facts.total_amount, lines=lines)
