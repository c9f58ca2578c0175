"""Campaigns: what a marketing push is, where it is stored, and what happens when someone enters it.

A campaign has a slug (the `/start` deep-link payload printed in its QR code), a channel, a period,
a cost, a target segment, tracked keywords (for mentions), a holdout percentage and an optional
coupon rule. People join it in three ways, each recorded as a row of `campaign_assignments` with
an arm (treatment / holdout) drawn from a hash of (campaign, user) — so the same person always lands
in the same arm, whether they scan twice or are planned into a broadcast again:

- entry: they open https://t.me/<bot>?start=<slug> (`record_entry`, called by the bot's /start);
- broadcast: the broadcaster plans a segment (commerce/broadcast.py);
- purchase: an imported order triggers a purchase rule such as "buy a kit → course coupon"
  (`apply_purchase_rules`, called by commerce/orders.py).

Holdout users get no coupon and no message: they are the comparison group for the effect estimates.
Pure domain + repository: no statistics, no Telegram.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.domain import CAMPAIGN_SLUG_RE, EventKind, format_price
from core.repos.coupons import TARGET_ZH, CouponRepository, iso_utc
from core.repos.events import EventRepository
from core.store import Store, dumps, loads

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")  # the settings default; callers with settings pass settings.zone

REFERRAL_PREFIX = "ref_"  # /start ref_<code> belongs to the referral programme, never to a campaign
MAX_HOLDOUT_PCT = 50.0
CHANNELS: dict[str, str] = {
    "qr": "包装/海报二维码",
    "broadcast": "机器人群发",
    "partner_post": "合作方推文",
    "social": "社交媒体",
    "ad": "广告投放",
    "offline": "线下活动",
    "other": "其他",
}
TRIGGERS: dict[str, str] = {
    "entry": "扫码或点链接进入时",
    "broadcast": "收到群发消息时",
    "purchase_kit": "购买食材包后",
    "purchase_course": "购买课程后",
}
ARMS = ("treatment", "holdout")
_BOT_USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

FIELD_ZH: dict[str, str] = {
    "slug": "活动代码",
    "name": "活动名称",
    "channel": "渠道",
    "starts_at": "开始时间",
    "ends_at": "结束时间",
    "cost_cents": "活动成本",
    "segment": "目标人群",
    "keywords": "监测关键词",
    "holdout_pct": "对照组比例",
    "coupon_rule": "优惠券规则",
    "attribution_days": "归因天数",
    "created_by": "创建人",
    "broadcast_text": "群发文案",
    "trigger": "发券时机",
    "target_type": "适用范围",
    "discount_cents": "优惠金额",
    "min_spend_cents": "使用门槛",
    "days_valid": "有效天数",
}


class CampaignError(ValueError):
    """A campaign cannot be saved as given. `field` names the offending field (dotted for nested ones)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# -- value objects ---------------------------------------------------------------------------


class CouponRule(BaseModel):
    """When a campaign hands out a coupon and what the coupon is worth."""

    model_config = ConfigDict(extra="forbid")

    trigger: Literal["entry", "broadcast", "purchase_kit", "purchase_course"]
    target_type: Literal["any", "course", "kit", "ingredient"] = "any"
    discount_cents: Annotated[int, Field(gt=0, le=1_000_000)]
    min_spend_cents: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    days_valid: Annotated[int, Field(ge=1, le=365)] = 14

    @model_validator(mode="after")
    def _discount_within_threshold(self) -> CouponRule:
        if self.min_spend_cents and self.discount_cents > self.min_spend_cents:
            raise ValueError(
                f"优惠金额 {format_price(self.discount_cents)} 大于使用门槛 {format_price(self.min_spend_cents)}，"
                "请调低优惠或提高门槛"
            )
        return self

    def terms(self) -> dict[str, Any]:
        """Keyword arguments for CouponRepository.issue_for_campaign."""
        return {
            "target_type": self.target_type,
            "discount_cents": self.discount_cents,
            "min_spend_cents": self.min_spend_cents,
            "days_valid": self.days_valid,
        }

    def describe_zh(self) -> str:
        target = TARGET_ZH[self.target_type]
        threshold = f"满 {format_price(self.min_spend_cents)} " if self.min_spend_cents else "无门槛"
        return (
            f"{TRIGGERS[self.trigger]}送{target}券：{threshold}减 {format_price(self.discount_cents)}，"
            f"{self.days_valid} 天有效"
        )


class SegmentRule(BaseModel):
    """Who a campaign targets: an optional behaviour cluster (see `xianke campaign segments`) narrowed
    by rule filters. Every filter is optional; an empty rule means everyone who can be messaged."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    segment: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    min_orders: Annotated[int, Field(ge=0, le=100_000)] | None = None
    max_orders: Annotated[int, Field(ge=0, le=100_000)] | None = None
    min_spend_cents: Annotated[int, Field(ge=0, le=1_000_000_000)] | None = None
    last_active_days: Annotated[int, Field(ge=1, le=3650)] | None = None  # active within the last N days
    inactive_days: Annotated[int, Field(ge=1, le=3650)] | None = None  # nothing for at least N days
    bought: Literal["course", "kit", "ingredient"] | None = None
    diet: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    language: Literal["zh", "en"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SegmentRule:
        if self.min_orders is not None and self.max_orders is not None and self.min_orders > self.max_orders:
            raise ValueError("min_orders 不能大于 max_orders")
        if self.last_active_days and self.inactive_days and self.inactive_days < self.last_active_days:
            raise ValueError("inactive_days 与 last_active_days 互相矛盾，没有人能同时满足")
        return self

    def describe_zh(self) -> str:
        parts = []
        if self.segment:
            parts.append(f"人群「{self.segment}」")
        if self.min_orders is not None:
            parts.append(f"至少 {self.min_orders} 单")
        if self.max_orders is not None:
            parts.append(f"至多 {self.max_orders} 单")
        if self.min_spend_cents is not None:
            parts.append(f"累计消费 ≥ {format_price(self.min_spend_cents)}")
        if self.last_active_days:
            parts.append(f"{self.last_active_days} 天内活跃")
        if self.inactive_days:
            parts.append(f"{self.inactive_days} 天以上未活跃")
        if self.bought:
            parts.append(f"买过{TARGET_ZH[self.bought]}")
        if self.diet:
            parts.append(f"饮食偏好含「{self.diet}」")
        if self.language:
            parts.append(f"语言 {self.language}")
        return "、".join(parts) or "全部可触达用户"


Keyword = Annotated[str, Field(min_length=1, max_length=40)]


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: int | None = None
    slug: str
    name: Annotated[str, Field(min_length=1, max_length=100)]
    channel: str = "qr"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cost_cents: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0
    segment: SegmentRule = Field(default_factory=SegmentRule)
    keywords: list[Keyword] = Field(default_factory=list, max_length=20)
    holdout_pct: Annotated[float, Field(ge=0, le=MAX_HOLDOUT_PCT)] = 0.0
    coupon_rule: CouponRule | None = None
    attribution_days: Annotated[int, Field(ge=1, le=90)] = 7
    created_by: int | None = None
    broadcast_text: Annotated[str, Field(max_length=4096)] | None = None
    broadcast_html: bool = False
    created_at: str | None = None

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not CAMPAIGN_SLUG_RE.match(value):
            raise ValueError("只能用 1–64 个英文字母、数字、_ 或 -（它会出现在 Telegram 链接 ?start= 后面）")
        if value.lower().startswith(REFERRAL_PREFIX):
            raise ValueError(f"不能以 {REFERRAL_PREFIX} 开头（这个前缀留给推荐有礼）")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError("请选择 " + "、".join(f"{k}（{v}）" for k, v in CHANNELS.items()))
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        # Naive times are read as UTC here; the CLI attaches the shop's time zone before they arrive.
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        starts = info.data.get("starts_at")
        if info.field_name == "ends_at" and value is not None and starts is not None and value <= starts:
            raise ValueError("必须晚于开始时间")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for word in value:
            word = word.strip()
            if word:
                seen.setdefault(word, None)
        return list(seen)

    # -- construction with friendly errors --------------------------------------------------
    @classmethod
    def build(cls, **fields: Any) -> Campaign:
        """Validate, turning pydantic's first error into a CampaignError with a Chinese message."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise campaign_error(exc) from None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Campaign:
        rule = loads(row.get("coupon_rule"), {}) or None
        return cls.model_construct(  # rows were validated on the way in; re-parsing them is wasted work
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            channel=row["channel"],
            starts_at=_parse_time(row.get("starts_at")),
            ends_at=_parse_time(row.get("ends_at")),
            cost_cents=row["cost_cents"],
            segment=SegmentRule.model_validate(loads(row.get("segment"), {}) or {}),
            keywords=list(loads(row.get("keywords"), []) or []),
            holdout_pct=float(row["holdout_pct"]),
            coupon_rule=CouponRule.model_validate(rule) if rule else None,
            attribution_days=row["attribution_days"],
            created_by=row.get("created_by"),
            broadcast_text=row.get("broadcast_text"),
            broadcast_html=bool(row.get("broadcast_html") or 0),
            created_at=row.get("created_at"),
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "channel": self.channel,
            "starts_at": iso_utc(self.starts_at) if self.starts_at else None,
            "ends_at": iso_utc(self.ends_at) if self.ends_at else None,
            "cost_cents": self.cost_cents,
            "segment": dumps(self.segment.model_dump(exclude_none=True)),
            "keywords": dumps(self.keywords),
            "holdout_pct": self.holdout_pct,
            "coupon_rule": dumps(self.coupon_rule.model_dump() if self.coupon_rule else {}),
            "attribution_days": self.attribution_days,
            "created_by": self.created_by,
            "broadcast_text": self.broadcast_text,
            "broadcast_html": int(self.broadcast_html),
        }

    # -- questions ------------------------------------------------------------------------
    @property
    def campaign_id(self) -> int:
        if self.id is None:
            raise ValueError(f"campaign {self.slug!r} is not saved yet")
        return self.id

    def is_active(self, now: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (self.ends_at is None or now <= self.ends_at)

    def deep_link(self, bot_username: str) -> str:
        return deep_link(bot_username, self.slug)

    def rule_name(self, trigger: str) -> str:
        return f"campaign:{self.slug}:{trigger}"

    def describe_zh(self, zone: tzinfo = DEFAULT_ZONE) -> str:
        """Dates in the marketers' zone: a campaign typed as starting 今天 must read as today."""
        period = f"{_day(self.starts_at, zone) or '即日'} ~ {_day(self.ends_at, zone) or '长期'}"
        lines = [
            f"{self.name}（{self.slug}）",
            f"渠道：{CHANNELS.get(self.channel, self.channel)} · 时间：{period} · 成本：{format_price(self.cost_cents)}",
            f"目标人群：{self.segment.describe_zh()}",
            f"对照组：{self.holdout_pct:g}% · 归因窗口：{self.attribution_days} 天",
            f"优惠券：{self.coupon_rule.describe_zh() if self.coupon_rule else '无'}",
            f"监测关键词：{'、'.join(self.keywords) if self.keywords else '无'}",
        ]
        return "\n".join(lines)


def campaign_error(exc: ValidationError) -> CampaignError:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
    label = FIELD_ZH.get(path.rsplit(".", 1)[-1], path) if path else "活动"
    return CampaignError(path or "campaign", f"{label}：{_reason_zh(first)}")


def _reason_zh(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    reasons = {
        "missing": "不能为空",
        "greater_than_equal": f"不能小于 {ctx.get('ge')}",
        "greater_than": f"必须大于 {ctx.get('gt')}",
        "less_than_equal": f"不能大于 {ctx.get('le')}",
        "string_too_short": "不能为空",
        "string_too_long": f"太长（最多 {ctx.get('max_length')} 个字符）",
        "too_long": f"太多（最多 {ctx.get('max_length')} 个）",
        "literal_error": f"只能是 {ctx.get('expected')}",
        "int_parsing": "必须是整数",
        "int_from_float": "必须是整数",
        "float_parsing": "必须是数字",
        "bool_parsing": "必须是 true 或 false",
        "extra_forbidden": "不认识这个字段",
        "dict_type": "格式不对（需要一个 JSON 对象）",
        "list_type": "格式不对（需要一个列表）",
    }
    if kind.startswith(("datetime", "date")):
        return "不是有效的日期时间（例如 2026-12-01 或 2026-12-01T09:00）"
    return reasons.get(kind, str(error["msg"]))


def deep_link(bot_username: str, slug: str) -> str:
    """https://t.me/<bot>?start=<slug>: opening it sends `/start <slug>` to the bot."""
    name = bot_username.strip().removeprefix("@").removeprefix("https://t.me/")
    if not (5 <= len(name) <= 32 and set(name) <= _BOT_USERNAME_CHARS and name[0].isalpha()):
        raise CampaignError("bot_username", f"机器人用户名 {bot_username!r} 不对：应为 5–32 位字母、数字或 _，例如 XianKeBot")
    if not CAMPAIGN_SLUG_RE.match(slug):
        raise CampaignError("slug", f"活动代码 {slug!r} 不能用在 Telegram 链接里")
    return f"https://t.me/{name}?start={slug}"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _day(moment: datetime | None, zone: tzinfo = UTC) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d") if moment else ""


# -- arms ------------------------------------------------------------------------------------


def arm_for(campaign_id: int, user_id: int, holdout_pct: float, *, seed: str = "") -> str:
    """Treatment or holdout from a hash of (campaign, user): stable across re-entries and re-plans,
    independent across campaigns, and not guessable from the user id order."""
    digest = hashlib.sha256(f"xianke-arm:{seed}:{campaign_id}:{user_id}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return "holdout" if draw < holdout_pct / 100.0 else "treatment"


def assign(
    store: Store, campaign: Campaign, user_id: int, *, source: str, now: datetime, send_status: str = "none",
    seed: str = "",
) -> tuple[str, bool]:
    """(arm, created): the user's stored arm, or a new hashed one. An existing row is never changed,
    so a broadcast plan cannot move someone who entered by QR code to the other arm."""
    arm = arm_for(campaign.campaign_id, user_id, campaign.holdout_pct, seed=seed)
    status = "holdout" if arm == "holdout" and send_status == "pending" else send_status
    cursor = store.db.execute(
        """INSERT OR IGNORE INTO campaign_assignments (campaign_id, user_id, arm, assigned_at, send_status, source)
           VALUES (?, ?, ?, ?, ?, ?)""",
        [campaign.campaign_id, user_id, arm, iso_utc(now), status, source],
    )
    if cursor.rowcount == 1:
        return arm, True
    return str(store.scalar(
        "SELECT arm FROM campaign_assignments WHERE campaign_id = ? AND user_id = ?", [campaign.campaign_id, user_id]
    )), False


def arm_of(store: Store, campaign_id: int, user_id: int) -> str | None:
    value = store.scalar(
        "SELECT arm FROM campaign_assignments WHERE campaign_id = ? AND user_id = ?", [campaign_id, user_id]
    )
    return str(value) if value is not None else None


# -- repository ------------------------------------------------------------------------------


class CampaignRepository:
    def __init__(self, store: Store):
        self.store = store

    def create(self, campaign: Campaign) -> Campaign:
        clash = self.store.scalar("SELECT slug FROM campaigns WHERE lower(slug) = lower(?)", [campaign.slug])
        if clash is not None:
            raise CampaignError("slug", f"活动代码：{clash} 已被使用，请换一个（大小写不同也算重复，扫码时容易混淆）")
        row = campaign.to_row()
        columns = ", ".join(row)
        try:
            with self.store.transaction() as db:
                cursor = db.execute(
                    f"INSERT INTO campaigns ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values())
                )
        except sqlite3.IntegrityError as exc:
            raise CampaignError("slug", f"活动代码：{campaign.slug} 已被使用，请换一个") from exc
        saved = self.get(int(cursor.lastrowid or 0))
        assert saved is not None
        return saved

    def update(self, slug: str, /, **changes: Any) -> Campaign:
        """Change fields of a stored campaign; the merged record is validated as a whole."""
        current = self.get_by_slug(slug)
        if current is None:
            raise CampaignError("slug", f"没有代码为 {slug} 的活动")
        if "slug" in changes and changes["slug"] != slug:
            raise CampaignError("slug", "活动代码已印在二维码和链接里，不能修改；请新建一个活动")
        merged = current.model_dump() | changes
        merged["segment"] = _plain(merged["segment"])
        merged["coupon_rule"] = _plain(merged["coupon_rule"])
        updated = Campaign.build(**merged)
        row = updated.to_row()
        del row["slug"]
        assignments = ", ".join(f"{k} = ?" for k in row)
        self.store.db.execute(
            f"UPDATE campaigns SET {assignments}, updated_at = ? WHERE id = ?",
            [*row.values(), iso_utc(datetime.now(UTC)), current.campaign_id],
        )
        saved = self.get(current.campaign_id)
        assert saved is not None
        return saved

    def get(self, campaign_id: int) -> Campaign | None:
        rows = self.store.query("SELECT * FROM campaigns WHERE id = ?", [campaign_id])
        return Campaign.from_row(rows[0]) if rows else None

    def get_by_slug(self, slug: str) -> Campaign | None:
        rows = self.store.query("SELECT * FROM campaigns WHERE slug = ?", [slug])
        return Campaign.from_row(rows[0]) if rows else None

    def list(self) -> list[Campaign]:
        return [Campaign.from_row(r) for r in self.store.query("SELECT * FROM campaigns ORDER BY id DESC")]

    def active(self, now: datetime) -> list[Campaign]:
        moment = iso_utc(now)
        rows = self.store.query(
            """SELECT * FROM campaigns WHERE (starts_at IS NULL OR starts_at <= ?) AND (ends_at IS NULL OR ends_at >= ?)
               ORDER BY id""",
            [moment, moment],
        )
        return [Campaign.from_row(r) for r in rows]

    def with_trigger(self, trigger: str, now: datetime) -> list[Campaign]:
        return [c for c in self.active(now) if c.coupon_rule is not None and c.coupon_rule.trigger == trigger]

    def stats(self, campaign_id: int) -> dict[str, Any]:
        """Counts for `show` and the marketer bot: entries, arms, send statuses, coupons, attributed orders."""
        one = self.store.scalar
        statuses = {
            r["send_status"]: r["n"]
            for r in self.store.query(
                "SELECT send_status, count(*) AS n FROM campaign_assignments WHERE campaign_id = ? GROUP BY send_status",
                [campaign_id],
            )
        }
        arms = {
            r["arm"]: r["n"]
            for r in self.store.query(
                "SELECT arm, count(*) AS n FROM campaign_assignments WHERE campaign_id = ? GROUP BY arm", [campaign_id]
            )
        }
        return {
            "entries": one("SELECT count(*) FROM events WHERE campaign_id = ? AND kind = 'start_deeplink'", [campaign_id]),
            "entrants": one(
                "SELECT count(DISTINCT user_id) FROM events WHERE campaign_id = ? AND kind = 'start_deeplink'",
                [campaign_id],
            ),
            "treatment": arms.get("treatment", 0),
            "holdout": arms.get("holdout", 0),
            "send_status": statuses,
            "coupons_issued": one("SELECT count(*) FROM coupons WHERE campaign_id = ?", [campaign_id]),
            "coupons_redeemed": one(
                "SELECT count(*) FROM coupons WHERE campaign_id = ? AND status = 'redeemed'", [campaign_id]
            ),
            "attributed_orders": one(
                "SELECT count(*) FROM events WHERE campaign_id = ? AND kind = 'purchase'", [campaign_id]
            ),
            "attributed_revenue_cents": one(
                """SELECT coalesce(sum(json_extract(payload, '$.total_cents')), 0) FROM events
                   WHERE campaign_id = ? AND kind = 'purchase'""",
                [campaign_id],
            ),
            # Paid in the chat (issue 14); the rest came from the shop's import or webhook.
            "attributed_bot_orders": one(
                """SELECT count(*) FROM events WHERE campaign_id = ? AND kind = 'purchase'
                   AND json_extract(payload, '$.source') = 'bot'""",
                [campaign_id],
            ),
        }

    # -- stored effect reports (written by analytics/campaign_report.py) ----------------------------
    def save_report(self, campaign_id: int, payload: Mapping[str, Any], computed_at: datetime) -> None:
        self.store.db.execute(
            "INSERT INTO campaign_reports (campaign_id, computed_at, payload) VALUES (?, ?, ?)",
            [campaign_id, iso_utc(computed_at), dumps(payload)],
        )

    def latest_report(self, campaign_id: int) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT computed_at, payload FROM campaign_reports WHERE campaign_id = ? ORDER BY computed_at DESC, id DESC LIMIT 1",
            [campaign_id],
        )
        if not rows:
            return None
        return {"computed_at": rows[0]["computed_at"], **loads(rows[0]["payload"], {})}


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


# -- entries and purchase rules --------------------------------------------------------------


@dataclass(frozen=True)
class CampaignEntry:
    """What `record_entry` did: the bot greets with it (and shows the coupon when `coupon_is_new`)."""

    campaign: Campaign
    arm: str | None  # None: outside the campaign period, or a broadcast campaign the user was not planned into
    in_period: bool
    first_entry: bool
    coupon: Mapping[str, Any] | None = None
    coupon_is_new: bool = False


def record_entry(store: Store, user_id: int, slug_or_payload: str | None, *, now: datetime | None = None) -> CampaignEntry | None:
    """Record a `/start <payload>` entry. Returns None for payloads that are not campaigns (malformed,
    `ref_…` referrals — the caller handles those — or unknown slugs, which are logged as events).

    For a known campaign, in one transaction: the start_deeplink event (with campaign_id, which order
    attribution reads), the arm (entry campaigns: hashed, so re-entry keeps it; broadcast campaigns:
    the planned arm if any) and, if the coupon rule triggers on entry, the user's one coupon for this
    campaign — never for the holdout arm. Entries outside the campaign period are recorded with
    in_period=false and get neither arm nor coupon.
    """
    payload = (slug_or_payload or "").strip()
    if not CAMPAIGN_SLUG_RE.match(payload) or payload.startswith(REFERRAL_PREFIX):
        return None  # the same test the bot uses before handing `ref_…` to the referral programme
    moment = now or datetime.now(UTC)
    events = EventRepository(store)
    with store.transaction() as db:
        db.execute("INSERT OR IGNORE INTO users (id) VALUES (?)", [user_id])  # events reference users
        campaign = CampaignRepository(store).get_by_slug(payload)
        if campaign is None:
            events.record(user_id, EventKind.START_DEEPLINK, payload={"unknown_campaign": payload}, created_at=iso_utc(moment))
            return None
        first = store.scalar(
            "SELECT 1 FROM events WHERE user_id = ? AND campaign_id = ? AND kind = 'start_deeplink' LIMIT 1",
            [user_id, campaign.campaign_id],
        ) is None
        in_period = campaign.is_active(moment)
        arm: str | None = None
        if in_period:
            if campaign.channel == "broadcast":
                arm = arm_of(store, campaign.campaign_id, user_id)
            else:
                arm, _ = assign(store, campaign, user_id, source="entry", now=moment)
        events.record(
            user_id, EventKind.START_DEEPLINK, campaign_id=campaign.campaign_id,
            payload={"campaign": campaign.slug, "arm": arm, "in_period": in_period}, created_at=iso_utc(moment),
        )
        coupon, created = None, False
        rule = campaign.coupon_rule
        if in_period and rule is not None and rule.trigger == "entry" and arm != "holdout":
            coupon, created = CouponRepository(store, events).issue_for_campaign(
                user_id, campaign.campaign_id, rule=campaign.rule_name("entry"), now=moment, **rule.terms()
            )
    return CampaignEntry(campaign, arm, in_period, first, coupon, created)


@dataclass(frozen=True)
class RuleCoupon:
    campaign: Campaign
    arm: str
    coupon: Mapping[str, Any] | None
    created: bool


def apply_purchase_rules(
    store: Store, user_id: int, item_slugs: Iterable[str], *, now: datetime, valid_after: datetime | None = None
) -> list[RuleCoupon]:
    """Purchase-triggered coupons ("buy a kit → course coupon"): for every campaign active at `now`
    (the order time) whose rule fires on a kind in this order, assign the buyer an arm (hashed, source
    'purchase') and issue the campaign's coupon to the treatment arm — once per user per campaign.
    A coupon that would already have expired at `valid_after` (an old order imported late) is not
    issued. Call inside the order's transaction so the order and its coupons commit together."""
    kinds = {slug.split("/", 1)[0] for slug in item_slugs}
    fired = [t for t, kind in (("purchase_kit", "kit"), ("purchase_course", "course")) if kind in kinds]
    out: list[RuleCoupon] = []
    coupons = CouponRepository(store)
    for trigger in fired:
        for campaign in CampaignRepository(store).with_trigger(trigger, now):
            assert campaign.coupon_rule is not None
            if valid_after is not None and now + timedelta(days=campaign.coupon_rule.days_valid) <= valid_after:
                continue  # too late to matter: neither arm nor coupon, so the experiment stays clean
            arm, _ = assign(store, campaign, user_id, source="purchase", now=now)
            if arm == "holdout":
                out.append(RuleCoupon(campaign, arm, None, False))
                continue
            coupon, created = coupons.issue_for_campaign(
                user_id, campaign.campaign_id, rule=campaign.rule_name(trigger), now=now,
                **campaign.coupon_rule.terms(),
            )
            out.append(RuleCoupon(campaign, arm, coupon, created))
    return out
