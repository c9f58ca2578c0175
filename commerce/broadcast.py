"""Campaign broadcasts: plan a segment into treatment / holdout, then send to the treatment arm.

Delivery guarantees (Telegram's sendMessage has no idempotency key, so exactly-once is impossible):
each assignment moves pending → sending (committed *before* the request) → sent (committed with
sent_at, message_id and a broadcast_sent event *after* it). A crash between the two commits leaves a
'sending' row; the next `send()` marks it 'unknown' and does NOT resend it. That is at-most-once:
a promotional message that arrives twice annoys a customer and invites a block, one that never
arrives costs little. The window is one HTTP round trip per in-flight message (≤ `concurrency`
users per crash), they are counted in the report, and `requeue_unknown()` lets an operator choose
to resend them after all. Rows are claimed with `UPDATE … WHERE send_status = 'pending'`, so even
two senders running at once never message the same user twice (they would, however, each take
their own rate budget: share one `RateLimiter` between them, or run one sender per bot token).

Holdout users are never sent anything. Users who opted out or blocked the bot since the plan are
skipped ('skipped_opt_out' / 'skipped_blocked'); a 403 marks the user blocked_bot=1 ('blocked').
Each user gets exactly one send attempt here: short 429 waits are the Bot session's job
(bot/retry.py, the one retry policy); a longer wait reaches us as RetryLater (not sent), puts that
user back to 'pending' and stops the run so it can be resumed later; DeliveryUnknown (a timeout or
a lost connection after sending) marks the row 'unknown' and is never resent. The global rate is
≤ `rate` messages per second (Telegram allows about 30/s for bulk sends).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from commerce.campaigns import Campaign, CampaignRepository, SegmentRule, arm_for, assign
from core.domain import EventKind, format_price
from core.logging import log_event
from core.notify import (
    Button,
    DeliveryError,
    DeliveryUnknown,
    Notifier,
    Outgoing,
    RecipientBlocked,
    RetryLater,
)
from core.repos.coupons import CouponRepository, iso_utc
from core.repos.events import EventRepository
from core.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_RATE = 25.0
DEFAULT_CONCURRENCY = 4
PAGE = 200
TELEGRAM_TEXT_LIMIT = 4096
# (stage, done, total): the same shape as jobs.registry.Progress, so a CLI progress bar fits.
Progress = Callable[[str, int, int | None], None]
FINAL_STATUSES = ("sent", "blocked", "failed", "unknown", "skipped_opt_out", "skipped_blocked")


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


class RateLimiter:
    """At most `rate` releases per second across every task that shares it.

    A one-token bucket: releases are spaced by 1/rate measured from the previous *actual* release, so
    any one-second window holds at most `rate` of them. `pause(seconds)` (Telegram's retry_after)
    holds everyone back, because flood control applies to the whole bot, not to one chat.
    """

    def __init__(self, rate: float = DEFAULT_RATE, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.clock = clock
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock() + max(0.0, seconds))

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                wait = max(self._next, self._paused_until) - self.clock()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._next = self.clock() + self.interval


@dataclass
class PlanReport:
    treatment: int = 0
    holdout: int = 0
    already_planned: int = 0  # users who had an assignment for this campaign before (kept as they were)
    excluded: int = 0  # given ids that are unknown, banned, opted out or blocked the bot
    dry_run: bool = False

    @property
    def total(self) -> int:
        return self.treatment + self.holdout + self.already_planned

    def summary_zh(self) -> str:
        head = "预演（未写入）" if self.dry_run else "已分组"
        return (
            f"{head}：活动组 {self.treatment} 人，对照组 {self.holdout} 人（不发送）"
            + (f"，之前已分组 {self.already_planned} 人" if self.already_planned else "")
            + (f"，{self.excluded} 人无法触达已排除" if self.excluded else "")
        )


@dataclass
class SendReport:
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    unknown: int = 0  # outcome unknown (crash or timeout in flight): not resent, see requeue_unknown
    skipped_opt_out: int = 0
    skipped_blocked: int = 0
    recovered_unknown: int = 0  # 'sending' rows left by an earlier crash, marked unknown at start
    rate_limited: int = 0  # a 429 longer than the session waits: the run stopped, that user stays pending
    elapsed_s: float = 0.0
    stopped: str | None = None  # why the run ended early (rows left pending), e.g. persistent flood control
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        return {
            "sent": self.sent, "blocked": self.blocked, "failed": self.failed, "unknown": self.unknown,
            "skipped_opt_out": self.skipped_opt_out, "skipped_blocked": self.skipped_blocked,
            "recovered_unknown": self.recovered_unknown, "rate_limited": self.rate_limited,
            "elapsed_s": round(self.elapsed_s, 2), "stopped": self.stopped,
        }

    def summary_zh(self) -> str:
        text = (
            f"已发送 {self.sent} 条（{self.rate:.1f} 条/秒），拉黑 {self.blocked}，失败 {self.failed}，"
            f"已退订跳过 {self.skipped_opt_out}，已拉黑跳过 {self.skipped_blocked}"
        )
        if self.unknown or self.recovered_unknown:
            text += f"，结果未知（不重发）{self.unknown + self.recovered_unknown}"
        if self.stopped:
            text += f"。提前停止：{self.stopped}（未发送的用户保持待发送，再运行一次即可继续）"
        return text


class _FloodStop(Exception):
    """Telegram asked for a longer wait than the session accepts: stop the run, keep the rest pending."""


class Broadcaster:
    """Plans and sends one campaign's broadcast. Create one per run; share a RateLimiter between
    broadcasters that use the same bot token."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        rate: float = DEFAULT_RATE,
        *,
        limiter: RateLimiter | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Progress = _no_progress,
        seed: str = "",
    ):
        self.store = store
        self.notifier = notifier
        self.limiter = limiter or RateLimiter(rate)
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.seed = seed  # mixed into the arm hash; keep "" so entry and broadcast arms agree
        self.events = EventRepository(store)
        self.coupons = CouponRepository(store, self.events)
        # One thread runs every database call: the event loop (maybe the bot's) never waits on SQLite.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcast-db")

    async def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._db.shutdown(wait=True)

    # -- planning ---------------------------------------------------------------------------
    def plan(
        self,
        campaign: Campaign,
        segment: SegmentRule | Iterable[int],
        *,
        text: str | None = None,
        html_text: bool = False,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> PlanReport:
        """Assign every user of the segment to treatment / holdout (stored; idempotent: users planned
        before keep their arm and status). `text` becomes the campaign's stored broadcast text, so a
        resumed send uses the same message. With `dry_run` nothing is written."""
        moment = now or datetime.now(UTC)
        if text is not None and not 1 <= len(text.strip()) <= TELEGRAM_TEXT_LIMIT:
            raise ValueError(f"群发文案不能为空，也不能超过 {TELEGRAM_TEXT_LIMIT} 个字符（Telegram 的上限）")
        if isinstance(segment, SegmentRule):
            from commerce.segments import select_users  # sklearn only when a rule needs clustering

            users = select_users(self.store, segment, moment)
            excluded = 0
        else:
            wanted = sorted(set(segment))
            users = self._reachable(wanted)
            excluded = len(wanted) - len(users)
        report = PlanReport(dry_run=dry_run, excluded=excluded)
        known = {
            int(u) for (u,) in self.store.db.execute(
                "SELECT user_id FROM campaign_assignments WHERE campaign_id = ?", [campaign.campaign_id]
            ).fetchall()
        }
        with self.store.transaction() as db:
            if text is not None and not dry_run:
                db.execute(
                    "UPDATE campaigns SET broadcast_text = ?, broadcast_html = ? WHERE id = ?",
                    [text, int(html_text), campaign.campaign_id],
                )
            for user_id in users:
                if user_id in known:
                    report.already_planned += 1
                    continue
                if dry_run:
                    arm = arm_for(campaign.campaign_id, user_id, campaign.holdout_pct, seed=self.seed)
                else:
                    arm, _ = assign(self.store, campaign, user_id, source="broadcast", now=moment,
                                    send_status="pending", seed=self.seed)
                report.treatment += arm == "treatment"
                report.holdout += arm == "holdout"
        log_event(log, "broadcast planned", campaign=campaign.slug, **vars(report))
        return report

    def _reachable(self, user_ids: list[int]) -> list[int]:
        """Known users who may be messaged; unreachable ones are dropped before randomisation so
        both arms come from the same population (as select_users does for rules)."""
        out: list[int] = []
        for start in range(0, len(user_ids), 500):
            chunk = user_ids[start : start + 500]
            rows = self.store.db.execute(
                f"SELECT id FROM users WHERE id IN ({','.join('?' * len(chunk))})"
                " AND banned = 0 AND opted_out = 0 AND blocked_bot = 0",
                chunk,
            ).fetchall()
            out += [int(r[0]) for r in rows]
        return sorted(out)

    # -- recovery ---------------------------------------------------------------------------
    def recover(self, campaign_id: int) -> int:
        """Rows left 'sending' by a crashed run: we cannot know whether Telegram delivered them, so
        they become 'unknown' and are not resent (at-most-once)."""
        cursor = self.store.db.execute(
            "UPDATE campaign_assignments SET send_status = 'unknown', send_error = 'interrupted while sending'"
            " WHERE campaign_id = ? AND send_status = 'sending'",
            [campaign_id],
        )
        return cursor.rowcount

    def requeue_unknown(self, campaign_id: int) -> int:
        """Operator's choice: send the 'unknown' ones again (some of them may get the message twice)."""
        return self.store.db.execute(
            "UPDATE campaign_assignments SET send_status = 'pending', claimed_at = NULL"
            " WHERE campaign_id = ? AND send_status = 'unknown'",
            [campaign_id],
        ).rowcount

    def status_counts(self, campaign_id: int) -> dict[str, int]:
        return dict(self.store.db.execute(
            "SELECT send_status, count(*) FROM campaign_assignments WHERE campaign_id = ? GROUP BY send_status",
            [campaign_id],
        ).fetchall())

    # -- sending ----------------------------------------------------------------------------
    async def send(self, campaign: Campaign, *, buttons: Sequence[Sequence[Button]] = ()) -> SendReport:
        """Send the stored broadcast text to every pending treatment user, in user-id order."""
        fresh = await self._run(CampaignRepository(self.store).get, campaign.campaign_id)
        if fresh is None or not (fresh.broadcast_text or "").strip():
            raise ValueError(f"活动 {campaign.slug} 还没有群发文案：先用 plan(..., text=…) 保存文案")
        report = SendReport(recovered_unknown=await self._run(self.recover, fresh.campaign_id))
        total = await self._run(self._pending_count, fresh.campaign_id)
        queue = self._pending(fresh.campaign_id)
        lock = asyncio.Lock()
        done = 0
        started = time.monotonic()
        stop = asyncio.Event()

        async def next_user() -> int | None:
            async with lock:
                return None if stop.is_set() else await anext(queue, None)

        async def worker() -> None:
            nonlocal done
            while (user_id := await next_user()) is not None:
                try:
                    await self._deliver(fresh, user_id, [list(row) for row in buttons], report)
                except _FloodStop:
                    report.stopped = "Telegram 要求等待较长时间（429 限流），请稍后再运行"
                    stop.set()
                    return
                done += 1
                self.progress("broadcast", done, total)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        report.elapsed_s = time.monotonic() - started
        log_event(log, "broadcast sent", campaign=fresh.slug, **report.counts())
        return report

    def _pending_count(self, campaign_id: int) -> int:
        return int(self.store.scalar(
            "SELECT count(*) FROM campaign_assignments WHERE campaign_id = ? AND arm = 'treatment' AND send_status = 'pending'",
            [campaign_id],
        ))

    async def _pending(self, campaign_id: int) -> Any:
        after = -(2**63)
        while True:
            rows = await self._run(
                self.store.query,
                """SELECT user_id FROM campaign_assignments
                   WHERE campaign_id = ? AND arm = 'treatment' AND send_status = 'pending' AND user_id > ?
                   ORDER BY user_id LIMIT ?""",
                [campaign_id, after, PAGE],
            )
            if not rows:
                return
            for row in rows:
                yield int(row["user_id"])
            after = int(rows[-1]["user_id"])

    async def _deliver(self, campaign: Campaign, user_id: int, buttons: list[list[Button]], report: SendReport) -> None:
        status, message = await self._run(self._claim, campaign, user_id, buttons)
        if status == "skipped_opt_out":
            report.skipped_opt_out += 1
        elif status == "skipped_blocked":
            report.skipped_blocked += 1
        if message is None:
            return
        # One attempt per user: the Bot session already waited out short 429s (bot/retry.py).
        await self.limiter.acquire()
        try:
            message_id = await self.notifier.send(message)
        except RetryLater as exc:  # a long flood wait: not sent, so the row goes back to pending
            report.rate_limited += 1
            self.limiter.pause(exc.seconds)
            await self._run(self._finish, campaign, user_id, "pending", error=f"429 retry_after={exc.seconds:g}")
            raise _FloodStop from exc
        except RecipientBlocked as exc:
            report.blocked += 1
            await self._run(self._finish, campaign, user_id, "blocked", error=str(exc)[:200], block_user=True)
        except DeliveryUnknown as exc:  # it may have arrived: never resent automatically
            self._record_unknown(report, user_id, exc)
            await self._run(self._finish, campaign, user_id, "unknown", error=repr(exc)[:200])
        except DeliveryError as exc:
            report.failed += 1
            report.errors.append(f"{user_id}: {exc}"[:200])
            await self._run(self._finish, campaign, user_id, "failed", error=str(exc)[:200])
        except Exception as exc:  # a notifier outside the contract: its fate is just as unknown
            self._record_unknown(report, user_id, exc)
            await self._run(self._finish, campaign, user_id, "unknown", error=repr(exc)[:200])
        else:
            report.sent += 1
            await self._run(self._finish, campaign, user_id, "sent", message_id=message_id)

    @staticmethod
    def _record_unknown(report: SendReport, user_id: int, exc: Exception) -> None:
        report.unknown += 1
        report.errors.append(f"{user_id}: {exc!r}"[:200])
        log_event(log, "broadcast outcome unknown, not resending", logging.WARNING, user_id=user_id, error=repr(exc)[:200])

    def _claim(self, campaign: Campaign, user_id: int, buttons: list[list[Button]]) -> tuple[str | None, Outgoing | None]:
        """pending → sending (or a skip status), committed before anything goes to Telegram."""
        now = datetime.now(UTC)
        with self.store.transaction() as db:
            user = self.store.query("SELECT first_name, opted_out, blocked_bot FROM users WHERE id = ?", [user_id])
            flags = user[0] if user else {"first_name": "", "opted_out": 1, "blocked_bot": 0}
            status = "skipped_opt_out" if flags["opted_out"] else "skipped_blocked" if flags["blocked_bot"] else "sending"
            claimed = db.execute(
                """UPDATE campaign_assignments SET send_status = ?, claimed_at = ?
                   WHERE campaign_id = ? AND user_id = ? AND arm = 'treatment' AND send_status = 'pending'""",
                [status, iso_utc(now), campaign.campaign_id, user_id],
            ).rowcount
            if not claimed:
                return None, None  # another sender took it
            if status != "sending":
                return status, None
            coupon = None
            rule = campaign.coupon_rule
            if rule is not None and rule.trigger == "broadcast":
                coupon, _ = self.coupons.issue_for_campaign(
                    user_id, campaign.campaign_id, rule=campaign.rule_name("broadcast"), now=now, **rule.terms()
                )
        text = render(campaign.broadcast_text or "", first_name=flags["first_name"], coupon=coupon, html_text=campaign.broadcast_html)
        return status, Outgoing(user_id, text, buttons=buttons, parse_mode="HTML" if campaign.broadcast_html else None)

    def _finish(
        self, campaign: Campaign, user_id: int, status: str, *, message_id: int | None = None,
        error: str | None = None, block_user: bool = False,
    ) -> None:
        now = iso_utc(datetime.now(UTC))
        with self.store.transaction() as db:
            # 'unknown' is accepted too: a concurrent recover() may have marked our in-flight row.
            db.execute(
                """UPDATE campaign_assignments SET send_status = ?, sent_at = ?, message_id = ?, send_error = ?,
                          claimed_at = CASE WHEN ? = 'pending' THEN NULL ELSE claimed_at END
                   WHERE campaign_id = ? AND user_id = ? AND send_status IN ('sending', 'unknown')""",
                [status, now if status == "sent" else None, message_id, error, status, campaign.campaign_id, user_id],
            )
            if block_user:
                db.execute("UPDATE users SET blocked_bot = 1 WHERE id = ?", [user_id])
            if status == "sent":
                self.events.record(
                    user_id, EventKind.BROADCAST_SENT, campaign_id=campaign.campaign_id,
                    payload={"message_id": message_id}, created_at=now,
                )


def render(template: str, *, first_name: str = "", coupon: Any = None, html_text: bool = False) -> str:
    """Fill {name}, {code}, {discount}, {expires} in a broadcast text. Only these placeholders are
    replaced (no str.format), so braces elsewhere in a marketer's text are safe."""
    esc: Callable[[str], str] = html.escape if html_text else (lambda s: s)
    values = {"{name}": first_name or "朋友"}
    if coupon is not None:
        values |= {
            "{code}": coupon["code"],
            "{discount}": format_price(coupon["discount_cents"]),
            "{expires}": (coupon["expires_at"] or "")[:10],
        }
    text = template
    for key, value in values.items():
        text = text.replace(key, esc(str(value)))
    return text


async def run_broadcast(
    store: Store, notifier: Notifier, campaign: Campaign, *, rate: float = DEFAULT_RATE,
    progress: Progress = _no_progress, buttons: Sequence[Sequence[Button]] = (),
) -> SendReport:
    """Convenience for the CLI and the marketer bot: send (or resume) one campaign's broadcast."""
    broadcaster = Broadcaster(store, notifier, rate, progress=progress)
    try:
        return await broadcaster.send(campaign, buttons=buttons)
    finally:
        broadcaster.close()

