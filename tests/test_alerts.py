"""Negative-spike alerts (issue 7): fire once on a real spike, stay quiet on small numbers and normal weeks."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.notify import RetryLater
from core.store import Store, dumps, loads
from listening.alerts import (
    AlertConfig,
    check_alerts,
    pending_alerts,
    robust_threshold,
    send_alerts,
    utc_text,
)
from tests.fakes import RecordingNotifier

ZONE = ZoneInfo("Asia/Shanghai")
TODAY = datetime(2026, 11, 28, tzinfo=ZONE)


class Posts:
    def __init__(self, store: Store):
        self.store, self.n = store, 0

    def add(
        self,
        when: datetime,
        sentiment: str,
        text: str = "",
        aspects: list[dict] | None = None,
        score: float | None = None,
    ) -> int:
        self.n += 1
        return int(
            self.store.db["posts"]
            .insert(
                {
                    "source": "weibo",
                    "external_id": str(self.n),
                    "text": text or f"帖子{self.n}",
                    "text_hash": str(self.n),
                    "created_at": utc_text(when),
                    "sentiment": sentiment,
                    "aspects": dumps(aspects or []),
                    "sentiment_score": score
                    if score is not None
                    else (0.2 if sentiment == "negative" else 0.8),
                }
            )
            .last_pk
        )

    def day(self, when: datetime, total: int, negative: int) -> None:
        """`total` analysed posts spread over the local day, `negative` of them negative, mixed in."""
        labels = ["negative"] * negative + ["positive"] * (total - negative)
        random.Random(total * 31 + negative).shuffle(labels)
        for i, label in enumerate(labels):
            self.add(when.replace(hour=0) + timedelta(minutes=(i * 1440) // max(total, 1)), label)


def history(
    posts: Posts,
    days: int,
    seed: int = 3,
    total: tuple[int, int] = (25, 35),
    negative: tuple[int, int] = (2, 5),
) -> None:
    rnd = random.Random(seed)
    for d in range(days, 0, -1):
        posts.day(TODAY - timedelta(days=d), rnd.randint(*total), rnd.randint(*negative))


def test_robust_threshold_is_median_plus_k_scaled_mad() -> None:
    t = robust_threshold([1, 2, 3, 4, 100], k=3.5)
    assert t is not None and t.median == 3 and t.spread == pytest.approx(1.4826 * 1)
    assert t.value == pytest.approx(3 + 3.5 * 1.4826)
    assert robust_threshold([4, 4, 4], k=3.5, floor=2.0).value == pytest.approx(4 + 7.0)  # flat history
    assert robust_threshold([], k=3.5) is None


def test_negative_spike_fires_once_with_top_posts_and_aspects(store: Store) -> None:
    posts = Posts(store)
    history(posts, 28)
    aspects = [{"aspect": "配送", "polarity": "negative", "span": "配送太慢"}]
    worst = posts.add(
        TODAY + timedelta(hours=8), "negative", "<b>配送</b>太慢，菜都坏了", aspects, score=0.01
    )
    for i in range(17):
        posts.add(TODAY + timedelta(hours=9, minutes=i), "negative", f"第{i}单又迟到", aspects, score=0.3)
    for i in range(10):
        posts.add(TODAY + timedelta(hours=10, minutes=i), "positive")
    now = TODAY + timedelta(hours=11)

    fired = check_alerts(store, now, zone=ZONE)
    assert {a.metric for a in fired} == {"negative_volume", "negative_share"}
    volume = next(a for a in fired if a.metric == "negative_volume")
    assert volume.dedupe_key == "negative_spike:negative_volume:2026-11-28"
    assert volume.value == 18 and volume.threshold < 18 and volume.id is not None
    assert volume.payload["post_ids"][0] == worst
    assert volume.payload["aspects"] == [["配送", 18]]
    assert "负面舆情预警" in volume.text_zh and "11月28日负面声量 <b>18 条</b>" in volume.text_zh
    assert "&lt;b&gt;配送&lt;/b&gt;太慢" in volume.text_zh and "<b>配送</b>" not in volume.text_zh
    assert check_alerts(store, now + timedelta(hours=1), zone=ZONE) == []  # re-check: no duplicate
    assert check_alerts(store, now + timedelta(days=1), zone=ZONE) == []  # next morning re-reads yesterday
    assert store.scalar("SELECT count(*) FROM alerts") == 2


def test_small_numbers_do_not_fire(store: Store) -> None:
    posts = Posts(store)
    history(posts, 28, total=(2, 3), negative=(0, 0))  # a quiet shop: no negative posts at all
    for i in range(4):  # 4 negative of 4 is a 100% share and "infinitely" more than usual, but only 4 posts
        posts.add(TODAY + timedelta(hours=9 + i), "negative")
    assert check_alerts(store, TODAY + timedelta(hours=20), zone=ZONE) == []


def test_no_alert_without_enough_history(store: Store) -> None:
    posts = Posts(store)
    history(posts, 3)
    posts.day(TODAY, 30, 25)
    assert check_alerts(store, TODAY + timedelta(hours=23), zone=ZONE) == []


def test_a_normal_week_does_not_fire(store: Store) -> None:
    posts = Posts(store)
    history(posts, 35, seed=11)
    for d in range(7):  # check every morning and evening of the last week of ordinary days
        for hour in (9, 21):
            assert check_alerts(store, TODAY - timedelta(days=d) + timedelta(hours=hour), zone=ZONE) == []
    assert store.scalar("SELECT count(*) FROM alerts") == 0


def test_hourly_buckets_once_volume_is_high(store: Store) -> None:
    posts = Posts(store)
    config = AlertConfig(hourly_min_daily_volume=48, min_baseline_days=7)
    rnd = random.Random(5)
    for d in range(14, 0, -1):
        for hour in range(24):
            at = TODAY - timedelta(days=d) + timedelta(hours=hour)
            for i in range(rnd.randint(3, 5)):
                posts.add(
                    at + timedelta(minutes=i), "negative" if i == 0 and rnd.random() < 0.5 else "positive"
                )
    for i in range(12):
        posts.add(TODAY + timedelta(hours=14, minutes=i), "negative")
    fired = check_alerts(store, TODAY + timedelta(hours=14, minutes=30), zone=ZONE, config=config)
    keys = {a.dedupe_key for a in fired}
    assert "negative_spike:negative_volume:2026-11-28T14" in keys
    assert all(a.granularity == "hour" for a in fired)
    assert "11月28日 14:00–15:00" in fired[0].text_zh


def test_alerts_are_sent_once_per_chat_and_retried_until_delivered(store: Store) -> None:
    posts = Posts(store)
    history(posts, 28)
    posts.day(TODAY, 30, 20)
    now = TODAY + timedelta(hours=23)
    fired = check_alerts(store, now, zone=ZONE)
    assert fired
    # Chat 1 is rate-limited beyond what the Bot session waits: not sent now, no retry loop here…
    telegram = RecordingNotifier().fail(1, RetryLater(120))
    [first, *rest] = asyncio.run(send_alerts(telegram, [1, 2], fired, store=store))
    assert first.status == "rate_limited" and {d.status for d in rest} == {"sent"}
    assert len(telegram.sent) == 2 * len(fired) - 1
    # … the next run delivers exactly what is missing.
    asyncio.run(send_alerts(telegram, [1, 2], fired, store=store))
    assert len(telegram.sent) == 2 * len(fired) and pending_alerts(store, now) == []
    assert sorted(m.chat_id for m in telegram.sent) == sorted([1, 2] * len(fired))
    asyncio.run(send_alerts(telegram, [1, 2], fired, store=store))
    assert len(telegram.sent) == 2 * len(fired)  # already delivered: nothing new
    row = store.query("SELECT * FROM alerts ORDER BY id")[0]
    assert row["sent_at"] and set(loads(row["deliveries"])) == {"1", "2"}
