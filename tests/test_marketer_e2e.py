"""Issue 7 acceptance, end to end on the fake Bot API with the real Dispatcher (long polling):
a marketer creates a campaign with the /campaign wizard, a customer arrives by its deep link and gets
the entry coupon, an imported order redeems it, and the next digest — sent through the notifier
adapter — carries the campaign with its estimate. A non-marketer is refused.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics.campaign_report import estimate_campaign
from bot.marketer import MarketerConfig
from bot.marketer.forms import (
    parse_coupon_amount,
    parse_day,
    parse_keywords,
    parse_percent,
    parse_yuan,
    suggest_slug,
)
from commerce.campaigns import CampaignRepository, arm_for, record_entry
from commerce.orders import import_orders
from core.notify import Outgoing
from core.repos import CatalogRepository
from core.settings import load_settings
from core.store import Store
from listening.digest import build_digest, send_digest
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, RunningBot, buttons, running_bot
from tests.fakebot import FakeBotAPI
from xianke.app import App
from xianke.bot_wiring import BotConfigError
from xianke.notifier import AiogramNotifier
from xianke.notify_wiring import open_notifier, run_scheduler_with_bot

pytestmark = pytest.mark.timeout(120)  # async tests run in asyncio auto mode

MARKETER = 7001
MARKETER_GROUP = -1_007_001
GROUP_MEMBER = 7003
OUTSIDER = 7002
SLUG = "double11_qr"
NAME = "双十一食材包扫码礼"


def config() -> MarketerConfig:
    # bot_username left out on purpose: the desk asks Telegram (getMe) for it.
    return MarketerConfig.from_ids([MARKETER, MARKETER_GROUP], [])


def report_from(db_path: Path):
    """What the composition root injects: estimate with its own connection (it runs on a thread)."""

    def campaign_report(campaign_id: int) -> str | None:
        store = Store(db_path)
        try:
            return estimate_campaign(store, campaign_id, save=True, n_draws=200).summary_zh()
        finally:
            store.close()

    return campaign_report


async def group_says(rb: RunningBot, user: int, text: str) -> list[dict[str, Any]]:
    before = len(rb.api.sent_messages(MARKETER_GROUP))
    target = rb.stats.processed + 1
    rb.api.push_message(user, text, chat_id=MARKETER_GROUP, chat_type="supergroup", chat_title="鲜课营销组")
    await rb.stats.wait_processed(target, timeout=20)
    return rb.api.sent_messages(MARKETER_GROUP)[before:]


async def run_wizard(rb: RunningBot) -> None:
    api = rb.api
    [ask_name] = await rb.say(MARKETER, "/campaign")
    assert "1/9" in ask_name["text"]
    [ask_slug] = await rb.say(MARKETER, NAME)
    assert "2/9" in ask_slug["text"] and any("用 xk" in b["text"] for b in buttons(ask_slug))
    [bad] = await rb.say(MARKETER, "ref_friends")
    assert "ref_" in bad["text"] and "活动代码" in bad["text"]  # the domain's own Chinese reason
    [ask_channel] = await rb.say(MARKETER, SLUG)
    assert "3/9" in ask_channel["text"]
    await rb.press(MARKETER, "包装/海报二维码")
    assert "4/9" in api.texts(MARKETER)[-1]
    await rb.press(MARKETER, "今天")
    assert "5/9" in api.texts(MARKETER)[-1]
    [past] = await rb.say(MARKETER, "2020-01-01")
    assert "结束时间" in past["text"]
    await rb.press(MARKETER, "30 天后")
    [ask_holdout] = await rb.say(MARKETER, "¥800")
    assert "7/9" in ask_holdout["text"]
    [too_big] = await rb.say(MARKETER, "60")
    assert "对照组比例" in too_big["text"] and "50" in too_big["text"]
    [ask_coupon] = await rb.say(MARKETER, "30%")
    assert "8/9" in ask_coupon["text"]
    await rb.press(MARKETER, "进店领课程券")
    [bad_amount] = await rb.say(MARKETER, "满10减20")
    assert "优惠金额" in bad_amount["text"]
    [ask_keywords] = await rb.say(MARKETER, "满100减20")
    assert "9/9" in ask_keywords["text"]
    [summary] = await rb.say(MARKETER, "双十一食材包，鲜课")
    assert NAME in summary["text"] and "对照组：30%" in summary["text"] and "满 ¥100 减 ¥20" in summary["text"]
    since = api.call_count
    await rb.press(MARKETER, "创建")
    await api.wait_for("sendPhoto", since=since)
    created, qr = api.sent_messages(MARKETER)[-2:]
    assert f"https://t.me/xianke_test_bot?start={SLUG}" in created["text"]
    assert qr["caption"].endswith(f"start={SLUG}")
    png = api.calls("sendPhoto")[-1].files
    assert png and next(iter(png.values())).startswith(b"\x89PNG")


async def test_marketer_campaign_from_wizard_to_digest(bot_env: BotEnv, tmp_path: Path) -> None:
    env = bot_env
    async with running_bot(env, marketer_config=config(), campaign_report=report_from(env.db_path)) as rb:
        api = rb.api
        # A customer who tries the marketer commands is refused politely (and the wizard never starts).
        [refused] = await rb.say(OUTSIDER, "/campaign")
        assert "营销同事" in refused["text"] and str(OUTSIDER) in refused["text"]
        [refused_list] = await rb.say(OUTSIDER, "/campaigns")
        assert "营销同事" in refused_list["text"]
        [after] = await rb.say(OUTSIDER, "活动叫什么名字")  # not taken for a wizard answer
        assert "1/9" not in after["text"] and "2/9" not in after["text"]

        await run_wizard(rb)
        aux = Store(env.db_path)  # the test's own connection (the dialogue owns env.store on its thread)
        campaign = CampaignRepository(aux).get_by_slug(SLUG)
        assert campaign is not None and campaign.name == NAME and campaign.created_by == MARKETER
        assert campaign.holdout_pct == 30 and campaign.channel == "qr" and campaign.cost_cents == 80_000
        assert campaign.keywords == ["双十一食材包", "鲜课"] and campaign.is_active(datetime.now(UTC))
        rule = campaign.coupon_rule
        assert rule is not None and (rule.trigger, rule.target_type) == ("entry", "course")
        assert (rule.discount_cents, rule.min_spend_cents) == (2_000, 10_000)

        # Anyone in the configured marketer group may use the desk; the list shows the new campaign.
        [listing] = await group_says(rb, GROUP_MEMBER, "/campaigns")
        assert NAME in listing["text"] and SLUG in listing["text"] and "进行中" in listing["text"]

        # A customer (hashed into the campaign group) arrives by the deep link and gets the coupon.
        cid = campaign.campaign_id
        customer = next(u for u in range(8000, 8100) if arm_for(cid, u, 30.0) == "treatment")
        held_out = next(u for u in range(8100, 8200) if arm_for(cid, u, 30.0) == "holdout")
        welcome, coupon_message = await rb.say(customer, f"/start {SLUG}", replies=2, first_name="小林")
        assert "小林" in welcome["text"]
        [coupon] = aux.query("SELECT * FROM coupons WHERE user_id = ? AND campaign_id = ?", [customer, cid])
        assert coupon["code"] in coupon_message["text"] and "领到啦" in coupon_message["text"]
        assert len(await rb.say(held_out, f"/start {SLUG}")) == 1  # holdout: welcome only, no coupon
        assert not aux.query("SELECT 1 FROM coupons WHERE user_id = ?", [held_out])

        # More people scan the poster (the same entry code /start runs), so both arms have data.
        others = list(range(8200, 8290))
        for user in others:
            record_entry(aux, user, SLUG)
        course = next(c for c in CatalogRepository(aux).courses() if c["price_cents"] >= 10_000)
        moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        orders = [{
            "external_id": "shop-1001", "user_id": customer, "coupon_code": coupon["code"], "created_at": moment,
            "items": [{"slug": course["slug"], "quantity": 1, "price_cents": course["price_cents"]}],
        }]
        orders += [
            {"external_id": f"shop-{user}", "user_id": user, "created_at": moment,
             "items": [{"slug": "ingredient/tomato", "quantity": 2, "price_cents": 600}]}
            for user in others[::3]
        ]
        orders_file = tmp_path / "orders.jsonl"
        orders_file.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in orders), encoding="utf-8")
        report = import_orders(aux, orders_file)
        assert report.added == len(orders) and report.coupons_redeemed == 1 and not report.rejected
        assert aux.scalar("SELECT status FROM coupons WHERE code = ?", [coupon["code"]]) == "redeemed"

        # The marketer's /campaign <slug> shows the fresh estimate from the injected estimator.
        details = await rb.say(MARKETER, f"/campaign {SLUG}", replies=2)
        assert NAME in details[0]["text"] and "已用 1" in details[0]["text"]
        assert "活动组转化率" in details[1]["text"]

        # The next digest, through the notifier adapter, to the marketers' group on the fake server.
        zone = config().zone
        digest = build_digest(aux, "adhoc", datetime.now(zone), zone, charts_dir=tmp_path / "charts")
        since = api.call_count
        [delivery] = await send_digest(AiogramNotifier(api.make_bot()), [MARKETER_GROUP], digest, store=aux)
        assert delivery.status == "sent"
        await api.wait_for("sendMessage", lambda c: c.params.get("chat_id") == MARKETER_GROUP, since=since)
        text = api.texts(MARKETER_GROUP)[-1]
        assert "活动效果" in text and NAME in text and "活动组转化率" in text
        assert api.calls("sendPhoto")[-1].params["chat_id"] == MARKETER_GROUP  # the chart went first
        aux.close()
        assert rb.stats.errors == []


async def test_wizard_cancel_and_stale_buttons(bot_env: BotEnv) -> None:
    async with running_bot(bot_env, marketer_config=config()) as rb:
        await rb.say(MARKETER, "/campaign")
        await rb.say(MARKETER, "试一下取消")
        prompt = rb.api.last_message(MARKETER)
        [cancelled] = await rb.say(MARKETER, "/cancel")
        assert "已取消" in cancelled["text"]
        toast = await rb.press(MARKETER, "用 ", message_id=prompt["message_id"])
        assert "已经过去" in toast["text"]
        [shopping] = await rb.say(MARKETER, "零基础想学川菜")  # back to being a customer
        assert "2/9" not in shopping["text"]
        [refused] = await rb.say(OUTSIDER, "/campaign")
        assert "营销同事" in refused["text"]


def test_forms_read_what_marketers_type() -> None:
    today = date(2026, 11, 28)
    assert parse_day("今天", today) == today and parse_day("明天", today) == today + timedelta(days=1)
    assert parse_day("2026年12月1日", today) == date(2026, 12, 1) == parse_day("2026/12/01", today)
    assert parse_day("1-15", today) == date(2027, 1, 15) and parse_day("7天后", today) == date(2026, 12, 5)
    assert parse_day("2026-02-30", today) is None and parse_day("下周", today) is None
    assert parse_yuan("¥1,200.5") == 120_050 and parse_yuan("800元") == 80_000 and parse_yuan("-5") is None
    assert parse_percent("20%") == 20.0 and parse_percent("abc") is None
    assert parse_coupon_amount("满100减20") == (2_000, 10_000) and parse_coupon_amount("20") == (2_000, 0)
    assert parse_keywords("鲜课，双十一、 食材包;;") == ["鲜课", "双十一", "食材包"]
    assert suggest_slug("Spring QR 海报", today, set()) == "spring_qr"
    assert suggest_slug("春季海报", today, {"xk1128"}) == "xk1128_2"
    assert MarketerConfig.from_ids([1, -100], [2]).user_ids == {1, 2}


async def test_cli_notifier_sends_from_any_loop_or_thread(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        settings = load_settings(data_dir=tmp_path, telegram_token=api.token, telegram_api_base=api.base_url)
        notifier, run_async, close = open_notifier(App(settings))
        assert await notifier.send(Outgoing(MARKETER_GROUP, "<b>日报</b>")) > 0  # from this (another) loop
        # …and from a scheduler-like worker thread, blocking on run_async (what a JobRunner outbox does).
        await asyncio.to_thread(run_async, notifier.send(Outgoing(MARKETER_GROUP, "告警")))
        assert api.texts(MARKETER_GROUP) == ["日报", "告警"]
        await asyncio.to_thread(close)
        await asyncio.to_thread(close)  # idempotent: the CLI context and atexit may both call it
    with pytest.raises(BotConfigError, match="XIANKE_TELEGRAM_TOKEN"):
        open_notifier(App(load_settings(data_dir=tmp_path, telegram_token=None)))


async def test_serve_runs_the_scheduler_on_the_bots_loop(tmp_path: Path) -> None:
    from aiogram import Dispatcher
    from apscheduler.triggers.interval import IntervalTrigger

    from jobs.registry import JobSpec, Outbox
    from jobs.scheduler import JobRunner

    settings = load_settings(data_dir=tmp_path)

    def ping(ctx: Any) -> dict[str, int]:  # a job: worker thread, sends like the digest job does
        ctx.run_async(ctx.notifier.send(Outgoing(MARKETER_GROUP, "job says hi")))
        return {"sent": 1}

    runners: list[JobRunner] = []

    def make_runner(outbox: Outbox) -> JobRunner:
        spec = JobSpec(ping, IntervalTrigger(hours=1), "test job")
        runners.append(JobRunner(settings, lambda: Store(settings.database_path), specs={"ping": spec}, outbox=outbox))
        return runners[-1]

    async with FakeBotAPI() as api:
        dp = Dispatcher()
        run_scheduler_with_bot(dp, settings, make_runner)
        await dp.emit_startup(bot=api.make_bot())
        result = await asyncio.to_thread(runners[0].run, "ping")
        assert result.status == "ok", result.error
        assert api.texts(MARKETER_GROUP) == ["job says hi"]
        await dp.emit_shutdown()
