"""Referrals end to end: the real Dispatcher polling the fake Bot API. A customer shares their link,
a friend joins through it, sets up their tastes and buys (order import); both get coupons and the
friend is told. Self-referral, a second reward for the same friend and the daily cap are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from commerce.orders import record_orders
from commerce.referral_notices import send_referral_notices
from commerce.referrals import ReferralRules
from core.repos import CouponRepository
from core.store import loads
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, RunningBot, buttons, running_bot
from xianke.notifier import AiogramNotifier

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

REFERRER, FRIEND, OTHER, LATE_FRIEND = 6101, 6102, 6103, 6104
RULES = ReferralRules(reward_cents=2_000, welcome_cents=1_000, daily_cap=1, zone=ZoneInfo("Asia/Shanghai"))
SHANGHAI = ZoneInfo("Asia/Shanghai")
LINK_RE = re.compile(r"https://t\.me/xianke_test_bot\?start=(ref_[A-Za-z0-9]+)")


async def onboard(rb: RunningBot, user: int) -> None:
    """The five setup steps, skipping or finishing each (a real friend would pick things)."""
    await rb.press(user, "设置口味")
    for label in ("跳过", "完成", "跳过", "完成", "跳过"):
        await rb.press(user, label)
    assert "设置好了" in rb.api.texts(user)[-1]


def order_base() -> datetime:
    """Orders are placed just after the joins (call it after them); all on one Shanghai day, so the
    daily cap test never straddles midnight (the import accepts orders up to a day ahead of its clock)."""
    start = datetime.now(SHANGHAI) + timedelta(minutes=1)
    midnight = datetime.combine(start.date() + timedelta(days=1), time(), SHANGHAI)
    return midnight + timedelta(minutes=1) if midnight - start < timedelta(minutes=15) else start



def order(external_id: str, user_id: int, base: datetime, minutes_later: int) -> tuple[tuple[int, ...], dict[str, Any]]:
    at = base + timedelta(minutes=minutes_later)
    return (1,), {"external_id": external_id, "user_id": user_id, "created_at": at.isoformat(),
                  "items": [{"slug": "kit/mapo-tofu", "quantity": 1, "price_cents": 12_800}]}


def referral_events(env: BotEnv, user: int, kind: str) -> list[dict[str, Any]]:
    rows = env.store.query("SELECT payload FROM events WHERE user_id = ? AND kind = ? ORDER BY id", [user, kind])
    return [loads(r["payload"], {}) for r in rows]


async def test_share_join_onboard_buy_and_both_get_coupons(bot_env: BotEnv) -> None:
    env = bot_env
    importer = env.open_store()  # the order import runs in its own process with its own connection
    async with running_bot(env) as rb:
        api = rb.api
        assert any(c["command"] == "invite" for c in api.bot_commands({"type": "all_private_chats"}, "zh"))

        # 1. the referrer asks for their link: explanation + share button, then a forwardable card with a QR code
        await rb.say(REFERRER, "/start", first_name="小美")
        invite, card = await rb.say(REFERRER, "/invite", replies=2, first_name="小美")
        [code] = LINK_RE.findall(invite["text"])
        assert len(code) <= 64 and "¥20" in invite["text"] and "¥10" in invite["text"]
        [share] = buttons(invite)
        assert share["url"].startswith("https://t.me/share/url?url=https%3A%2F%2Ft.me%2Fxianke_test_bot")
        assert "photo" in card and code in card["caption"]
        assert referral_events(env, REFERRER, "referral_shared")[0]["channel"] == "command"

        # 2. the referrer's own link is refused, kindly
        _, note = await rb.say(REFERRER, f"/start {code}", replies=2, first_name="小美")
        assert "你自己的邀请链接" in note["text"]

        # 3. the friend opens the link (welcome + who invited them), then finishes onboarding
        welcome, joined = await rb.say(FRIEND, f"/start {code}", replies=2, first_name="阿强")
        assert any("设置口味" in b["text"] for b in buttons(welcome))
        assert "受小美邀请" in joined["text"] and "¥10" in joined["text"]
        assert env.store.scalar("SELECT referred_by FROM users WHERE id = ?", [FRIEND]) == REFERRER
        await onboard(rb, FRIEND)
        assert env.store.scalar("SELECT onboarded_at FROM referrals WHERE friend_id = ?", [FRIEND])

        # 4. another customer's link later does not re-refer the friend
        await rb.say(OTHER, "/start")
        [other_link] = LINK_RE.findall((await rb.say(OTHER, "/invite", replies=2))[0]["text"])
        _, again = await rb.say(FRIEND, f"/start {other_link}", replies=2, first_name="阿强")
        assert "已经接受过其他朋友的邀请" in again["text"]

        # 5. the first order is imported: both sides get a coupon, in the same transaction as the order
        base = order_base()
        report = record_orders(importer, [order("shop-1001", FRIEND, base, 1)], referral_rules=RULES)
        assert report.added == 1 and report.counts()["referral_rewards"] == 1
        coupons = CouponRepository(env.store)
        [mine] = coupons.list_for(REFERRER)
        [theirs] = coupons.list_for(FRIEND)
        assert (mine["rule"], mine["discount_cents"]) == (f"referral:reward:{FRIEND}", 2_000)
        assert (theirs["rule"], theirs["discount_cents"]) == ("referral:welcome", 1_000)

        # 6. the notices go out through the jobs' notifier (the same Bot API): the friend sees the welcome coupon
        counts = await send_referral_notices(AiogramNotifier(rb.bot), importer)
        assert counts == {"sent": 2, "blocked": 0, "failed": 0}
        friend_msg = api.texts(FRIEND)[-1]
        assert "新人券" in friend_msg and theirs["code"] in friend_msg and "小美" in friend_msg
        assert mine["code"] in api.texts(REFERRER)[-1] and "阿强" in api.texts(REFERRER)[-1]
        [listing] = await rb.say(FRIEND, "/coupons", first_name="阿强")
        assert theirs["code"] in listing["text"]

        # 7. a second order (or the same order again) never rewards the same friend twice
        second = record_orders(importer, [order("shop-1002", FRIEND, base, 2), order("shop-1001", FRIEND, base, 1)],
                               referral_rules=RULES)
        assert second.added == 1 and second.duplicates == 1 and second.referral_rewards == []
        assert len(coupons.list_for(REFERRER)) == 1 and len(coupons.list_for(FRIEND)) == 1
        assert await send_referral_notices(AiogramNotifier(rb.bot), importer) == {"sent": 0, "blocked": 0, "failed": 0}

        # 8. daily cap (1 in these rules): a second friend rewarded the same day is refused and recorded
        await rb.say(LATE_FRIEND, f"/start {code}", replies=2, first_name="小李")
        await onboard(rb, LATE_FRIEND)
        capped = record_orders(importer, [order("shop-1003", LATE_FRIEND, base, 3)], referral_rules=RULES)
        assert capped.referral_rewards[0]["status"] == "refused" and capped.referral_rewards[0]["reason"] == "daily_cap"
        assert coupons.list_for(LATE_FRIEND) == [] and len(coupons.list_for(REFERRER)) == 1
        assert [e["reason"] for e in referral_events(env, LATE_FRIEND, "referral_refused")] == ["daily_cap"]
        assert rb.stats.errors == []

    # the funnel the digest and `xianke referrals stats` show
    from commerce.referrals import ReferralProgram

    funnel = ReferralProgram(importer, rules=RULES).funnel(datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1))
    assert (funnel.shared, funnel.joined, funnel.onboarded, funnel.bought, funnel.rewarded) == (2, 2, 2, 2, 1)
    assert funnel.refused == {"self": 1, "already_referred": 1, "daily_cap": 1}


async def test_invite_button_on_the_welcome(bot_env: BotEnv) -> None:
    user = 6110
    async with running_bot(bot_env) as rb:
        [welcome] = await rb.say(user, "/start")
        assert any("邀请好友" in b["text"] for b in buttons(welcome))
        await rb.press(user, "邀请好友")
        invite = rb.api.sent_messages(user)[-2]
        assert LINK_RE.search(invite["text"])
        assert referral_events(bot_env, user, "referral_shared")[0]["channel"] == "button"
