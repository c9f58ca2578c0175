"""Crisis alerts on negative spikes (issue 7) and their delivery to marketer chats (core.delivery).

A spike is a bucket (a local day, or a local hour once volume is high enough) whose negative volume
or negative share is above a robust threshold learnt from the same bucket on the previous days:

    threshold = median + k · max(1.4826 · MAD, noise floor)

1.4826 · MAD estimates the standard deviation without letting past spikes inflate it, and with the
default k = 3.5 this is Iglewicz and Hoaglin's modified z-score rule. The noise floor (Poisson for
counts, binomial for shares) stops a flat history (MAD = 0) from alerting on one extra post, and a
minimum number of negative posts keeps small numbers quiet. Each alert is stored once in `alerts`
under `negative_spike:<metric>:<bucket>`, so re-checking the same day never repeats it.
"""

from __future__ import annotations

import html
import logging
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from core.clock import parse_utc, utc_text
from core.delivery import Delivery, deliver, finished_chats, record_delivery
from core.logging import log_event
from core.notify import Notifier, Outgoing
from core.repos.corrections import correction_buttons
from core.store import Store, dumps, loads

log = logging.getLogger(__name__)

ALERT_KIND = "negative_spike"
METRICS = ("negative_volume", "negative_share")
SENTIMENTS = ("positive", "neutral", "negative")
MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation


# -- configuration -----------------------------------------------------------------


@dataclass(frozen=True)
class AlertConfig:
    k: float = 3.5  # robust z above which a bucket is a spike
    window_days: int = 28  # trailing baseline: the same bucket on each of these previous days
    min_baseline_days: int = 7  # no alerts until this much history exists
    min_negative: int = 5  # a spike needs at least this many negative posts in its bucket
    min_volume: int = 10  # a share is only judged (and learnt from) buckets with this many analysed posts
    hourly_min_daily_volume: int = 240  # median analysed posts per day from which hourly buckets are used
    top_posts: int = 3  # negative posts quoted in the alert
    max_age_h: int = 24  # unsent alerts older than this are not sent any more (stale news)

    @classmethod
    def from_settings(cls, settings: Any) -> AlertConfig:
        """Read optional XIANKE_ALERT_* settings; missing ones keep the defaults."""
        defaults = cls()
        return cls(
            k=float(getattr(settings, "alert_k", None) or defaults.k),
            window_days=int(getattr(settings, "alert_window_days", None) or defaults.window_days),
            min_negative=int(getattr(settings, "alert_min_negative", None) or defaults.min_negative),
        )


# -- counting posts per bucket -------------------------------------------------------


@dataclass
class SentimentCounts:
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    unanalysed: int = 0

    @property
    def analysed(self) -> int:
        return self.positive + self.neutral + self.negative

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.analysed if self.analysed else None

    def add(self, sentiment: str | None, n: int = 1) -> None:
        if sentiment in SENTIMENTS:
            setattr(self, sentiment, getattr(self, sentiment) + n)
        else:
            self.unanalysed += n


def local_midnight(day: datetime, zone: tzinfo) -> datetime:
    local = day.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


def bucket_counts(
    store: Store, start: datetime, end: datetime, zone: tzinfo, *, hourly: bool = False
) -> dict[datetime, SentimentCounts]:
    """Posts in [start, end) counted by sentiment per local day (or hour), keyed by naive local start.

    Grouped by UTC minute in SQL (few rows), then placed in local buckets in Python, so zones with
    half-hour offsets and DST changes land on the right local day.
    """
    rows = store.query(
        """SELECT substr(created_at, 1, 16) AS minute, sentiment, count(*) AS n FROM posts
           WHERE created_at >= ? AND created_at < ? GROUP BY minute, sentiment""",
        [utc_text(start), utc_text(end)],
    )
    out: dict[datetime, SentimentCounts] = {}
    for row in rows:
        local = datetime.fromisoformat(row["minute"] + ":00+00:00").astimezone(zone).replace(tzinfo=None)
        key = local.replace(minute=0) if hourly else local.replace(hour=0, minute=0)
        out.setdefault(key, SentimentCounts()).add(row["sentiment"], row["n"])
    return out


# -- the robust threshold ---------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    median: float
    spread: float  # max(1.4826 · MAD, noise floor)
    k: float
    n: int  # baseline buckets used

    @property
    def value(self) -> float:
        return self.median + self.k * self.spread


def robust_threshold(values: Sequence[float], k: float, floor: float = 0.0) -> Threshold | None:
    """median + k · max(1.4826 · MAD, floor) of the baseline values; None without values."""
    if not values:
        return None
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    return Threshold(float(median), max(MAD_TO_SD * mad, floor), k, len(values))


def count_floor(median: float) -> float:
    # Poisson noise: a day that usually has 4 negative posts can have 8 without anything happening.
    return math.sqrt(max(median, 1.0))


def share_floor(median: float, n: int) -> float:
    # Binomial noise of a share measured on n posts; the share is clipped so 0% history still has noise.
    p = min(max(median, 0.05), 0.95)
    return math.sqrt(p * (1 - p) / max(n, 1))


# -- detection ------------------------------------------------------------------------------


@dataclass
class Alert:
    kind: str
    metric: str
    dedupe_key: str
    bucket: datetime  # naive local start of the day or hour
    granularity: str  # day | hour
    value: float
    threshold: float
    median: float
    text_zh: str
    payload: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    fired_at: str | None = None


def choose_hourly(
    counts: Mapping[datetime, SentimentCounts], first_day: datetime, today: datetime, config: AlertConfig
) -> bool:
    """Hourly buckets only when a typical day has enough posts for each hour to mean something."""
    per_day: Counter[datetime] = Counter()
    for key, c in counts.items():
        per_day[key.replace(hour=0, minute=0)] += c.analysed
    days = [today - timedelta(days=i) for i in range(1, config.window_days + 1)]
    days = [d for d in days if d >= first_day]
    if len(days) < config.min_baseline_days:
        return False
    return statistics.median(per_day.get(d, 0) for d in days) >= config.hourly_min_daily_volume


def _evaluate(
    bucket: datetime, counts: Mapping[datetime, SentimentCounts], first_bucket: datetime, config: AlertConfig
) -> list[tuple[str, float, Threshold]]:
    """The metrics whose value in `bucket` is above its threshold: (metric, value, threshold)."""
    current = counts.get(bucket, SentimentCounts())
    if current.negative < config.min_negative:
        return []
    history = [bucket - timedelta(days=i) for i in range(1, config.window_days + 1)]
    history = [b for b in history if b >= first_bucket]
    if len(history) < config.min_baseline_days:
        return []
    fired = []
    negatives = [float(counts.get(b, SentimentCounts()).negative) for b in history]
    volume = robust_threshold(negatives, config.k, count_floor(statistics.median(negatives)))
    if volume and current.negative > volume.value:
        fired.append(("negative_volume", float(current.negative), volume))
    shares = [s for b in history if (s := _share(counts.get(b), config)) is not None]
    share_now = _share(current, config)
    if share_now is not None and len(shares) >= config.min_baseline_days:
        median = statistics.median(shares)
        share = robust_threshold(shares, config.k, share_floor(median, current.analysed))
        if share and share_now > share.value:
            fired.append(("negative_share", share_now, share))
    return fired


def _share(counts: SentimentCounts | None, config: AlertConfig) -> float | None:
    if counts is None or counts.analysed < config.min_volume:
        return None
    return counts.negative_share


def check_alerts(
    store: Store, now: datetime, *, zone: tzinfo | None = None, config: AlertConfig | None = None
) -> list[Alert]:
    """Detect spikes in the previous and the current bucket; store and return only new alerts."""
    config = config or AlertConfig()
    zone = zone or now.tzinfo or UTC
    first = store.scalar("SELECT min(created_at) FROM posts WHERE sentiment IS NOT NULL")
    if first is None:
        return []
    today = local_midnight(now, zone)
    start = today - timedelta(days=config.window_days + 1)
    daily = bucket_counts(store, start, now, zone)
    first_day = (
        parse_utc(first).astimezone(zone).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    )
    today_key = today.replace(tzinfo=None)
    hourly = choose_hourly(daily, first_day, today_key, config)
    if hourly:
        counts = bucket_counts(store, start, now, zone, hourly=True)
        current = now.astimezone(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        candidates = [current - timedelta(hours=1), current]
        first_bucket = (
            parse_utc(first).astimezone(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        )
    else:
        counts, candidates, first_bucket = daily, [today_key - timedelta(days=1), today_key], first_day
    new: list[Alert] = []
    for bucket in candidates:
        for metric, value, threshold in _evaluate(bucket, counts, first_bucket, config):
            alert = _make_alert(
                store,
                metric,
                bucket,
                "hour" if hourly else "day",
                value,
                threshold,
                counts[bucket],
                zone,
                config,
            )
            if _insert(store, alert):
                new.append(alert)
                log_event(
                    log,
                    "alert fired",
                    key=alert.dedupe_key,
                    value=round(value, 3),
                    threshold=round(threshold.value, 3),
                )
    return new


def _dedupe_key(metric: str, bucket: datetime, granularity: str) -> str:
    stamp = bucket.strftime("%Y-%m-%dT%H") if granularity == "hour" else bucket.strftime("%Y-%m-%d")
    return f"{ALERT_KIND}:{metric}:{stamp}"


def _make_alert(
    store: Store,
    metric: str,
    bucket: datetime,
    granularity: str,
    value: float,
    threshold: Threshold,
    counts: SentimentCounts,
    zone: tzinfo,
    config: AlertConfig,
) -> Alert:
    span = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    start = bucket.replace(tzinfo=zone)
    posts = negative_posts(store, start, start + span, config.top_posts)
    aspects = negative_aspects(store, start, start + span)
    payload = {
        "metric": metric,
        "bucket": bucket.isoformat(),
        "granularity": granularity,
        "value": value,
        "threshold": threshold.value,
        "median": threshold.median,
        "spread": threshold.spread,
        "k": threshold.k,
        "baseline_n": threshold.n,
        "negative": counts.negative,
        "analysed": counts.analysed,
        "aspects": aspects,
        "posts": posts,
        "post_ids": [p["id"] for p in posts],
    }
    alert = Alert(
        ALERT_KIND,
        metric,
        _dedupe_key(metric, bucket, granularity),
        bucket,
        granularity,
        value,
        threshold.value,
        threshold.median,
        "",
        payload,
    )
    alert.text_zh = alert_text(alert, config)
    alert.payload["text"] = alert.text_zh
    return alert


def _insert(store: Store, alert: Alert) -> bool:
    """Store the alert unless its dedupe key exists (INSERT OR IGNORE keeps racing checks safe)."""
    fired_at = utc_text(datetime.now(UTC))
    with store.transaction() as db:
        cursor = db.execute(
            "INSERT OR IGNORE INTO alerts (kind, dedupe_key, fired_at, payload) VALUES (?, ?, ?, ?)",
            [alert.kind, alert.dedupe_key, fired_at, dumps(alert.payload)],
        )
        if cursor.rowcount != 1:
            return False
        alert.id, alert.fired_at = cursor.lastrowid, fired_at
    return True


# -- what the alert quotes -----------------------------------------------------------------


def negative_posts(store: Store, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
    """The most negative posts in [start, end): id, text, score, negative aspects."""
    rows = store.query(
        """SELECT id, text, source, sentiment_score, aspects, created_at FROM posts
           WHERE created_at >= ? AND created_at < ? AND sentiment = 'negative'
           ORDER BY sentiment_score IS NULL, sentiment_score, id LIMIT ?""",
        [utc_text(start), utc_text(end), limit],
    )
    return [
        {
            "id": row["id"],
            "text": row["text"],
            "source": row["source"],
            "score": row["sentiment_score"],
            "created_at": row["created_at"],
            "aspects": post_aspects(row["aspects"]),
        }
        for row in rows
    ]


def post_aspects(raw: str | None) -> list[str]:
    """Aspect names of a post, negative ones first (that is what a marketer acts on), no repeats."""
    items = [a for a in loads(raw, []) if isinstance(a, dict) and a.get("aspect")]
    ordered = sorted(items, key=lambda a: a.get("polarity") != "negative")
    return list(dict.fromkeys(str(a["aspect"]) for a in ordered))


def negative_aspects(store: Store, start: datetime, end: datetime, top: int = 3) -> list[list[Any]]:
    """[[aspect, count]] of negative aspect mentions in negative posts, most frequent first."""
    counter: Counter[str] = Counter()
    for row in store.query(
        "SELECT aspects FROM posts WHERE created_at >= ? AND created_at < ? AND sentiment = 'negative'",
        [utc_text(start), utc_text(end)],
    ):
        for item in loads(row["aspects"], []):
            if isinstance(item, dict) and item.get("aspect") and item.get("polarity") == "negative":
                counter[str(item["aspect"])] += 1
    return [[name, n] for name, n in counter.most_common(top)]


def excerpt(text: str, limit: int) -> str:
    """One-line excerpt of user text, not yet escaped."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def quote(text: str, limit: int) -> str:
    """A user's words for Telegram HTML: flattened, truncated, then escaped (never the reverse)."""
    return "「" + html.escape(excerpt(text, limit), quote=False) + "」"


def bucket_label(bucket: datetime, granularity: str) -> str:
    day = f"{bucket.month}月{bucket.day}日"
    return f"{day} {bucket.hour:02d}:00–{bucket.hour + 1:02d}:00" if granularity == "hour" else day


def alert_text(alert: Alert, config: AlertConfig) -> str:
    p = alert.payload
    when = bucket_label(alert.bucket, alert.granularity)
    usual = f"近 {p['baseline_n']} {'天同一时段' if alert.granularity == 'hour' else '天'}"
    if alert.metric == "negative_volume":
        headline = (
            f"{when}负面声量 <b>{p['negative']} 条</b>，明显高于{usual}的常态"
            f"（中位数 {p['median']:.0f} 条，预警线 {p['threshold']:.1f} 条）。"
        )
    else:
        headline = (
            f"{when}负面占比 <b>{alert.value:.0%}</b>（{p['analysed']} 条中 {p['negative']} 条），"
            f"明显高于{usual}的常态（中位数 {p['median']:.0%}，预警线 {p['threshold']:.0%}）。"
        )
    lines = ["⚠️ <b>负面舆情预警</b>", headline]
    if p["aspects"]:
        lines.append("主要问题：" + "、".join(f"{html.escape(a)}（{n}）" for a, n in p["aspects"]))
    if p["posts"]:
        lines.append("最负面的帖子：")
        for i, post in enumerate(p["posts"], 1):
            tail = f" — {html.escape('、'.join(post['aspects']))}" if post["aspects"] else ""
            lines.append(f"{i}. {quote(post['text'], 80)}{tail}")
    lines.append("建议尽快查看并回应。")
    return "\n".join(lines)


# -- pending alerts and sending -----------------------------------------------------------------


def pending_alerts(store: Store, now: datetime, config: AlertConfig | None = None) -> list[Alert]:
    """Stored alerts not yet delivered, fired within max_age_h (retried by the next check)."""
    config = config or AlertConfig()
    since = utc_text(now - timedelta(hours=config.max_age_h))
    rows = store.query(
        "SELECT * FROM alerts WHERE kind = ? AND sent_at IS NULL AND fired_at >= ? ORDER BY id",
        [ALERT_KIND, since],
    )
    out = []
    for row in rows:
        p = loads(row["payload"], {})
        out.append(
            Alert(
                row["kind"],
                p.get("metric", ""),
                row["dedupe_key"],
                datetime.fromisoformat(p.get("bucket", "1970-01-01T00:00:00")),
                p.get("granularity", "day"),
                float(p.get("value", 0)),
                float(p.get("threshold", 0)),
                float(p.get("median", 0)),
                p.get("text", ""),
                p,
                row["id"],
                row["fired_at"],
            )
        )
    return out


async def send_alerts(
    notifier: Notifier,
    chat_ids: Iterable[int],
    alerts: Sequence[Alert],
    *,
    store: Store | None = None,
) -> list[Delivery]:
    """Each alert to each chat; with a store, chats that already got an alert are skipped and every
    delivery (and the first success as sent_at) is recorded."""
    results: list[Delivery] = []
    for alert in alerts:
        skip = (
            finished_chats(store.scalar("SELECT deliveries FROM alerts WHERE id = ?", [alert.id]))
            if store is not None and alert.id
            else set()
        )
        for chat_id in chat_ids:
            if chat_id in skip:
                continue
            fix = correction_buttons(alert.payload.get("post_ids", []))  # 判断有误 under the quoted posts
            delivery = await deliver(notifier, [Outgoing(chat_id, alert.text_zh, buttons=fix)])
            if delivery.status != "sent":
                log_event(
                    log,
                    "alert not delivered",
                    logging.WARNING,
                    chat_id=chat_id,
                    key=alert.dedupe_key,
                    status=delivery.status,
                    error=delivery.error,
                )
            if store is not None and alert.id:
                record_delivery(store, "alerts", alert.id, delivery)
            results.append(delivery)
    return results
