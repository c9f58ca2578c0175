"""Broadcasts: treatment once, holdout never, opt-outs skipped, 403 marked, 429 honoured, ≤ rate msg/s,
and a crashed run resumes without messaging anyone twice.

`RecordingNotifier` (tests/fakes.py) is a test double of the Telegram API behind the Notifier
interface (not of our code): it records every call and can answer 429 (RetryLater) or 403
(RecipientBlocked) for chosen users. tests/test_delivery.py drives the production notifier.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from commerce.broadcast import Broadcaster, RateLimiter, render
from commerce.campaigns import Campaign, CampaignRepository, SegmentRule
from core.notify import RetryLater
from core.store import Store
from tests.fakes import RecordingNotifier

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def max_per_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def make_campaign(store: Store, n_users: int, *, slug: str = "winter", holdout: float = 20, **extra: object) -> Campaign:
    with store.transaction():
        for uid in range(1, n_users + 1):
            store.db.execute("INSERT INTO users (id, first_name) VALUES (?, ?)", [uid, f"顾客{uid}"])
    return CampaignRepository(store).create(
        Campaign.build(slug=slug, name="冬季群发", channel="broadcast", holdout_pct=holdout, **extra)
    )


def arms(store: Store, campaign: Campaign) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {"treatment": set(), "holdout": set()}
    for uid, arm in store.db.execute(
        "SELECT user_id, arm FROM campaign_assignments WHERE campaign_id = ?", [campaign.id]
    ).fetchall():
        out[arm].add(uid)
    return out


def statuses(store: Store, campaign: Campaign) -> dict[int, str]:
    return dict(store.db.execute(
        "SELECT user_id, send_status FROM campaign_assignments WHERE campaign_id = ?", [campaign.id]
    ).fetchall())


async def test_treatment_once_holdout_never_optouts_skipped_blocked_marked(store: Store) -> None:
    campaign = make_campaign(store, 120)
    broadcaster = Broadcaster(store, RecordingNotifier(), rate=200)
    plan = broadcaster.plan(campaign, range(1, 121), text="{name}，冬季新课上线！", now=NOW)
    split = arms(store, campaign)
    assert plan.treatment == len(split["treatment"]) and plan.holdout == len(split["holdout"]) > 10
    treated = sorted(split["treatment"])
    opted_out, blocked = set(treated[:3]), set(treated[3:5])
    for uid in opted_out:  # changed their mind after the plan
        store.db.execute("UPDATE users SET opted_out = 1 WHERE id = ?", [uid])
    telegram = RecordingNotifier(blocked=blocked)
    broadcaster = Broadcaster(store, telegram, rate=200)
    report = await broadcaster.send(campaign)
    broadcaster.close()

    assert Counter(telegram.delivered).most_common(1)[0][1] == 1  # nobody twice
    assert set(telegram.delivered) == split["treatment"] - opted_out - blocked
    assert not set(telegram.delivered) & split["holdout"]
    assert report.sent == len(telegram.delivered) and report.blocked == 2 and report.skipped_opt_out == 3
    state = statuses(store, campaign)
    assert {state[u] for u in split["holdout"]} == {"holdout"}
    assert {state[u] for u in opted_out} == {"skipped_opt_out"} and {state[u] for u in blocked} == {"blocked"}
    assert store.scalar(f"SELECT count(*) FROM users WHERE blocked_bot = 1 AND id IN ({','.join(map(str, blocked))})") == 2
    assert store.scalar("SELECT count(*) FROM events WHERE kind = 'broadcast_sent' AND campaign_id = ?",
                        [campaign.id]) == report.sent
    assert telegram.texts[treated[6]] == f"顾客{treated[6]}，冬季新课上线！"
    # a second run finds nothing left to send
    again = Broadcaster(store, telegram, rate=200)
    assert (await again.send(campaign)).sent == 0 and len(telegram.delivered) == report.sent
    again.close()


async def test_rate_limit_25_per_second(store: Store) -> None:
    campaign = make_campaign(store, 60, holdout=0)
    telegram = RecordingNotifier(latency=0.02)
    broadcaster = Broadcaster(store, telegram, rate=25, concurrency=8)
    broadcaster.plan(campaign, range(1, 61), text="限时优惠", now=NOW)
    report = await broadcaster.send(campaign)
    broadcaster.close()
    times = [t for t, _, _ in telegram.calls]
    assert report.sent == 60
    assert max_per_window(times) <= 25
    assert times[-1] - times[0] >= 59 / 25 * 0.99
    print(f"\nbroadcast: {report.sent} messages in {report.elapsed_s:.2f}s = {report.rate:.1f} msg/s (limit 25)")


async def test_cancelled_run_resumes_without_sending_twice(store: Store) -> None:
    campaign = make_campaign(store, 50, holdout=10)
    first = RecordingNotifier(hang_after=15)
    broadcaster = Broadcaster(store, first, rate=500, concurrency=4)
    broadcaster.plan(campaign, range(1, 51), text="新品", now=NOW)
    task = asyncio.create_task(broadcaster.send(campaign))
    await asyncio.wait_for(first.reached_hang.wait(), 10)
    await asyncio.sleep(0.05)  # let every worker get stuck in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    broadcaster.close()
    in_flight = {chat for _, chat, outcome in first.calls if outcome == "hang"}
    assert len(in_flight) == 4 and set(statuses(store, campaign)[u] for u in in_flight) == {"sending"}

    second = RecordingNotifier()
    resumed = Broadcaster(store, second, rate=500)
    report = await resumed.send(campaign)
    resumed.close()
    treated = arms(store, campaign)["treatment"]
    assert report.recovered_unknown == 4
    assert not set(first.delivered) & set(second.delivered) and not in_flight & set(second.delivered)
    assert set(first.delivered) | set(second.delivered) | in_flight == treated
    assert Counter(statuses(store, campaign).values())["unknown"] == 4
    # The operator may choose to resend the unknown ones.
    assert resumed.requeue_unknown(campaign.id) == 4


def test_killed_process_resumes_without_sending_twice(store: Store, tmp_path: Path) -> None:
    campaign = make_campaign(store, 40, slug="crash", holdout=0)
    Broadcaster(store, RecordingNotifier()).plan(campaign, range(1, 41), text="hi", now=NOW)
    log = tmp_path / "delivered.txt"
    script = textwrap.dedent("""
        import asyncio, os, signal, sys
        from commerce.campaigns import CampaignRepository
        from core.store import Store
        from commerce.broadcast import Broadcaster

        db, log_path, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])

        class Dying:
            n = 0
            async def send(self, message):
                with open(log_path, "a") as f:
                    f.write(f"{message.chat_id}\\n"); f.flush(); os.fsync(f.fileno())
                self.n += 1
                if self.n >= kill_after:  # delivered, but the process dies before recording it
                    os.kill(os.getpid(), signal.SIGKILL)
                return self.n

        store = Store(db)
        campaign = CampaignRepository(store).get_by_slug("crash")
        asyncio.run(Broadcaster(store, Dying(), rate=1000, concurrency=1).send(campaign))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(store.path), str(log), "12"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -9, proc.stderr
    before = [int(x) for x in log.read_text().split()]
    assert len(before) == 12

    telegram = RecordingNotifier()
    resumed = Broadcaster(store, telegram, rate=1000)
    report = asyncio.run(resumed.send(campaign))
    resumed.close()
    everyone = before + telegram.delivered
    assert report.recovered_unknown == 1  # the 12th: delivered, never recorded — and not resent
    assert sorted(everyone) == list(range(1, 41))  # every user exactly once


async def test_long_flood_wait_stops_the_run_and_keeps_users_pending(store: Store) -> None:
    """A 429 the session would not wait out reaches the broadcaster as RetryLater: that message was
    not sent, so the user goes back to pending (no retry loop here) and the run stops, resumable."""
    campaign = make_campaign(store, 10, holdout=0)
    telegram = RecordingNotifier().fail(3, RetryLater(120))
    broadcaster = Broadcaster(store, telegram, rate=1000, concurrency=1)
    broadcaster.plan(campaign, range(1, 11), text="hi", now=NOW)
    report = await broadcaster.send(campaign)
    assert report.stopped and report.sent == 2 and report.rate_limited == 1
    assert [chat for _, chat, _ in telegram.calls] == [1, 2, 3]  # user 3 was tried once, not again
    assert Counter(statuses(store, campaign).values()) == {"sent": 2, "pending": 8}
    later = Broadcaster(store, RecordingNotifier(), rate=1000)
    assert (await later.send(campaign)).sent == 8
    broadcaster.close()
    later.close()


def test_plan_is_idempotent_and_dry_run_writes_nothing(store: Store) -> None:
    campaign = make_campaign(store, 200, holdout=30)
    broadcaster = Broadcaster(store, RecordingNotifier())
    dry = broadcaster.plan(campaign, range(1, 201), dry_run=True, now=NOW)
    assert dry.treatment + dry.holdout == 200 and store.scalar("SELECT count(*) FROM campaign_assignments") == 0
    first = broadcaster.plan(campaign, range(1, 201), text="A", now=NOW)
    assert (first.treatment, first.holdout) == (dry.treatment, dry.holdout)  # the same hash decides
    assert 40 <= first.holdout <= 80
    before = arms(store, campaign)
    with store.transaction():
        for uid in range(201, 221):
            store.db.execute("INSERT INTO users (id) VALUES (?)", [uid])
    again = broadcaster.plan(campaign, range(1, 251), now=NOW)  # a grown segment: only newcomers are added
    assert again.already_planned == 200 and again.treatment + again.holdout == 20 and again.excluded == 30
    assert {a: u & set(range(1, 201)) for a, u in arms(store, campaign).items()} == before
    # A rule-based plan drops unreachable users before randomising.
    store.db.execute("UPDATE users SET opted_out = 1 WHERE id = 5")
    other = CampaignRepository(store).create(Campaign.build(slug="rule", name="规则", channel="broadcast"))
    ruled = broadcaster.plan(other, SegmentRule(language="zh"), now=NOW)
    assert ruled.treatment == 219  # 220 users, one opted out
    broadcaster.close()


async def test_broadcast_coupon_rule_and_html_escaping(store: Store) -> None:
    rule = {"trigger": "broadcast", "target_type": "kit", "discount_cents": 1500, "min_spend_cents": 6000}
    campaign = make_campaign(store, 30, holdout=20, coupon_rule=rule)
    store.db.execute("UPDATE users SET first_name = '<b>阿明</b>' WHERE id = 1")
    telegram = RecordingNotifier()
    broadcaster = Broadcaster(store, telegram, rate=1000)
    broadcaster.plan(campaign, range(1, 31), text="<b>{name}</b>：券码 {code}，减{discount}，{expires} 前有效 {x}",
                     html_text=True, now=NOW)
    await broadcaster.send(campaign)
    broadcaster.close()
    split = arms(store, campaign)
    codes = dict(store.db.execute("SELECT user_id, code FROM coupons WHERE campaign_id = ?", [campaign.id]).fetchall())
    assert set(codes) == split["treatment"]  # holdout: no message, no coupon
    some = min(split["treatment"])
    assert codes[some] in telegram.texts[some] and "减¥15" in telegram.texts[some] and "{x}" in telegram.texts[some]
    if 1 in split["treatment"]:
        assert telegram.texts[1].startswith("<b>&lt;b&gt;阿明&lt;/b&gt;</b>")
    assert render("{name} {code}", first_name="") == "朋友 {code}"


async def test_rate_limiter_spacing_and_pause() -> None:
    limiter = RateLimiter(rate=50)
    stamps = []
    start = time.monotonic()
    limiter.pause(0.1)
    for _ in range(6):
        await limiter.acquire()
        stamps.append(time.monotonic() - start)
    assert stamps[0] >= 0.099
    assert all(b - a >= 0.0199 for a, b in pairwise(stamps))
