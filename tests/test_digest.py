"""Digests (issue 7): numbers against a hand count, share of voice, escaping, length, chart, sending."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from analytics.effects import Estimate
from core.clock import utc_text
from core.notify import DeliveryError, DeliveryUnknown, RecipientBlocked, RetryLater
from core.settings import Settings
from core.store import Store, dumps, loads
from jobs.registry import JobContext, Outbox
from jobs.tasks import digest_job
from listening.digest import (
    SECTIONS,
    build_digest,
    campaigns_section,
    make_campaigns_section,
    record_digest,
    send_digest,
    telegram_length,
)
from nlp.text import normalize
from tests.fakes import RecordingNotifier

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=ZONE)  # a Saturday: the daily digest covers Fri 27 Nov
BRANDS = ["盒马", "Dingdong"]
SCRIPT = "<script>alert('x')</script> 配送太慢 & 差评"


class Seeder:
    def __init__(self, store: Store):
        self.store = store
        self.n = 0

    def post(
        self,
        when: datetime,
        text: str,
        sentiment: str | None,
        score: float | None = None,
        *,
        aspects: list[dict[str, str]] | None = None,
        topic_id: int | None = None,
        norm: bool = True,
    ) -> int:
        self.n += 1
        default = {"positive": 0.9, "neutral": 0.5, "negative": 0.2}.get(sentiment or "")
        return int(
            self.store.db["posts"]
            .insert(
                {
                    "source": "weibo",
                    "external_id": str(self.n),
                    "text": text,
                    "text_norm": normalize(text) if norm else "",
                    "text_hash": f"h{self.n}",
                    "created_at": utc_text(when),
                    "sentiment": sentiment,
                    "sentiment_score": score if score is not None else default,
                    "aspects": dumps(aspects or []),
                    "topic_id": topic_id,
                }
            )
            .last_pk
        )


def day(d: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, d, hour, minute, second, tzinfo=ZONE)


@pytest.fixture
def seeded(store: Store) -> dict[str, Any]:
    s = Seeder(store)
    store.db["campaigns"].insert(
        {
            "slug": "crab-week",
            "name": "大闸蟹周 <限时>",
            "keywords": dumps(["大闸蟹"]),
            "starts_at": "2026-11-20T00:00:00.000Z",
            "ends_at": "2026-12-05T00:00:00.000Z",
        }
    )
    store.db["campaigns"].insert(
        {
            "slug": "mooncake",
            "name": "中秋",
            "keywords": dumps(["月饼"]),
            "starts_at": "2026-09-01T00:00:00.000Z",
            "ends_at": "2026-09-20T00:00:00.000Z",
        }
    )
    late = (
        store.db["topics"]
        .insert({"label": "配送 慢", "keywords": dumps(["配送", "慢"]), "emerging": 1})
        .last_pk
    )
    crab = store.db["topics"].insert({"label": "大闸蟹 课程", "keywords": dumps(["大闸蟹"])}).last_pk
    # 16 ordinary days (10 to 25 Nov): 5 positive, 3 neutral, 2 negative each.
    for d in range(10, 26):
        for i, sentiment in enumerate(["positive"] * 5 + ["neutral"] * 3 + ["negative"] * 2):
            s.post(day(d, 8 + i), f"{d}日的普通帖子{i}", sentiment)
    # The previous period, Thu 26 Nov: same mix; brands mentioned once each; one post at 23:59:59.
    prev = ["盒马的菜还行", "dingdong 今天有货", "普通a", "普通b", "普通c"]
    for i, text in enumerate(prev):
        s.post(day(26, 9 + i), text, "positive")
    for i in range(3):
        s.post(day(26, 15 + i), f"26日中性{i}", "neutral")
    s.post(day(26, 20), "26日负面0", "negative")
    s.post(day(26, 23, 59, 59), "26日负面1", "negative")
    # The period, Fri 27 Nov (local): 4 positive, 2 neutral, 6 negative, 1 not analysed = 13 posts.
    ids: dict[str, int] = {}
    s.post(day(27, 0, 0, 0), "盒馬鮮生的蝦很新鮮", "positive")  # Traditional: matched as 盒马 after t2s
    s.post(day(27, 9), "盒马的鱼不错", "positive", norm=False)  # no text_norm: normalised at read time
    s.post(day(27, 10), "大闸蟹课程很好", "positive", topic_id=crab)
    s.post(day(27, 11), "老师讲得好", "positive")
    s.post(day(27, 12), "DINGDONG 今天有活动吗", "neutral")
    s.post(day(27, 13), "大闸蟹几点到", "neutral", topic_id=crab)
    neg_aspects = [
        {"aspect": "服务", "polarity": "neutral", "span": "x"},
        {"aspect": "配送", "polarity": "negative", "span": "配送太慢"},
    ]
    ids["script"] = s.post(day(27, 14), SCRIPT, "negative", 0.01, aspects=neg_aspects, topic_id=late)
    ids["delay"] = s.post(day(27, 15), "盒马 配送延迟", "negative", 0.05, topic_id=late)
    ids["stale"] = s.post(day(27, 16), "菜不新鲜", "negative", 0.10)
    ids["box"] = s.post(day(27, 17), "包装破了", "negative", 0.15)
    ids["price"] = s.post(day(27, 18), "价格太贵", "negative", 0.20)
    ids["service"] = s.post(day(27, 23, 30), "客服不回", "negative", 0.30, topic_id=late)
    s.post(day(27, 20), "还没分析的帖子", None)
    s.post(day(28, 0, 0, 0), "今天的帖子（不属于昨天）", "negative", 0.0)
    store.db["topics"].update(late, {"examples": dumps([{"post_id": ids["delay"], "text": "盒马 配送延迟"}])})
    return {"ids": ids, "late": late, "crab": crab}


def build(store: Store, tmp_path: Path | None = None, **kw: Any):
    return build_digest(
        store,
        "daily",
        NOW,
        ZONE,
        tracked_brands=BRANDS,
        charts_dir=tmp_path / "charts" if tmp_path else None,
        **kw,
    )


def section(digest: Any, key: str) -> Any:
    return next(s for s in digest.sections if s.key == key)


# -- numbers ------------------------------------------------------------------------------


def test_overview_matches_a_hand_count_and_the_change_vs_the_previous_day(store: Store, seeded) -> None:
    digest = build(store)
    assert (digest.period.start, digest.period.end) == (day(27, 0), day(28, 0))
    data = section(digest, "overview").data
    assert data["volume"] == 13 and data["prev_volume"] == 10
    assert data["counts"] == {"positive": 4, "neutral": 2, "negative": 6, "unanalysed": 1}
    assert data["change_pct"] == pytest.approx(30.0)
    assert data["shares"]["negative"] == pytest.approx(6 / 12)
    assert data["change_pp"]["negative"] == pytest.approx(30.0)
    assert data["change_pp"]["positive"] == pytest.approx((4 / 12 - 0.5) * 100)
    assert data["change_pp"]["neutral"] == pytest.approx((2 / 12 - 0.3) * 100)
    assert "声量 <b>13</b> 条（较前一日 +30.0%，上期 10 条）" in digest.text_zh
    assert "负面 <b>50.0%</b>（+30.0个百分点）" in digest.text_zh
    assert "另有 1 条尚未分析情感" in digest.text_zh


def test_weekly_period_is_last_monday_to_sunday(store: Store, seeded) -> None:
    digest = build_digest(store, "weekly", NOW, ZONE)
    assert (digest.period.start, digest.period.end) == (day(16, 0), day(23, 0))
    assert digest.period.prev_start == day(9, 0)
    assert section(digest, "overview").data["volume"] == 70  # 7 ordinary days × 10
    assert "较上周" in digest.text_zh and "鲜课舆情周报" in digest.text_zh


def test_share_of_voice_counts_normalised_mentions_of_brands_and_active_campaign_keywords(
    store: Store, seeded
) -> None:
    data = section(build(store), "share_of_voice").data
    by_keyword = {k["keyword"]: k for k in data["keywords"]}
    assert set(by_keyword) == {"盒马", "Dingdong", "大闸蟹"}  # 月饼 belongs to an ended campaign
    assert [by_keyword[k]["mentions"] for k in ("盒马", "Dingdong", "大闸蟹")] == [3, 1, 2]
    assert [by_keyword[k]["prev_mentions"] for k in ("盒马", "Dingdong", "大闸蟹")] == [1, 1, 0]
    assert data["total"] == 6 and data["prev_total"] == 2
    assert by_keyword["盒马"]["share"] == pytest.approx(0.5)
    assert by_keyword["盒马"]["negative"] == 1
    assert by_keyword["大闸蟹"]["source"] == "campaign"
    assert seeded["ids"]["delay"] in by_keyword["盒马"]["post_ids"]
    assert [k["keyword"] for k in data["keywords"]] == ["盒马", "大闸蟹", "Dingdong"]


def test_topics_and_most_negative_posts_keep_post_ids_for_feedback_buttons(store: Store, seeded) -> None:
    digest = build(store)
    ids = seeded["ids"]
    topics = section(digest, "topics").data["topics"]
    assert [(t["topic_id"], t["posts"], t["negative"]) for t in topics] == [
        (seeded["late"], 3, 3),
        (seeded["crab"], 2, 0),
    ]
    assert topics[0]["post_ids"][0] == ids["delay"]  # the topic job's example comes first
    assert len(topics[0]["post_ids"]) == 2 and topics[0]["emerging"]
    negative = [p["id"] for p in section(digest, "most_negative").data["posts"]]
    assert negative == [ids[k] for k in ("script", "delay", "stale", "box", "price")]
    assert digest.payload["post_ids"]["most_negative"] == negative
    assert digest.payload["post_ids"]["topics"][0] == ids["delay"]
    assert "配送、服务" in digest.text_zh  # negative aspect first


def test_user_text_is_escaped_in_html_but_readable_in_the_terminal(store: Store, seeded) -> None:
    digest = build(store)
    assert "<script>" not in digest.text_zh
    assert "&lt;script&gt;alert('x')&lt;/script&gt; 配送太慢 &amp; 差评" in digest.text_zh
    assert "大闸蟹周 &lt;限时&gt;" in digest.text_zh
    assert "<script>alert('x')</script>" in digest.text_plain
    assert "<b>" not in digest.text_plain


def test_text_stays_within_telegram_limits_however_much_there_is_to_say(store: Store, seeded) -> None:
    brands = [f"很长很长的竞品品牌名称第{i}号" for i in range(300)]
    digest = build_digest(store, "daily", NOW, ZONE, tracked_brands=brands)
    assert telegram_length(digest.text_zh) <= 4096
    assert "更多内容见终端命令" in digest.text_zh
    assert "【最负面】" in digest.text_zh and "【活动效果】" in digest.text_zh  # every section keeps its head
    assert len(digest.caption_zh) <= 1024
    assert "第299号" in digest.text_plain  # the terminal gets everything


@dataclass
class StubReport:
    holdout: Estimate | None
    cuped: Estimate | None
    roi: Estimate | None


def test_campaign_section_lists_each_estimate_sentence(store: Store, seeded) -> None:
    def estimate(store: Store, campaign_id: int, now: datetime) -> StubReport:
        holdout = Estimate(
            "holdout_difference",
            0.021,
            0.004,
            0.038,
            0.01,
            "proportion",
            sentence_zh="活动组转化率比对照组高 2.1 个百分点（95%置信区间 0.4 ~ 3.8），结果显著。",
        )
        roi = Estimate(
            "roi",
            0.8,
            -0.2,
            1.9,
            0.2,
            "ratio",
            sentence_zh="投资回报率 80%（95%置信区间 -20% ~ 190%），暂时还不能确定，建议继续观察。",
        )
        return StubReport(holdout, None, roi)

    sections = [*SECTIONS["daily"][:-1], make_campaigns_section(estimate)]
    digest = build_digest(store, "daily", NOW, ZONE, sections=sections)
    data = section(digest, "campaigns").data["campaigns"]
    assert [c["name"] for c in data] == ["大闸蟹周 <限时>"]
    assert [e["name"] for e in data[0]["estimates"]] == ["holdout_difference", "roi"]
    assert "• 活动组转化率比对照组高 2.1 个百分点" in digest.text_zh
    assert "投资回报率 80%" in digest.text_zh

    def broken(store: Store, campaign_id: int, now: datetime) -> Any:
        raise ValueError("no events yet")

    sections = [*SECTIONS["daily"][:-1], make_campaigns_section(broken)]
    text = build_digest(store, "daily", NOW, ZONE, sections=sections).text_zh
    assert "暂时无法评估" in text


def test_default_campaign_section_works_with_whatever_estimator_is_installed(store: Store, seeded) -> None:
    assert SECTIONS["daily"][-1] is campaigns_section
    lines = section(build(store), "campaigns").lines
    assert lines[0] == "<b>大闸蟹周 &lt;限时&gt;</b>" and len(lines) >= 2


# -- chart ---------------------------------------------------------------------------------


def test_chart_is_a_png_drawn_without_missing_glyphs(store: Store, seeded, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        digest = build(store, tmp_path)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert digest.chart_path == tmp_path / "charts" / "digest-daily-20261127.png"
    assert digest.chart_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert digest.chart_path.stat().st_size > 20_000


def test_missing_glyph_check_would_catch_a_chart_without_the_cjk_font() -> None:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = Figure()
        FigureCanvasAgg(fig)
        fig.text(0.1, 0.5, "鲜课")  # matplotlib's default font has no Chinese
        fig.savefig(io.BytesIO(), format="png")
    assert any("missing from font" in str(w.message) for w in caught)


# -- storing and sending -----------------------------------------------------------------------


def test_send_photo_then_text_and_never_twice_for_the_same_period(
    store: Store, seeded, tmp_path: Path
) -> None:
    telegram = RecordingNotifier()
    digest = build(store, tmp_path)
    first = asyncio.run(send_digest(telegram, [11, 22], digest, store=store))
    assert [d.status for d in first] == ["sent", "sent"]
    photo, text = telegram.to(11)
    assert photo.photo == digest.chart_path and "详细内容见下一条消息" in photo.text
    assert text.text == digest.text_zh and text.photo is None and text.parse_mode == "HTML"
    row = store.query("SELECT * FROM digests")[0]
    assert row["sent_at"] and row["kind"] == "daily" and row["period_start"] == utc_text(day(27, 0))
    assert loads(row["payload"])["post_ids"]["most_negative"][0] == seeded["ids"]["script"]

    again = build(store, tmp_path)  # e.g. the job re-ran after a restart
    assert record_digest(store, again) == row["id"]
    assert asyncio.run(send_digest(telegram, [11, 22], again, store=store)) == []
    assert len(telegram.sent) == 4
    assert store.scalar("SELECT count(*) FROM digests") == 1


def test_a_failing_chat_does_not_stop_the_others_and_is_retried_alone(store: Store, seeded) -> None:
    telegram = RecordingNotifier().fail(1, DeliveryError("chat not found")).fail(2, RecipientBlocked("blocked"))
    digest = build(store)
    result = asyncio.run(send_digest(telegram, [1, 2, 3], digest, store=store))
    assert [(d.chat_id, d.status) for d in result] == [(1, "failed"), (2, "blocked"), (3, "sent")]
    assert len(telegram.to(3)) == 1  # no chart requested: text only
    retry = asyncio.run(send_digest(telegram, [1, 2, 3], build(store), store=store))
    assert [(d.chat_id, d.status) for d in retry] == [(1, "sent")]  # blocked chat is not retried
    deliveries = loads(store.scalar("SELECT deliveries FROM digests"))
    assert {c: d["status"] for c, d in deliveries.items()} == {"1": "sent", "2": "blocked", "3": "sent"}


def test_rate_limited_and_unknown_chats_are_not_retried_in_the_same_run(store: Store, seeded) -> None:
    """No retry loop outside the Bot session: a long 429 leaves the chat for the next run; a message
    whose fate is unknown is final (never a second copy)."""
    telegram = RecordingNotifier().fail(7, RetryLater(120)).fail(8, DeliveryUnknown("timeout"))
    result = asyncio.run(send_digest(telegram, [7, 8, 9], build(store), store=store))
    assert [(d.chat_id, d.status) for d in result] == [(7, "rate_limited"), (8, "unknown"), (9, "sent")]
    assert [chat for _, chat, _ in telegram.calls] == [7, 8, 9]  # one attempt each
    again = asyncio.run(send_digest(telegram, [7, 8, 9], build(store), store=store))
    assert [(d.chat_id, d.status) for d in again] == [(7, "sent")]
    assert len(telegram.to(7)) == 1 and telegram.to(8) == []


def test_digest_job_sends_through_the_context_notifier_once_per_period(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, db_path=tmp_path / "job.db", marketer_chat_ids=[5])
    telegram = RecordingNotifier()
    for _ in range(2):
        store = Store(settings.database_path)
        ctx = JobContext(settings, store, lambda: None, lambda: None, outbox=Outbox(telegram))
        counts = digest_job(ctx, "daily")
        store.close()
    assert counts == {"built": 0, "sent": 0, "already_sent": 1}
    assert [m.photo is not None for m in telegram.sent] == [True, False]
    assert (tmp_path / "charts").is_dir()


def test_cli_prints_the_digest_and_writes_the_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from xianke import context
    from xianke.commands import digest as command

    monkeypatch.setenv("XIANKE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XIANKE_MARKETER_CHAT_IDS", "1")
    monkeypatch.setattr(context, "_app", None)
    Seeder(Store(tmp_path / "xianke.db")).post(
        datetime.now(UTC) - timedelta(days=1), "昨天的帖子", "positive"
    )
    app = typer.Typer()
    app.command("digest")(command.digest)
    app.command("noop")(lambda: None)  # two commands, so `digest` is a sub-command as in xianke
    runner = CliRunner()
    result = runner.invoke(app, ["digest", "--now"])
    assert result.exit_code == 0, result.output
    assert "鲜课舆情日报" in result.output and "【概览】" in result.output
    charts = list((tmp_path / "charts").glob("digest-daily-*.png"))
    assert len(charts) == 1 and str(charts[0].name) in result.output.replace("\n", "")
    result = runner.invoke(app, ["digest", "--now", "--send"])
    assert result.exit_code == 2 and "notifier" in result.output
