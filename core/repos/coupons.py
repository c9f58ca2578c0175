"""Coupons: readable unique codes, issued once per (user, rule) or per (user, campaign), redeemed by
code with clear reasons, expired by a job; every state change is logged as an event in the same
transaction."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain import EventKind, format_price
from core.repos.events import EventRepository
from core.store import Store

# Crockford-style alphabet without look-alikes (0/O, 1/I/L): easy to read aloud to a cashier.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_PREFIX = "XK-"
CODE_LENGTH = 6
TARGET_TYPES = ("any", "course", "kit", "ingredient")


def new_code() -> str:
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def iso_utc(moment: datetime) -> str:
    """The store's timestamp shape (UTC, milliseconds, 'Z'): such strings sort like the moments they name."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_iso = iso_utc  # kept for callers of the original private name


class CouponRepository:
    def __init__(self, store: Store, events: EventRepository | None = None):
        self.store = store
        self.events = events or EventRepository(store)

    def issue(
        self,
        user_id: int,
        *,
        rule: str,
        target_type: str,
        discount_cents: int,
        min_spend_cents: int = 0,
        campaign_id: int | None = None,
        days_valid: int = 14,
        item_slug: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A new coupon (and its coupon_issued event) in one transaction."""
        if target_type not in TARGET_TYPES:
            raise ValueError(f"target_type must be one of {', '.join(TARGET_TYPES)}")
        if discount_cents <= 0 or min_spend_cents < 0 or days_valid <= 0:
            raise ValueError("discount_cents and days_valid must be positive, min_spend_cents not negative")
        issued = now or datetime.now(UTC)
        for _ in range(8):  # 31^6 ≈ 887M codes: a collision is rare, eight in a row impossible in practice
            code = new_code()
            try:
                with self.store.transaction() as db:
                    db.execute(
                        """INSERT INTO coupons (code, user_id, campaign_id, rule, target_type, discount_cents,
                               min_spend_cents, issued_at, expires_at, status)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'issued')""",
                        [code, user_id, campaign_id, rule, target_type, discount_cents, min_spend_cents,
                         _iso(issued), _iso(issued + timedelta(days=days_valid))],
                    )
                    self.events.record(
                        user_id, EventKind.COUPON_ISSUED, item_slug, campaign_id=campaign_id,
                        payload={"code": code, "rule": rule, "target_type": target_type,
                                 "discount_cents": discount_cents},
                        created_at=_iso(issued),
                    )
            except sqlite3.IntegrityError as exc:
                if "coupons.code" in str(exc):
                    continue
                raise
            coupon = self.get(code)
            assert coupon is not None
            return coupon
        raise RuntimeError("could not draw a unique coupon code")

    def issue_once(self, user_id: int, *, rule: str, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        """(coupon, created): the user's live coupon for `rule` if there is one, else a new one."""
        with self.store.transaction():
            existing = self.find(user_id, rule)
            if existing is not None:
                return existing, False
            return self.issue(user_id, rule=rule, **kwargs), True

    def find(self, user_id: int, rule: str) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT * FROM coupons WHERE user_id = ? AND rule = ? AND status != 'revoked' ORDER BY id LIMIT 1",
            [user_id, rule],
        )
        return rows[0] if rows else None

    def get(self, code: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM coupons WHERE code = ?", [code.strip().upper()])
        return rows[0] if rows else None

    def list_for(self, user_id: int, *, include_used: bool = True) -> list[dict[str, Any]]:
        """The user's coupons, newest first; expiry is computed on read (status 'expired' if past)."""
        where = "" if include_used else "AND status = 'issued'"
        rows = self.store.query(f"SELECT * FROM coupons WHERE user_id = ? {where} ORDER BY id DESC", [user_id])
        now = _iso(datetime.now(UTC))
        for row in rows:
            if row["status"] == "issued" and row["expires_at"] and row["expires_at"] < now:
                row["status"] = "expired"
        return rows

    # -- campaign coupons, redemption and expiry (issue 7) -----------------------------------

    def for_campaign(self, user_id: int, campaign_id: int) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT * FROM coupons WHERE user_id = ? AND campaign_id = ? ORDER BY id LIMIT 1", [user_id, campaign_id]
        )
        return rows[0] if rows else None

    def issue_for_campaign(
        self,
        user_id: int,
        campaign_id: int,
        *,
        rule: str,
        target_type: str,
        discount_cents: int,
        min_spend_cents: int = 0,
        days_valid: int = 14,
        item_slug: str | None = None,
        now: datetime | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(coupon, created): one coupon per user per campaign; a second attempt returns the first.

        The partial unique index coupons_one_per_campaign is the real guarantee; the lookup first
        only saves a failed insert in the common case.
        """
        with self.store.transaction():
            existing = self.for_campaign(user_id, campaign_id)
            if existing is not None:
                return existing, False
            try:
                coupon = self.issue(
                    user_id, rule=rule, target_type=target_type, discount_cents=discount_cents,
                    min_spend_cents=min_spend_cents, campaign_id=campaign_id, days_valid=days_valid,
                    item_slug=item_slug, now=now,
                )
            except sqlite3.IntegrityError as exc:
                if "coupons.user_id, coupons.campaign_id" not in str(exc):
                    raise
                existing = self.for_campaign(user_id, campaign_id)
                if existing is None:
                    raise
                return existing, False
            return coupon, True

    def redeem(
        self,
        code: str,
        *,
        user_id: int | None = None,
        order_id: int | None = None,
        items: Iterable[tuple[str, int, int]] | None = None,
        spend_cents: int | None = None,
        now: datetime | None = None,
    ) -> Redemption:
        """Use a coupon: checks it exists, is live at `now`, belongs to `user_id` (when both are known)
        and that the order reaches the minimum spend on the coupon's target (course / kit / …).

        `items` are (slug, quantity, unit price in cents) order lines; without them `spend_cents` is
        taken as the eligible amount, and without either the minimum spend is not checked (the
        cashier's /redeem). Replaying the same order is harmless: it answers ok with `already=True`.
        The status change and its `redeem` event are written in one transaction.
        """
        moment = now or datetime.now(UTC)
        shown = (code or "").strip().upper()
        with self.store.transaction() as db:
            coupon = self.get(shown) if shown else None
            verdict = assess_coupon(coupon, shown, user_id=user_id, order_id=order_id, items=items,
                                    spend_cents=spend_cents, now=moment)
            if not verdict.ok or verdict.already:
                return verdict
            assert coupon is not None
            cursor = db.execute(
                "UPDATE coupons SET status = 'redeemed', redeemed_at = ?, order_id = ? WHERE id = ? AND status = 'issued'",
                [iso_utc(moment), order_id, coupon["id"]],
            )
            if cursor.rowcount != 1:  # another connection redeemed it between our read and write
                return Redemption.refused(shown, "redeemed", f"券 {shown} 刚刚已被使用。", coupon)
            discount = verdict.discount_cents
            self.events.record(
                user_id if user_id is not None else coupon["user_id"], EventKind.REDEEM,
                campaign_id=coupon["campaign_id"],
                payload={"code": shown, "order_id": order_id, "discount_cents": discount, "rule": coupon["rule"]},
                created_at=iso_utc(moment),
            )
        redeemed = self.get(shown)
        return Redemption(shown, True, coupon=redeemed, discount_cents=discount)

    def expire_due(self, now: datetime | None = None) -> int:
        """Mark issued coupons past their expiry as 'expired', one coupon_expired event each; returns the count."""
        moment = iso_utc(now or datetime.now(UTC))
        with self.store.transaction() as db:
            due = self.store.query(
                "SELECT id, code, user_id, campaign_id, rule, expires_at FROM coupons"
                " WHERE status = 'issued' AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY id",
                [moment],
            )
            for row in due:
                db.execute("UPDATE coupons SET status = 'expired' WHERE id = ? AND status = 'issued'", [row["id"]])
                self.events.record(
                    row["user_id"], EventKind.COUPON_EXPIRED, campaign_id=row["campaign_id"],
                    payload={"code": row["code"], "rule": row["rule"], "expires_at": row["expires_at"]},
                    created_at=moment,
                )
        return len(due)


def assess_coupon(
    coupon: Mapping[str, Any] | None,
    code: str,
    *,
    user_id: int | None = None,
    order_id: int | None = None,
    items: Iterable[tuple[str, int, int]] | None = None,
    spend_cents: int | None = None,
    now: datetime,
) -> Redemption:
    """Whether `coupon` may be used now on these order lines, and for how much, without using it.

    The one set of rules (exists, not revoked, one use, not expired, owner, target kind, minimum spend)
    shared by redemption and by the cart's and pre-checkout's checks.
    """
    shown = code.strip().upper()
    if coupon is None:
        return Redemption.refused(shown, "unknown", f"券码 {shown or '（空）'} 不存在，请核对后重试。")
    status = coupon["status"]
    if status == "revoked":
        return Redemption.refused(shown, "revoked", f"券 {shown} 已作废，不能使用。", coupon)
    if status == "redeemed":
        if order_id is not None and coupon["order_id"] == order_id:
            return Redemption(shown, True, coupon=coupon, discount_cents=coupon["discount_cents"], already=True)
        when = (coupon["redeemed_at"] or "")[:10]
        return Redemption.refused(shown, "redeemed", f"券 {shown} 已在 {when} 使用过，每张券只能用一次。", coupon)
    if status == "expired" or (coupon["expires_at"] and coupon["expires_at"] <= iso_utc(now)):
        when = (coupon["expires_at"] or "")[:10]
        return Redemption.refused(shown, "expired", f"券 {shown} 已于 {when} 过期。", coupon)
    if user_id is not None and coupon["user_id"] is not None and coupon["user_id"] != user_id:
        return Redemption.refused(shown, "foreign", f"券 {shown} 属于其他顾客，不能在这笔订单上使用。", coupon)
    eligible = _eligible_cents(coupon["target_type"], items, spend_cents)
    target = TARGET_ZH.get(coupon["target_type"], coupon["target_type"])
    if eligible == 0 and coupon["target_type"] != "any" and items is not None:
        return Redemption.refused(shown, "wrong_target", f"这笔订单里没有{target}，{target}券不能使用。", coupon)
    if eligible is not None and eligible < coupon["min_spend_cents"]:
        return Redemption.refused(
            shown, "min_spend",
            f"未达到使用门槛：{target}满 {format_price(coupon['min_spend_cents'])} 可用，"
            f"这笔订单的{target}金额是 {format_price(eligible)}。",
            coupon,
        )
    discount = coupon["discount_cents"] if eligible is None else min(coupon["discount_cents"], eligible)
    return Redemption(shown, True, coupon=coupon, discount_cents=discount)


TARGET_ZH = {"any": "全场", "course": "课程", "kit": "食材包", "ingredient": "食材"}


@dataclass(frozen=True)
class Redemption:
    """The answer to a redemption attempt. `reason` is a stable key (unknown, revoked, redeemed, expired,
    foreign, wrong_target, min_spend) for translations; `message_zh` is what to show a customer or cashier."""

    code: str
    ok: bool
    reason: str | None = None
    message_zh: str = ""
    coupon: Mapping[str, Any] | None = None
    discount_cents: int = 0
    already: bool = False

    @classmethod
    def refused(cls, code: str, reason: str, message_zh: str, coupon: Mapping[str, Any] | None = None) -> Redemption:
        return cls(code, False, reason, message_zh, coupon)


def _eligible_cents(target_type: str, items: Iterable[tuple[str, int, int]] | None, spend_cents: int | None) -> int | None:
    """What the minimum spend is measured on: the order lines of the coupon's target kind."""
    if items is None:
        return spend_cents
    lines = list(items)
    if target_type == "any":
        return sum(quantity * price for _, quantity, price in lines)
    return sum(quantity * price for slug, quantity, price in lines if slug.split("/", 1)[0] == target_type)
