"""Orders from the shop: validation, recording and file import (CSV / JSON / JSONL); the token-protected
HTTP webhook that records them too is web/orders.py.

Each order is validated on its own (reasons name the line and the field), then stored in its own
transaction together with its lines, its coupon redemption, its `purchase` event and any coupons
that purchase rules hand out — so a bad row never blocks the good ones and a crash never leaves half
an order. Orders are idempotent on `external_id`: importing a file twice, or a webhook retry, adds
nothing the second time.

Attribution (stored in the purchase event's campaign_id): the campaign of the redeemed coupon if it
has one (the most direct evidence), else the user's most recent in-period entry through a campaign
link within that campaign's `attribution_days` before the order.

The purchase event carries no item_slug: personalisation already reads order lines from
order_items, and a per-line event would count each purchase twice.

    CSV, one row per order line (lines of one order share external_id; order fields may be repeated):
        external_id,user_id,coupon_code,created_at,item_slug,quantity,price_cents[,total_cents,source]
    CSV, one row per order with an `items` column holding the JSON list of lines.
    JSON: [order, …] or {"orders": [order, …]} or one order; JSONL: one order per line, where
        order = {"external_id", "user_id"?, "coupon_code"?, "created_at", "total_cents"?, "source"?,
                 "items": [{"slug", "quantity"?, "price_cents"}, …]}
    user_id or coupon_code is required (a customer's coupon identifies them).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from commerce.campaigns import apply_purchase_rules
from commerce.referrals import ReferralProgram, ReferralRules, RewardOutcome
from core.domain import EventKind
from core.logging import log_event
from core.repos.coupons import CouponRepository, iso_utc
from core.repos.events import EventRepository
from core.store import Store
from core.validation import (
    CsvProblem,
    FileRejected,
    InputRejected,
    bounded_int,
    csv_dicts,
    decode_bytes,
    free_text,
    identifier_reason,
    loads_json,
)
from nlp.ingest_schema import parse_timestamp

log = logging.getLogger(__name__)

SHOP_ZONE = ZoneInfo("Asia/Shanghai")
MAX_LINES_PER_ORDER = 200
MAX_WEBHOOK_ORDERS = 500
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
_ITEM_SLUG_RE = re.compile(r"^(course|kit|ingredient)/[a-z0-9]+(?:-[a-z0-9]+)*$")
_CODE_RE = re.compile(r"^[A-Za-z0-9-]{3,32}$")
_SOURCE_RE = re.compile(r"^[\w.:-]{1,32}$")
_ORDER_FIELDS = ("external_id", "user_id", "coupon_code", "created_at", "total_cents", "source")


# -- reports ---------------------------------------------------------------------------------


@dataclass
class RowProblem:
    lines: tuple[int, ...]  # file lines (CSV, JSONL) or 1-based item numbers (JSON, webhook)
    external_id: str | None
    reasons: list[str]

    @property
    def where(self) -> str:
        if not self.lines:
            return "?"
        first, last = self.lines[0], self.lines[-1]
        return f"第 {first} 行" if first == last else f"第 {first}–{last} 行"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.lines[0] if self.lines else None, "lines": list(self.lines),
                "external_id": self.external_id, "reasons": self.reasons}


@dataclass
class OrderImportReport:
    added: int = 0
    duplicates: int = 0
    rejected: list[RowProblem] = field(default_factory=list)  # not stored: fix and import again
    warnings: list[RowProblem] = field(default_factory=list)  # stored, but e.g. the coupon was not accepted
    coupons_redeemed: int = 0
    attributed: int = 0
    coupons_issued: list[dict[str, Any]] = field(default_factory=list)  # purchase-rule coupons to announce
    referral_rewards: list[dict[str, Any]] = field(default_factory=list)  # referral decisions taken by this import

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "warnings": len(self.warnings),
            "coupons_redeemed": self.coupons_redeemed,
            "attributed": self.attributed,
            "coupons_issued": len(self.coupons_issued),
            "referral_rewards": sum(r["status"] == "rewarded" for r in self.referral_rewards),
        }


# -- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRecord:
    external_id: str
    user_id: int | None
    coupon_code: str | None
    created_at: datetime
    items: tuple[tuple[str, int, int], ...]  # (slug, quantity, unit price in cents), one per slug
    total_cents: int | None
    source: str

    @property
    def items_cents(self) -> int:
        return sum(q * p for _, q, p in self.items)


def validate_order(
    payload: Any, *, zone: tzinfo = SHOP_ZONE, now: datetime | None = None, default_source: str = "import"
) -> OrderRecord | list[str]:
    """An `OrderRecord`, or the reasons (each naming its field) why the payload cannot be stored."""
    if not isinstance(payload, Mapping):
        return [f"每个订单必须是一个对象（收到 {type(payload).__name__}）"]
    reasons: list[str] = []
    external_id = _text(payload.get("external_id"), "external_id", 128, reasons, required=True)
    user_id = _int(payload.get("user_id"), "user_id", 1, 2**53, reasons)
    code = _text(payload.get("coupon_code"), "coupon_code", 32, reasons)
    if code is not None and not _CODE_RE.match(code):
        reasons.append(f"coupon_code：{code!r} 不是券码格式（例如 XK-7KQ2MD）")
    if user_id is None and code is None and not any(r.startswith("user_id") for r in reasons):
        reasons.append("user_id / coupon_code：至少需要一个，才能知道是哪位顾客")
    created_at = _moment(payload.get("created_at"), zone, now or datetime.now(UTC), reasons)
    total = _int(payload.get("total_cents"), "total_cents", 0, 1_000_000_000, reasons)
    source = _text(payload.get("source"), "source", 32, reasons) or default_source
    if not _SOURCE_RE.match(source):
        reasons.append("source：只能用字母、数字和 _ . : -")
    items = _items(payload.get("items"), reasons)
    if reasons:
        return reasons
    assert external_id is not None and created_at is not None and items is not None
    return OrderRecord(external_id, user_id, code.upper() if code else None, created_at, items, total, source)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any, name: str, limit: int, reasons: list[str], *, required: bool = False) -> str | None:
    if _blank(value):
        if required:
            reasons.append(f"{name}：不能为空")
        return None
    unusable = identifier_reason(value, name)
    if unusable:
        reasons.append(unusable)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        reasons.append(f"{name}：必须是文字（收到 {type(value).__name__}）")
        return None
    text = str(value).strip()
    if len(text) > limit:
        reasons.append(f"{name}：太长（最多 {limit} 个字符）")
        return None
    return text


def _int(value: Any, name: str, low: int, high: int, reasons: list[str]) -> int | None:
    if _blank(value):
        return None
    number = bounded_int(value, name, low, high)  # the shared policy: no float detour, no overflow
    if isinstance(number, str):
        reasons.append(number)
        return None
    return number


def _moment(value: Any, zone: tzinfo, now: datetime, reasons: list[str]) -> datetime | None:
    if _blank(value):
        reasons.append("created_at：不能为空（下单时间，ISO 8601 或秒级时间戳）")
        return None
    moment = parse_timestamp(value, zone)
    if moment is None:
        reasons.append(f"created_at：{str(value)[:40]!r} 不是日期时间（例如 2026-11-28 14:30 或 2026-11-28T14:30:00+08:00）")
        return None
    if moment < EARLIEST or moment > now + FUTURE_SLACK:
        reasons.append(f"created_at：{str(value)[:40]!r} 不合理（早于 2000 年或在未来）")
        return None
    return moment.astimezone(UTC)


def _items(value: Any, reasons: list[str]) -> tuple[tuple[str, int, int], ...] | None:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = loads_json(value)
        except InputRejected as exc:
            reasons.append(f"items：不是合法的 JSON 列表（{exc}）")
            return None
    if not isinstance(value, list) or not value:
        reasons.append("items：至少需要一行商品（slug、quantity、price_cents）")
        return None
    if len(value) > MAX_LINES_PER_ORDER:
        reasons.append(f"items：一笔订单最多 {MAX_LINES_PER_ORDER} 行")
        return None
    merged: dict[str, list[int]] = {}
    for n, line in enumerate(value, start=1):
        if not isinstance(line, Mapping):
            reasons.append(f"items 第 {n} 项：必须是对象")
            continue
        before = len(reasons)
        slug = _text(line.get("slug", line.get("item_slug")), f"items 第 {n} 项 slug", 80, reasons, required=True)
        if slug is not None and not _ITEM_SLUG_RE.match(slug):
            reasons.append(f"items 第 {n} 项 slug：{slug!r} 应为 course/…、kit/… 或 ingredient/…（小写字母、数字和 -）")
        quantity = _int(line.get("quantity", 1), f"items 第 {n} 项 quantity", 1, 1000, reasons)
        price = _int(line.get("price_cents"), f"items 第 {n} 项 price_cents", 0, 10_000_000, reasons)
        if price is None and len(reasons) == before:
            reasons.append(f"items 第 {n} 项 price_cents：不能为空（单价，单位：分）")
        if len(reasons) > before or slug is None or quantity is None or price is None:
            continue
        entry = merged.setdefault(slug, [0, price])
        if entry[1] != price:
            reasons.append(f"items：{slug} 出现了两个不同的单价")
        entry[0] += quantity
    return tuple((slug, q, p) for slug, (q, p) in merged.items())


# -- storing one order -----------------------------------------------------------------------


class OrderRecorder:
    """Stores validated orders; one per thread (it holds the thread's store)."""

    def __init__(
        self,
        store: Store,
        *,
        as_of: Callable[[], datetime] = lambda: datetime.now(UTC),
        referral_rules: ReferralRules | None = None,
    ):
        self.store = store
        self.events = EventRepository(store)
        self.coupons = CouponRepository(store, self.events)
        self.as_of = as_of  # "now" for deciding whether a purchase-rule coupon is still worth issuing
        self.referral_rules = referral_rules  # None: XIANKE_REFERRAL_* (read only when a referred friend buys)
        self._referrals: ReferralProgram | None = None

    def record(self, rec: OrderRecord, lines: tuple[int, ...], report: OrderImportReport) -> None:
        with self.store.transaction() as db:
            if self.store.scalar("SELECT 1 FROM orders WHERE external_id = ?", [rec.external_id]):
                report.duplicates += 1
                return
            coupon = self.coupons.get(rec.coupon_code) if rec.coupon_code else None
            user_id = rec.user_id
            if user_id is None:
                if coupon is None or coupon["user_id"] is None:
                    report.rejected.append(RowProblem(lines, rec.external_id, [
                        f"coupon_code：{rec.coupon_code} 找不到对应的顾客，请补上 user_id"
                    ]))
                    return
                user_id = int(coupon["user_id"])
            elif not self.store.scalar("SELECT 1 FROM users WHERE id = ?", [user_id]):
                report.rejected.append(RowProblem(lines, rec.external_id, [
                    f"user_id：{user_id} 不是机器人的用户（请顾客先在机器人里发 /start，或改用券码）"
                ]))
                return
            cursor = db.execute(
                """INSERT OR IGNORE INTO orders (external_id, user_id, coupon_code, total_cents, source, created_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [rec.external_id, user_id, rec.coupon_code, rec.total_cents or 0, rec.source, iso_utc(rec.created_at)],
            )
            if cursor.rowcount != 1:  # another importer (the webhook, a second CLI run) stored it meanwhile
                report.duplicates += 1
                return
            order_id = int(cursor.lastrowid or 0)
            db.conn.executemany(
                "INSERT INTO order_items (order_id, item_slug, quantity, price_cents) VALUES (?, ?, ?, ?)",
                [(order_id, slug, q, p) for slug, q, p in rec.items],
            )
            discount, coupon_campaign = 0, None
            if rec.coupon_code:
                result = self.coupons.redeem(
                    rec.coupon_code, user_id=user_id, order_id=order_id, items=rec.items, now=rec.created_at
                )
                if result.ok:
                    report.coupons_redeemed += 1
                    discount = result.discount_cents
                    coupon_campaign = result.coupon["campaign_id"] if result.coupon else None
                else:
                    report.warnings.append(RowProblem(lines, rec.external_id, [f"订单已导入，但券未核销：{result.message_zh}"]))
            total = rec.total_cents if rec.total_cents is not None else max(0, rec.items_cents - discount)
            if rec.total_cents is None:
                db.execute("UPDATE orders SET total_cents = ? WHERE id = ?", [total, order_id])
            campaign_id, how = (coupon_campaign, "coupon") if coupon_campaign else (self._last_entry(user_id, rec.created_at), "entry")
            if campaign_id is not None:
                report.attributed += 1
            self.events.record(
                user_id, EventKind.PURCHASE, campaign_id=campaign_id, created_at=iso_utc(rec.created_at),
                payload={
                    "order": rec.external_id, "order_id": order_id, "total_cents": total, "source": rec.source,
                    "items": [{"slug": s, "quantity": q, "price_cents": p} for s, q, p in rec.items],
                    "coupon_code": rec.coupon_code, "attribution": how if campaign_id is not None else None,
                },
            )
            for issued in apply_purchase_rules(
                self.store, user_id, [s for s, _, _ in rec.items], now=rec.created_at, valid_after=self.as_of()
            ):
                if issued.created and issued.coupon is not None:
                    report.coupons_issued.append({
                        "user_id": user_id, "code": issued.coupon["code"], "campaign": issued.campaign.slug,
                        "order": rec.external_id,
                    })
            referral = self._referral(user_id, order_id, rec.created_at)
            if referral is not None and referral.new:
                report.referral_rewards.append({
                    "friend_id": referral.friend_id, "referrer_id": referral.referrer_id, "status": referral.status,
                    "reason": referral.reason, "order": rec.external_id,
                })
        report.added += 1

    def _referral(self, user_id: int, order_id: int, moment: datetime) -> RewardOutcome | None:
        """A referred friend's first order since joining rewards both sides once (same transaction as
        the order, so an order never commits without its referral decision)."""
        if not self.store.scalar("SELECT 1 FROM referrals WHERE friend_id = ? AND status = 'joined'", [user_id]):
            return None
        if self._referrals is None:
            self._referrals = ReferralProgram(self.store, self.coupons, self.referral_rules)
        return self._referrals.on_first_purchase(user_id, order_id=order_id, now=moment)

    def _last_entry(self, user_id: int, moment: datetime) -> int | None:
        """The campaign of the user's latest in-period link entry within that campaign's attribution window."""
        at = iso_utc(moment)
        return self.store.scalar(
            """SELECT e.campaign_id FROM events e JOIN campaigns c ON c.id = e.campaign_id
               WHERE e.user_id = ? AND e.kind = 'start_deeplink' AND e.created_at <= ?
                 AND julianday(?) - julianday(e.created_at) <= c.attribution_days
                 AND coalesce(json_extract(e.payload, '$.in_period'), 1) = 1
               ORDER BY e.created_at DESC, e.id DESC LIMIT 1""",
            [user_id, at, at],
        )


def record_orders(
    store: Store,
    rows: Sequence[tuple[tuple[int, ...], Any]],
    *,
    zone: tzinfo = SHOP_ZONE,
    now: datetime | None = None,
    default_source: str = "import",
    report: OrderImportReport | None = None,
    referral_rules: ReferralRules | None = None,
) -> OrderImportReport:
    """Validate and store (lines, payload) rows; every order in its own transaction."""
    report = report or OrderImportReport()
    moment = now or datetime.now(UTC)
    recorder = OrderRecorder(store, as_of=lambda: moment, referral_rules=referral_rules)
    for lines, payload in rows:
        if isinstance(payload, RowProblem):
            report.rejected.append(payload)
            continue
        checked = validate_order(payload, zone=zone, now=moment, default_source=default_source)
        if isinstance(checked, list):
            ext = payload.get("external_id") if isinstance(payload, Mapping) else None
            shown = free_text(str(ext))[:128] if ext not in (None, "") else None  # echoed to console and JSON
            report.rejected.append(RowProblem(lines, shown, checked))
            continue
        recorder.record(checked, lines, report)
    return report


# -- files -----------------------------------------------------------------------------------


def import_orders(
    store: Store,
    path: Path,
    *,
    zone: tzinfo = SHOP_ZONE,
    now: datetime | None = None,
    referral_rules: ReferralRules | None = None,
) -> OrderImportReport:
    """Import a .csv / .json / .jsonl file of orders. Raises FileRejected when the whole file is unusable."""
    text, _ = decode_bytes(Path(path).read_bytes())
    report = record_orders(
        store, list(parse_order_rows(Path(path), text)), zone=zone, now=now, referral_rules=referral_rules
    )
    log_event(log, "orders imported", file=str(path), **report.counts())
    return report


def parse_order_rows(path: Path, text: str) -> Iterator[tuple[tuple[int, ...], Any]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_orders(text)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _jsonl_orders(text)
    elif suffix == ".json":
        try:
            document = loads_json(text)
        except InputRejected as exc:
            raise FileRejected(f"不是合法的 JSON：{exc}") from None
        if isinstance(document, Mapping):
            document = document["orders"] if isinstance(document.get("orders"), list) else [document]
        if not isinstance(document, list):
            raise FileRejected('JSON 应为订单列表，或 {"orders": [...]}')
        yield from (((n,), item) for n, item in enumerate(document, start=1))
    else:
        raise FileRejected(f"不支持的文件类型 {suffix or '（无）'}：请用 .csv、.json 或 .jsonl")


def _jsonl_orders(text: str) -> Iterator[tuple[tuple[int, ...], Any]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield (n,), loads_json(line)
        except InputRejected as exc:
            yield (n,), RowProblem((n,), None, [f"这一行不是合法的 JSON（{exc}）"])


def _csv_orders(text: str) -> Iterator[tuple[tuple[int, ...], Any]]:
    header, records = csv_dicts(text)
    missing = [h for h in ("external_id", "created_at") if h not in header]
    if missing or not ({"items", "item_slug"} & set(header)):
        raise FileRejected(
            "CSV 表头至少需要 external_id、created_at，以及 item_slug,quantity,price_cents（每行一个商品）"
            f"或 items（JSON 列表）；缺少：{'、'.join(missing) or 'item_slug 或 items'}"
        )
    per_line = "items" not in header
    groups: dict[str, tuple[list[int], list[dict[str, Any]]]] = {}
    for line, raw in records:
        if isinstance(raw, CsvProblem):
            yield (line,), RowProblem((line,), None, [f"CSV 行损坏：{raw.reason}"])
            continue
        row = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
        if not per_line:
            yield (line,), row
            continue
        key = row.get("external_id") or f"(第 {line} 行，缺少 external_id)"
        groups.setdefault(key, ([], []))[0].append(line)
        groups[key][1].append(row)
    for lines, rows in groups.values():
        yield tuple(lines), _merge_lines(tuple(lines), rows)


def _merge_lines(lines: tuple[int, ...], rows: list[dict[str, Any]]) -> dict[str, Any] | RowProblem:
    """One order from its CSV lines. Order-level fields may repeat on every line but must agree."""
    order: dict[str, Any] = {}
    conflicts = []
    for name in _ORDER_FIELDS:
        values = {r.get(name) for r in rows if not _blank(r.get(name))}
        if len(values) > 1:
            conflicts.append(name)
        order[name] = next(iter(sorted(values)), None)
    if conflicts:
        return RowProblem(lines, order.get("external_id"), [f"{'、'.join(conflicts)}：同一订单的各行填写不一致"])
    order["items"] = [
        {"slug": r.get("item_slug"), "quantity": r.get("quantity") or 1, "price_cents": r.get("price_cents")} for r in rows
    ]
    return order
