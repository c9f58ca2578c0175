"""Referral programme (推荐有奖) without Telegram: codes and links, joins and their refusals, the reward
at the first purchase (also through the order import), the daily cap, the funnel, notices, the digest
section and `xianke referrals stats`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from commerce.campaigns import REFERRAL_PREFIX
from commerce.orders import record_orders
from commerce.referrals import CODE_LENGTH, ReferralError, ReferralProgram, ReferralRules
from core.domain import Profile
from core.repos import CouponRepository, UserRepository
from core.store import Store, loads
from tests.fakes import RecordingNotifier

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = ReferralRules(reward_cents=2_000, welcome_cents=1_000, daily_cap=2, bot_username="xianke_test_bot", zone=SHANGHAI)
ALICE, BOB, CAROL, DAVE, ERIN = 101, 102, 103, 104, 105
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


@pytest.fixture
def program(store: Store) -> ReferralProgram:
    users = UserRepository(store)
    for uid, name in ((ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol"), (DAVE, "Dave"), (ERIN, "Erin")):
        users.ensure(uid, first_name=name)
    return ReferralProgram(store, rules=RULES)


def events(store: Store, kind: str) -> list[dict[str, Any]]:
    rows = store.query("SELECT * FROM events WHERE kind = ? ORDER BY id", [kind])
    return [{**row, "payload": loads(row["payload"], {})} for row in rows]


def join_and_onboard(program: ReferralProgram, friend: int, referrer: int = ALICE, at: datetime = T0) -> None:
    outcome = program.on_join(friend, program.code_for(referrer), now=at)
    assert outcome.status == "joined", outcome
    assert program.on_onboarded(friend, now=at + timedelta(minutes=5))


def order(external_id: str, user_id: int, at: datetime, slug: str = "kit/mapo-tofu", price: int = 12_800) -> dict[str, Any]:
    return {"external_id": external_id, "user_id": user_id, "created_at": at.isoformat(),
            "items": [{"slug": slug, "quantity": 1, "price_cents": price}]}


# -- codes and links ------------------------------------------------------------------------------


def test_code_is_short_stable_unique_and_fits_the_deep_link_limits(program: ReferralProgram, store: Store) -> None:
    code = program.code_for(ALICE)
    assert code == program.code_for(ALICE) and len(code) == CODE_LENGTH and code.isalnum()
    assert store.scalar("SELECT referral_code FROM users WHERE id = ?", [ALICE]) == code
    codes = {program.code_for(uid) for uid in (ALICE, BOB, CAROL, DAVE, ERIN)}
    assert len(codes) == 5
    link = program.link(ALICE)
    payload = link.split("?start=", 1)[1]
    assert link.startswith("https://t.me/xianke_test_bot?start=") and payload == REFERRAL_PREFIX + code
    assert len(payload) <= 64 and all(ch.isalnum() or ch in "_-" for ch in payload)
    with pytest.raises(ReferralError, match="XIANKE_BOT_USERNAME"):
        ReferralProgram(store, rules=ReferralRules()).link(ALICE)


def test_rules_come_from_settings() -> None:
    from core.settings import Settings

    rules = ReferralRules.from_settings(Settings(referral_reward_cents=3_000, referral_welcome_cents=500,
                                                 referral_daily_cap=9, bot_username="shop_bot"))
    assert (rules.reward_cents, rules.welcome_cents, rules.daily_cap, rules.bot_username) == (3_000, 500, 9, "shop_bot")
    assert rules.min_spend(3_000) == 15_000


# -- joining ---------------------------------------------------------------------------------------


def test_join_links_the_friend_once_and_refuses_politely(program: ReferralProgram, store: Store) -> None:
    code = program.code_for(ALICE)
    assert program.on_join(ALICE, code, now=T0).status == "self"
    assert program.on_join(BOB, "nope!", now=T0).status == "unknown_code"
    assert program.on_join(BOB, "Zz9Zz9Zz", now=T0).status == "unknown_code"
    joined = program.on_join(BOB, code, now=T0)
    assert joined.status == "joined" and joined.referrer_id == ALICE and joined.referrer_name == "Alice"
    assert store.scalar("SELECT referred_by FROM users WHERE id = ?", [BOB]) == ALICE
    assert program.on_join(BOB, code, now=T0).status == "already_joined"  # pressing the link again is fine
    assert program.on_join(BOB, program.code_for(CAROL), now=T0).status == "already_referred"
    assert program.on_join(ALICE, program.code_for(BOB), now=T0).status == "circular"
    store.db.execute(
        "INSERT INTO orders (external_id, user_id, total_cents, created_at) VALUES ('old', ?, 100, ?)",
        [DAVE, "2026-01-01T00:00:00.000Z"],
    )
    assert program.on_join(DAVE, code, now=T0).status == "existing_customer"
    assert store.scalar("SELECT referred_by FROM users WHERE id = ?", [DAVE]) is None
    refused = [e["payload"]["reason"] for e in events(store, "referral_refused")]
    assert refused == ["self", "unknown_code", "unknown_code", "already_referred", "circular", "existing_customer"]
    assert len(events(store, "referral_joined")) == 1


def test_a_friend_with_a_profile_counts_as_onboarded(program: ReferralProgram, store: Store) -> None:
    UserRepository(store).save_profile(CAROL, Profile(taste=["川菜"]))
    outcome = program.on_join(CAROL, program.code_for(ALICE), now=T0)
    assert outcome.onboarded and program.status_of(CAROL)["onboarded_at"] is not None


# -- the reward ------------------------------------------------------------------------------------


def test_first_purchase_rewards_both_once(program: ReferralProgram, store: Store) -> None:
    join_and_onboard(program, BOB)
    outcome = program.on_first_purchase(BOB, now=T0 + timedelta(hours=1))
    assert outcome.status == "rewarded" and outcome.new
    assert outcome.referrer_coupon["user_id"] == ALICE and outcome.referrer_coupon["discount_cents"] == 2_000
    assert outcome.friend_coupon["user_id"] == BOB and outcome.friend_coupon["discount_cents"] == 1_000
    assert outcome.friend_coupon["min_spend_cents"] == 5_000  # a discount on a real order, never cash
    again = program.on_first_purchase(BOB, now=T0 + timedelta(hours=2))
    assert again.status == "rewarded" and not again.new
    assert again.friend_coupon["code"] == outcome.friend_coupon["code"]
    coupons = CouponRepository(store)
    assert len(coupons.list_for(ALICE)) == 1 and len(coupons.list_for(BOB)) == 1
    rewarded = events(store, "referral_rewarded")
    assert sorted((e["user_id"], e["payload"]["role"]) for e in rewarded) == [(ALICE, "referrer"), (BOB, "friend")]
    assert program.on_first_purchase(CAROL).status == "none"  # not referred: nothing to do


def test_friends_who_never_act_earn_nothing(program: ReferralProgram, store: Store) -> None:
    program.on_join(BOB, program.code_for(ALICE), now=T0)  # joined, never finished onboarding
    outcome = program.on_first_purchase(BOB, now=T0 + timedelta(hours=1))
    assert (outcome.status, outcome.reason) == ("refused", "not_onboarded")
    assert CouponRepository(store).list_for(ALICE) == [] and CouponRepository(store).list_for(BOB) == []
    assert not program.on_onboarded(BOB)  # too late: the decision is final
    program.on_join(CAROL, program.code_for(ALICE), now=T0)
    program.on_onboarded(CAROL, now=T0)
    early = program.on_first_purchase(CAROL, now=T0 - timedelta(days=1))  # an old order imported late
    assert early.reason == "bought_before_join"


def test_daily_cap_per_referrer_refuses_and_records_the_excess(program: ReferralProgram, store: Store) -> None:
    day = datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)
    for friend in (BOB, CAROL, DAVE, ERIN):
        join_and_onboard(program, friend, at=day - timedelta(days=1))
    statuses = [program.on_first_purchase(f, now=day + timedelta(hours=i)).status for i, f in enumerate((BOB, CAROL, DAVE))]
    assert statuses == ["rewarded", "rewarded", "refused"]
    assert program.status_of(DAVE)["refused_reason"] == "daily_cap"
    assert program.rewards_on_day(ALICE, day) == 2
    # Local days: 01:00 the next morning in Shanghai is a new day even though it is still the 20th in UTC.
    next_morning = datetime(2026, 11, 21, 1, 0, tzinfo=SHANGHAI)
    assert program.on_first_purchase(ERIN, now=next_morning).status == "rewarded"
    assert len(CouponRepository(store).list_for(ALICE)) == 3
    reasons = [e["payload"]["reason"] for e in events(store, "referral_refused") if e["payload"]["role"] == "referrer"]
    assert reasons == ["daily_cap"]


def test_zero_cents_means_no_coupon_for_that_side(store: Store) -> None:
    users = UserRepository(store)
    users.ensure(ALICE), users.ensure(BOB)
    program = ReferralProgram(store, rules=ReferralRules(reward_cents=0, welcome_cents=800))
    join_and_onboard(program, BOB)
    outcome = program.on_first_purchase(BOB, now=T0 + timedelta(hours=1))
    assert outcome.status == "rewarded" and outcome.referrer_coupon is None and outcome.friend_coupon is not None


# -- through the order import ----------------------------------------------------------------------


def test_order_import_rewards_the_first_order_only(program: ReferralProgram, store: Store) -> None:
    join_and_onboard(program, BOB)
    rows = [((1,), order("o-1", BOB, T0 + timedelta(hours=1))), ((2,), order("o-2", BOB, T0 + timedelta(hours=2)))]
    report = record_orders(store, rows, referral_rules=RULES)
    assert report.added == 2 and report.counts()["referral_rewards"] == 1
    assert report.referral_rewards == [
        {"friend_id": BOB, "referrer_id": ALICE, "status": "rewarded", "reason": None, "order": "o-1"}
    ]
    first_order = store.scalar("SELECT id FROM orders WHERE external_id = 'o-1'")
    assert program.status_of(BOB)["order_id"] == first_order
    again = record_orders(store, rows, referral_rules=RULES)  # the same file twice: nothing new
    assert again.duplicates == 2 and again.referral_rewards == []
    assert len(CouponRepository(store).list_for(ALICE)) == 1


# -- funnel, notices, digest, CLI ------------------------------------------------------------------


def test_funnel_counts_each_step(program: ReferralProgram, store: Store) -> None:
    program.record_share(ALICE, now=T0)
    program.record_share(ALICE, now=T0)  # asking twice is still one person sharing
    program.record_share(CAROL, now=T0)
    join_and_onboard(program, BOB)
    program.on_join(DAVE, program.code_for(ALICE), now=T0)  # never onboards
    program.on_join(ERIN, program.code_for(ERIN), now=T0)  # self-referral: refused
    program.on_first_purchase(BOB, now=T0 + timedelta(hours=1))
    funnel = program.funnel(T0 - timedelta(hours=1), T0 + timedelta(days=1))
    assert (funnel.shared, funnel.joined, funnel.onboarded, funnel.bought, funnel.rewarded) == (2, 2, 1, 1, 1)
    assert funnel.refused == {"self": 1} and funnel.rate("bought") == 0.5
    assert funnel.top_referrers[0]["referrer_id"] == ALICE and funnel.top_referrers[0]["rewarded"] == 1
    assert program.funnel(T0 + timedelta(days=2), T0 + timedelta(days=3)).empty


async def test_notices_go_out_once_in_each_users_language(program: ReferralProgram, store: Store) -> None:
    from commerce.referral_notices import send_referral_notices

    UserRepository(store).set_language(ALICE, "en")
    join_and_onboard(program, BOB)
    join_and_onboard(program, CAROL)
    program.on_first_purchase(BOB, now=T0 + timedelta(hours=1))
    program.on_first_purchase(CAROL, now=T0 + timedelta(hours=1))
    notifier = RecordingNotifier(blocked={CAROL})
    counts = await send_referral_notices(notifier, store)
    assert counts == {"sent": 3, "blocked": 1, "failed": 0}
    by_chat = {(m.chat_id, m.text.split("\n", 1)[0]) for m in notifier.sent}
    assert (BOB, "🎁 欢迎加入鲜课！感谢你接受Alice的邀请并完成首单，送你一张新人券：") in by_chat
    assert (ALICE, "🎉 Your friend Bob placed their first order! Here is your reward:") in by_chat
    assert all("<code>XK-" in m.text for m in notifier.sent)
    assert UserRepository(store).get(CAROL)["blocked_bot"] == 1
    assert await send_referral_notices(RecordingNotifier(), store) == {"sent": 0, "blocked": 0, "failed": 0}


def test_digest_shows_the_funnel(program: ReferralProgram, store: Store) -> None:
    from listening.digest import SECTIONS, build_digest, referral_section

    assert referral_section in SECTIONS["weekly"] and referral_section in SECTIONS["daily"]
    now = datetime.now(SHANGHAI)
    daily = build_digest(store, "daily", now, SHANGHAI, sections=[referral_section])
    assert daily.sections == []  # a quiet day adds no line of zeros
    yesterday = now - timedelta(days=1)
    program.record_share(ALICE, now=yesterday)
    join_and_onboard(program, BOB, at=yesterday)
    program.on_first_purchase(BOB, now=yesterday + timedelta(minutes=30))
    daily = build_digest(store, "daily", now, SHANGHAI, sections=[referral_section])
    [section] = daily.sections
    assert section.key == "referrals" and section.data["funnel"]["rewarded"] == 1
    assert "好友加入 <b>1</b>" in daily.text_zh and "Alice" in daily.text_plain
    assert daily.payload["post_ids"] == {}


def test_stats_cli_prints_a_table_and_json_last(program: ReferralProgram, store: Store, tmp_path: Path, monkeypatch) -> None:
    import xianke.context
    from core.settings import Settings
    from xianke.app import App
    from xianke.commands import referrals

    join_and_onboard(program, BOB, at=datetime.now(UTC) - timedelta(hours=2))
    program.on_first_purchase(BOB, now=datetime.now(UTC) - timedelta(hours=1))
    app = App(Settings(data_dir=tmp_path / "var", db_path=store.path))
    monkeypatch.setattr(xianke.context, "_app", app)
    cli = typer.Typer()
    cli.add_typer(referrals.app, name="referrals")
    cli.command("noop")(lambda: None)
    result = CliRunner().invoke(cli, ["referrals", "stats", "--days", "3"])
    assert result.exit_code == 0, result.output
    assert "双方得券" in result.stdout
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["days"] == 3 and data["joined"] == 1 and data["rewarded"] == 1
