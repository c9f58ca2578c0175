"""Referral programme (推荐有奖): personal share links, friends joining through them, and both sides'
coupons once the friend has set up their profile and bought for the first time.

The funnel, one row per referred friend in `referrals` (migration 11):

    shared   the referrer asked for their link (/invite)              → event referral_shared
    joined   a friend opened `/start ref_<code>`                       → row + users.referred_by + referral_joined
    onboarded the friend finished the taste setup                      → referrals.onboarded_at
    bought   the friend's first order after joining                    → referrals.purchased_at
    rewarded both get a coupon (or the reward is refused, with reason) → referral_rewarded / referral_refused

Limits against abuse: no self-referral (nor A↔B circles); a friend can be referred once (the table's
primary key), so there is at most one reward per friend; friends who were already customers are not
referable; friends who never finish onboarding before buying earn nothing ("accounts that never act
do not count"); and a referrer earns at most `daily_cap` rewards per local day — rewards beyond it are
refused and recorded, for both sides (a burst of fresh accounts is what the cap is there to stop).

Core only: both the bot (joins, onboarding) and the jobs (order import, notices, digest) call it.
"""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from commerce.campaigns import REFERRAL_PREFIX
from core.domain import EventKind, Profile, format_price
from core.logging import log_event
from core.repos.coupons import TARGET_ZH, CouponRepository, iso_utc
from core.repos.events import EventRepository
from core.store import Store, loads

log = logging.getLogger(__name__)

# No look-alikes (0/O, 1/l/I): people read links aloud and retype them from screenshots.
CODE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8  # 56^8 ≈ 9.7e13 codes; "ref_" + 8 characters is far below the 64-character payload limit
CODE_RE = re.compile(r"^[A-Za-z0-9]{4,32}$")
WELCOME_RULE = "referral:welcome"
REWARD_RULE = "referral:reward:{friend_id}"

JOIN_STATUSES = ("joined", "already_joined", "self", "circular", "unknown_code", "already_referred", "existing_customer")
REFUSAL_REASONS_ZH = {
    "self": "自己邀请自己",
    "circular": "互相邀请",
    "unknown_code": "邀请码无效",
    "already_referred": "已被其他人邀请过",
    "existing_customer": "已经是老顾客",
    "not_onboarded": "未完成口味设置就下单",
    "bought_before_join": "接受邀请前已下过单",
    "daily_cap": "超过每日奖励上限",
}


class ReferralError(ValueError):
    """The programme cannot do what was asked; the message says what to fix."""


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def share_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={REFERRAL_PREFIX}{code}"


@dataclass(frozen=True)
class ReferralRules:
    """Coupon terms and limits. The three XIANKE_REFERRAL_* settings feed the first three fields."""

    reward_cents: int = 2_000  # the referrer's coupon per rewarded friend (0: none)
    welcome_cents: int = 1_000  # the friend's coupon (0: none)
    daily_cap: int = 5  # rewards per referrer per local day
    # A coupon is a discount on a real order, never cash: it needs an order of this many times its value.
    min_spend_multiple: int = 5
    days_valid: int = 30
    target_type: str = "any"
    bot_username: str | None = None
    zone: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))  # where a "day" of the cap starts

    @classmethod
    def from_settings(cls, settings: Any) -> ReferralRules:
        defaults = cls()
        return cls(
            reward_cents=int(getattr(settings, "referral_reward_cents", defaults.reward_cents)),
            welcome_cents=int(getattr(settings, "referral_welcome_cents", defaults.welcome_cents)),
            daily_cap=int(getattr(settings, "referral_daily_cap", defaults.daily_cap)),
            bot_username=getattr(settings, "bot_username", None),
            zone=getattr(settings, "zone", None) or defaults.zone,
        )

    @classmethod
    def from_env(cls) -> ReferralRules:
        """The rules the XIANKE_* environment (and .env) configures — the same values the composition root
        reads; used where nobody passed rules in. Invalid settings fall back to the defaults, loudly."""
        from core.settings import SettingsError, load_settings

        try:
            return cls.from_settings(load_settings())
        except SettingsError as exc:
            log_event(log, "referral rules fall back to defaults", logging.WARNING, error=str(exc))
            return cls()

    def min_spend(self, discount_cents: int) -> int:
        return discount_cents * self.min_spend_multiple


@dataclass(frozen=True)
class JoinOutcome:
    """What `on_join` did. `status` is one of JOIN_STATUSES; the bot words its reply from it."""

    status: str
    friend_id: int
    referrer_id: int | None = None
    referrer_name: str = ""
    rules: ReferralRules = field(default_factory=ReferralRules)
    onboarded: bool = False  # the friend's profile was already set up when they joined

    @property
    def accepted(self) -> bool:
        return self.status in ("joined", "already_joined")


@dataclass(frozen=True)
class RewardOutcome:
    """What `on_first_purchase` decided (or had decided before: `new` is False then)."""

    friend_id: int
    referrer_id: int | None
    status: str  # rewarded | refused | none (not referred)
    reason: str | None = None
    referrer_coupon: Mapping[str, Any] | None = None
    friend_coupon: Mapping[str, Any] | None = None
    new: bool = False


@dataclass
class Funnel:
    """Friends who joined in [start, end) and how far they got (a cohort, so the steps nest), plus the
    referrers who asked for their link in the period and the refusals recorded in it."""

    start: datetime
    end: datetime
    shared: int = 0
    joined: int = 0
    onboarded: int = 0
    bought: int = 0
    rewarded: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    top_referrers: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, step: str) -> float | None:
        """Share of joined friends that reached `step` (onboarded / bought / rewarded)."""
        return getattr(self, step) / self.joined if self.joined else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "shared": self.shared,
            "joined": self.joined,
            "onboarded": self.onboarded,
            "bought": self.bought,
            "rewarded": self.rewarded,
            "refused": dict(self.refused),
            "top_referrers": list(self.top_referrers),
        }

    @property
    def empty(self) -> bool:
        return not (self.shared or self.joined or self.bought or self.rewarded or self.refused)


def _profile_filled(raw: str | None) -> bool:
    profile = Profile.from_dict(loads(raw, {}))
    return bool(profile.diet or profile.taste or profile.level or profile.allergens or profile.budget_cents)


class ReferralProgram:
    """One store (one thread). Every write happens in a transaction together with its event."""

    def __init__(
        self,
        store: Store,
        coupons: CouponRepository | None = None,
        rules: ReferralRules | None = None,
        *,
        events: EventRepository | None = None,
    ):
        self.store = store
        self.events = events or (coupons.events if coupons is not None else EventRepository(store))
        self.coupons = coupons or CouponRepository(store, self.events)
        self.rules = rules or ReferralRules.from_env()

    # -- codes and links ---------------------------------------------------------------------

    def code_for(self, user_id: int) -> str:
        """The user's personal code, created on first use and stored in users.referral_code."""
        existing = self.store.scalar("SELECT referral_code FROM users WHERE id = ?", [user_id])
        if existing:
            return str(existing)
        for _ in range(8):
            code = new_code()
            try:
                with self.store.transaction() as db:
                    db.execute("INSERT OR IGNORE INTO users (id) VALUES (?)", [user_id])
                    db.execute(
                        "UPDATE users SET referral_code = ? WHERE id = ? AND referral_code IS NULL", [code, user_id]
                    )
            except sqlite3.IntegrityError as exc:
                if "referral_code" in str(exc):
                    continue  # another user drew the same code: draw again
                raise
            # Either our code or one another connection stored first; both are the user's code now.
            return str(self.store.scalar("SELECT referral_code FROM users WHERE id = ?", [user_id]))
        raise RuntimeError("could not draw a unique referral code")

    def link(self, user_id: int, bot_username: str | None = None) -> str:
        username = bot_username or self.rules.bot_username
        if not username:
            raise ReferralError("the bot's username is unknown: set XIANKE_BOT_USERNAME (for t.me links)")
        return share_link(username, self.code_for(user_id))

    def referrer_of(self, code: str) -> int | None:
        return self.store.scalar("SELECT id FROM users WHERE referral_code = ?", [code])

    def record_share(self, user_id: int, channel: str = "invite", *, now: datetime | None = None) -> str:
        """The referrer asked for their link (the funnel's first step); returns their code."""
        code = self.code_for(user_id)
        moment = now or datetime.now(UTC)
        with self.store.transaction():
            self.events.record(
                user_id, EventKind.REFERRAL_SHARED, payload={"channel": channel[:32], "code": code},
                created_at=iso_utc(moment),
            )
        return code

    # -- joining -------------------------------------------------------------------------------

    def on_join(self, friend_id: int, code: str, *, now: datetime | None = None) -> JoinOutcome:
        """A user opened `/start ref_<code>`. Links them to the referrer once; refusals are polite
        statuses (and referral_refused events), never exceptions."""
        code = (code or "").strip()
        moment = iso_utc(now or datetime.now(UTC))
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO users (id) VALUES (?)", [friend_id])
            referrer = self.store.query(
                "SELECT id, first_name FROM users WHERE referral_code = ?", [code]
            ) if CODE_RE.match(code) else []
            if not referrer:
                return self._refuse_join(friend_id, None, "unknown_code", code, moment)
            referrer_id, name = int(referrer[0]["id"]), referrer[0]["first_name"] or ""
            if referrer_id == friend_id:
                return self._refuse_join(friend_id, referrer_id, "self", code, moment, name)
            row = self.store.query("SELECT referrer_id FROM referrals WHERE friend_id = ?", [friend_id])
            if row:
                if row[0]["referrer_id"] == referrer_id:
                    return JoinOutcome("already_joined", friend_id, referrer_id, name, self.rules)
                return self._refuse_join(friend_id, referrer_id, "already_referred", code, moment, name)
            friend = self.store.query("SELECT referred_by, profile FROM users WHERE id = ?", [friend_id])[0]
            if friend["referred_by"] is not None:
                return self._refuse_join(friend_id, referrer_id, "already_referred", code, moment, name)
            if self.store.scalar(
                "SELECT 1 FROM referrals WHERE friend_id = ? AND referrer_id = ?", [referrer_id, friend_id]
            ):
                return self._refuse_join(friend_id, referrer_id, "circular", code, moment, name)
            if self.store.scalar("SELECT 1 FROM orders WHERE user_id = ? LIMIT 1", [friend_id]):
                return self._refuse_join(friend_id, referrer_id, "existing_customer", code, moment, name)
            # A friend whose profile is already filled in (they chatted before) counts as onboarded now.
            onboarded = moment if _profile_filled(friend["profile"]) else None
            db.execute(
                "INSERT INTO referrals (friend_id, referrer_id, code, joined_at, onboarded_at) VALUES (?, ?, ?, ?, ?)",
                [friend_id, referrer_id, code, moment, onboarded],
            )
            db.execute("UPDATE users SET referred_by = ? WHERE id = ? AND referred_by IS NULL", [referrer_id, friend_id])
            self.events.record(
                friend_id, EventKind.REFERRAL_JOINED, payload={"referrer_id": referrer_id, "code": code},
                created_at=moment,
            )
        log_event(log, "referral joined", friend_id=friend_id, referrer_id=referrer_id)
        return JoinOutcome("joined", friend_id, referrer_id, name, self.rules, onboarded=onboarded is not None)

    def _refuse_join(
        self, friend_id: int, referrer_id: int | None, reason: str, code: str, moment: str, name: str = ""
    ) -> JoinOutcome:
        self.events.record(
            friend_id, EventKind.REFERRAL_REFUSED,
            payload={"step": "join", "reason": reason, "referrer_id": referrer_id, "code": code[:40]},
            created_at=moment,
        )
        log_event(log, "referral join refused", friend_id=friend_id, referrer_id=referrer_id, reason=reason)
        return JoinOutcome(reason, friend_id, referrer_id, name, self.rules)

    def on_onboarded(self, friend_id: int, *, now: datetime | None = None) -> bool:
        """The friend finished onboarding; True when this moved a referred friend a step down the funnel."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE referrals SET onboarded_at = ? WHERE friend_id = ? AND onboarded_at IS NULL AND status = 'joined'",
                [iso_utc(now or datetime.now(UTC)), friend_id],
            )
        return cursor.rowcount == 1

    # -- the reward ------------------------------------------------------------------------------

    def on_first_purchase(
        self, friend_id: int, *, order_id: int | None = None, now: datetime | None = None
    ) -> RewardOutcome:
        """The friend's first order since joining: reward both sides once, or refuse with a reason.

        Idempotent: a later order (or a replay) returns the decision already taken with new=False.
        Call it inside the order's transaction so the order and the coupons commit together. `now` is
        the order time: it decides the day the daily cap counts in.
        """
        moment = now or datetime.now(UTC)
        stamp = iso_utc(moment)
        with self.store.transaction() as db:
            rows = self.store.query("SELECT * FROM referrals WHERE friend_id = ?", [friend_id])
            if not rows:
                return RewardOutcome(friend_id, None, "none", "not_referred")
            row = rows[0]
            referrer_id = int(row["referrer_id"])
            if row["status"] != "joined":
                return self._decided(row)
            db.execute(
                "UPDATE referrals SET purchased_at = ?, order_id = ? WHERE friend_id = ?", [stamp, order_id, friend_id]
            )
            reason = None
            if stamp < row["joined_at"]:
                reason = "bought_before_join"
            elif row["onboarded_at"] is None or row["onboarded_at"] > stamp:
                reason = "not_onboarded"
            elif self.rewards_on_day(referrer_id, moment) >= self.rules.daily_cap:
                reason = "daily_cap"
            if reason is not None:
                db.execute(
                    "UPDATE referrals SET status = 'refused', refused_reason = ?, decided_at = ? WHERE friend_id = ?",
                    [reason, stamp, friend_id],
                )
                for user, role in ((friend_id, "friend"), (referrer_id, "referrer")):
                    self.events.record(
                        user, EventKind.REFERRAL_REFUSED,
                        payload={"step": "reward", "reason": reason, "role": role, "friend_id": friend_id,
                                 "referrer_id": referrer_id, "order_id": order_id},
                        created_at=stamp,
                    )
                log_event(log, "referral reward refused", friend_id=friend_id, referrer_id=referrer_id, reason=reason)
                return RewardOutcome(friend_id, referrer_id, "refused", reason, new=True)
            # Coupons run from when they are granted, even for an order imported a few days late.
            granted = max(moment, datetime.now(UTC))
            referrer_coupon = self._coupon(referrer_id, REWARD_RULE.format(friend_id=friend_id), self.rules.reward_cents, granted)
            friend_coupon = self._coupon(friend_id, WELCOME_RULE, self.rules.welcome_cents, granted)
            db.execute(
                """UPDATE referrals SET status = 'rewarded', decided_at = ?, referrer_coupon = ?, friend_coupon = ?
                   WHERE friend_id = ?""",
                [stamp, _code(referrer_coupon), _code(friend_coupon), friend_id],
            )
            for user, role, coupon in ((referrer_id, "referrer", referrer_coupon), (friend_id, "friend", friend_coupon)):
                self.events.record(
                    user, EventKind.REFERRAL_REWARDED,
                    payload={"role": role, "friend_id": friend_id, "referrer_id": referrer_id,
                             "coupon": _code(coupon), "order_id": order_id},
                    created_at=stamp,
                )
        log_event(log, "referral rewarded", friend_id=friend_id, referrer_id=referrer_id)
        return RewardOutcome(friend_id, referrer_id, "rewarded", None, referrer_coupon, friend_coupon, new=True)

    def _coupon(self, user_id: int, rule: str, cents: int, now: datetime) -> dict[str, Any] | None:
        if cents <= 0:
            return None
        coupon, _ = self.coupons.issue_once(
            user_id, rule=rule, target_type=self.rules.target_type, discount_cents=cents,
            min_spend_cents=self.rules.min_spend(cents), days_valid=self.rules.days_valid, now=now,
        )
        return coupon

    def _decided(self, row: Mapping[str, Any]) -> RewardOutcome:
        return RewardOutcome(
            int(row["friend_id"]), int(row["referrer_id"]), row["status"], row["refused_reason"],
            self.coupons.get(row["referrer_coupon"]) if row["referrer_coupon"] else None,
            self.coupons.get(row["friend_coupon"]) if row["friend_coupon"] else None,
            new=False,
        )

    def rewards_on_day(self, referrer_id: int, moment: datetime) -> int:
        """Rewards the referrer earned on the local day of `moment` (what the daily cap counts)."""
        local = moment.astimezone(self.rules.zone)
        start = datetime(local.year, local.month, local.day, tzinfo=self.rules.zone)
        return int(self.store.scalar(
            """SELECT count(*) FROM referrals WHERE referrer_id = ? AND status = 'rewarded'
               AND decided_at >= ? AND decided_at < ?""",
            [referrer_id, iso_utc(start), iso_utc(start + timedelta(days=1))],
        ) or 0)

    def status_of(self, friend_id: int) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM referrals WHERE friend_id = ?", [friend_id])
        return rows[0] if rows else None

    # -- the funnel ------------------------------------------------------------------------------

    def funnel(self, start: datetime, end: datetime, *, top: int = 5) -> Funnel:
        """Shared → joined → onboarded → bought → rewarded for friends who joined in [start, end)."""
        lo, hi = iso_utc(start), iso_utc(end)
        out = Funnel(start, end)
        out.shared = int(self.store.scalar(
            "SELECT count(DISTINCT user_id) FROM events WHERE kind = ? AND created_at >= ? AND created_at < ?",
            [EventKind.REFERRAL_SHARED.value, lo, hi],
        ) or 0)
        row = self.store.query(
            """SELECT count(*) AS joined, count(onboarded_at) AS onboarded, count(purchased_at) AS bought,
                      coalesce(sum(status = 'rewarded'), 0) AS rewarded
               FROM referrals WHERE joined_at >= ? AND joined_at < ?""",
            [lo, hi],
        )[0]
        out.joined, out.onboarded, out.bought, out.rewarded = (
            int(row["joined"]), int(row["onboarded"]), int(row["bought"]), int(row["rewarded"])
        )
        for refusal in self.store.query(
            """SELECT json_extract(payload, '$.reason') AS reason, count(*) AS n FROM events
               WHERE kind = ? AND created_at >= ? AND created_at < ?
                 AND coalesce(json_extract(payload, '$.role'), 'friend') = 'friend'
               GROUP BY reason ORDER BY n DESC, reason""",
            [EventKind.REFERRAL_REFUSED.value, lo, hi],
        ):
            out.refused[str(refusal["reason"])] = int(refusal["n"])
        out.top_referrers = self.store.query(
            """SELECT r.referrer_id, u.first_name AS name, count(*) AS joined,
                      coalesce(sum(r.status = 'rewarded'), 0) AS rewarded
               FROM referrals r LEFT JOIN users u ON u.id = r.referrer_id
               WHERE r.joined_at >= ? AND r.joined_at < ?
               GROUP BY r.referrer_id ORDER BY rewarded DESC, joined DESC, r.referrer_id LIMIT ?""",
            [lo, hi, top],
        )
        return out

    # -- notices ---------------------------------------------------------------------------------

    def pending_notices(self, limit: int = 200) -> list[Notice]:
        """Reward messages not yet delivered, oldest first: one per side that got a coupon."""
        rows = self.store.query(
            """SELECT r.*, f.language AS friend_lang, f.first_name AS friend_name, f.blocked_bot AS friend_blocked,
                      p.language AS referrer_lang, p.first_name AS referrer_name, p.blocked_bot AS referrer_blocked
               FROM referrals r JOIN users f ON f.id = r.friend_id JOIN users p ON p.id = r.referrer_id
               WHERE r.status = 'rewarded'
                 AND ((r.friend_coupon IS NOT NULL AND r.friend_notified_at IS NULL)
                      OR (r.referrer_coupon IS NOT NULL AND r.referrer_notified_at IS NULL))
               ORDER BY r.decided_at, r.friend_id LIMIT ?""",
            [limit],
        )
        out = []
        for row in rows:
            if row["friend_coupon"] and row["friend_notified_at"] is None and not row["friend_blocked"]:
                coupon = self.coupons.get(row["friend_coupon"])
                if coupon is not None:
                    out.append(Notice(row["friend_id"], row["friend_id"], "friend", row["friend_lang"] or "zh",
                                      coupon, row["referrer_name"] or ""))
            if row["referrer_coupon"] and row["referrer_notified_at"] is None and not row["referrer_blocked"]:
                coupon = self.coupons.get(row["referrer_coupon"])
                if coupon is not None:
                    out.append(Notice(row["referrer_id"], row["friend_id"], "referrer", row["referrer_lang"] or "zh",
                                      coupon, row["friend_name"] or ""))
        return out

    def mark_notified(self, notice: Notice, *, now: datetime | None = None) -> None:
        column = "friend_notified_at" if notice.role == "friend" else "referrer_notified_at"
        with self.store.transaction() as db:
            # Column name from a two-value choice above, never from input.
            db.execute(
                f"UPDATE referrals SET {column} = coalesce({column}, ?) WHERE friend_id = ?",
                [iso_utc(now or datetime.now(UTC)), notice.friend_id],
            )


def _code(coupon: Mapping[str, Any] | None) -> str | None:
    return str(coupon["code"]) if coupon else None


# -- reward notices (sent by a job through core.notify; texts live here because jobs cannot import bot) --

NOTICE_TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "friend": "🎁 欢迎加入鲜课！感谢你接受{name}的邀请并完成首单，送你一张新人券：\n{coupon}\n\n结账时出示券码即可使用，发 /coupons 随时查看。",
        "referrer": "🎉 你邀请的好友{name}完成了首单！奖励你一张优惠券：\n{coupon}\n\n谢谢你把鲜课分享给朋友，发 /invite 可以继续邀请。",
        "coupon": "<code>{code}</code> · {what}满{min}减{discount} · 有效期至 {until}",
        "friend_fallback": "好友",
    },
    "en": {
        "friend": "🎁 Welcome to XianKe! Thanks for joining through {name}'s invite and placing your first order. "
        "Here is your welcome coupon:\n{coupon}\n\nShow the code at checkout; /coupons lists your coupons.",
        "referrer": "🎉 Your friend{name} placed their first order! Here is your reward:\n{coupon}\n\n"
        "Thanks for sharing XianKe; send /invite to invite more friends.",
        "coupon": "<code>{code}</code> · {discount} off {what} over {min} · valid until {until}",
        "friend_fallback": "a friend",
    },
}
TARGET_EN = {"any": "everything", "course": "courses", "kit": "kits", "ingredient": "ingredients"}


@dataclass(frozen=True)
class Notice:
    """One reward message: to `user_id`, about the referral of `friend_id`, in `lang` (Telegram HTML)."""

    user_id: int
    friend_id: int
    role: str  # friend | referrer
    lang: str
    coupon: Mapping[str, Any]
    other_name: str  # the referrer's name for the friend, the friend's name for the referrer

    @property
    def text(self) -> str:
        table = NOTICE_TEXTS.get(self.lang) or NOTICE_TEXTS["zh"]
        c = self.coupon
        what = (TARGET_EN if self.lang == "en" else TARGET_ZH).get(c["target_type"], c["target_type"])
        line = table["coupon"].format(
            code=escape(str(c["code"])), what=what, min=format_price(c["min_spend_cents"]),
            discount=format_price(c["discount_cents"]), until=(c["expires_at"] or "")[:10],
        )
        raw = escape(self.other_name.strip()[:40])
        if self.role == "friend":
            name = raw or table["friend_fallback"]
        else:  # "你邀请的好友小美…" / "Your friend Mei…"; without a name the sentence still reads
            name = (f" {raw}" if self.lang == "en" else raw) if raw else ""
        return table[self.role].format(name=name, coupon=line)
