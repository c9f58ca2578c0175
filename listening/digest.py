"""Daily / weekly listening digests for marketers (issue 7): a Chinese Telegram message plus a chart.

A digest is a list of sections. Each section is a small function `section(store, period) -> Section`
(title, Telegram-HTML lines, JSON-able data), so later issues add one (e.g. items to stock, a referral
funnel) with `add_section("weekly", fn)` without touching the others. The payload keeps every
section's numbers and the ids of every post shown, for the 判断有误 (wrong sentiment) buttons to come.

Periods are local calendar periods in the configured zone: a daily digest covers yesterday, a weekly
digest last Monday–Sunday, an ad-hoc digest the 24 hours before `now`; each is compared with the
period of the same length just before it.
"""

from __future__ import annotations

import html
import logging
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from core.clock import utc_text
from core.delivery import Delivery, deliver, finished_chats, record_delivery
from core.logging import log_event
from core.notify import Notifier, Outgoing
from core.repos.corrections import correction_buttons
from core.store import Store, dumps, loads
from listening.alerts import (
    AlertConfig,
    bucket_counts,
    excerpt,
    negative_posts,
    quote,
    robust_threshold,
    share_floor,
)
from listening.digest_period import KINDS, Period, Section, SectionFn, midnight, period_for
from listening.referral_digest import referral_section
from listening.stock_digest import stock_section
from nlp.text import normalize

log = logging.getLogger(__name__)

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
SENTIMENT_ZH = {"positive": "正面", "neutral": "中性", "negative": "负面"}


def _counts(store: Store, start: str, end: str) -> dict[str, int]:
    rows = store.query(
        """SELECT coalesce(sentiment, 'unanalysed') AS s, count(*) AS n FROM posts
           WHERE created_at >= ? AND created_at < ? GROUP BY s""",
        [start, end],
    )
    out = {"positive": 0, "neutral": 0, "negative": 0, "unanalysed": 0}
    out.update({row["s"]: row["n"] for row in rows})
    return out


def _shares(counts: dict[str, int]) -> dict[str, float | None]:
    analysed = sum(counts[s] for s in SENTIMENT_ZH)
    return {s: (counts[s] / analysed if analysed else None) for s in SENTIMENT_ZH}


def pct_change(now: float, before: float) -> float | None:
    return (now - before) / before * 100 if before else None


def _points(share: float | None, before: float | None) -> float | None:
    """Change of a share in percentage points (None when either period has no analysed posts)."""
    return (share - before) * 100 if share is not None and before is not None else None


def _signed(value: float, digits: int = 1) -> str:
    return f"{value:+.{digits}f}"


def overview_section(store: Store, period: Period) -> Section:
    """概览: volume, sentiment shares, change vs the previous period (% and percentage points)."""
    now = _counts(store, period.start_utc, period.end_utc)
    before = _counts(store, utc_text(period.prev_start), utc_text(period.prev_end))
    volume, prev_volume = sum(now.values()), sum(before.values())
    shares, prev_shares = _shares(now), _shares(before)
    change = pct_change(volume, prev_volume)
    pp = {s: _points(shares[s], prev_shares[s]) for s in SENTIMENT_ZH}
    vs = period.versus_zh
    if change is not None:
        volume_line = f"声量 <b>{volume}</b> 条（{vs} {_signed(change)}%，上期 {prev_volume} 条）"
    else:
        volume_line = f"声量 <b>{volume}</b> 条（上期没有帖子，无法比较）"
    parts = []
    for s, name in SENTIMENT_ZH.items():
        share, points = shares[s], pp[s]
        if share is None:
            continue
        value = f"<b>{share * 100:.1f}%</b>" if s == "negative" else f"{share * 100:.1f}%"
        delta = f"（{_signed(points)}个百分点）" if points is not None else ""
        parts.append(f"{name} {value}{delta}")
    lines = [volume_line]
    lines.append("｜".join(parts) if parts else "本期还没有完成情感分析的帖子。")
    if now["unanalysed"]:
        lines.append(f"另有 {now['unanalysed']} 条尚未分析情感，未计入占比。")
    data = {
        "volume": volume,
        "prev_volume": prev_volume,
        "change_pct": change,
        "counts": now,
        "prev_counts": before,
        "shares": shares,
        "prev_shares": prev_shares,
        "change_pp": pp,
    }
    return Section("overview", "概览", lines, data)


def _keyword_norm(text: str) -> str:
    return normalize(text).casefold()


def tracked_keywords(store: Store, period: Period) -> list[tuple[str, str]]:
    """(keyword, source) for share of voice: configured brands, then active campaigns' keywords."""
    out: dict[str, tuple[str, str]] = {}
    for brand in period.tracked_brands:
        if brand.strip():
            out.setdefault(_keyword_norm(brand.strip()), (brand.strip(), "brand"))
    for campaign in active_campaigns(store, period.now):
        for word in campaign["keywords"]:
            if str(word).strip():
                out.setdefault(_keyword_norm(str(word).strip()), (str(word).strip(), "campaign"))
    return list(out.values())


def _mentions(rows: Sequence[dict[str, Any]], keyword: str) -> list[dict[str, Any]]:
    needle = _keyword_norm(keyword)
    return [row for row in rows if needle in row["haystack"]]


def _haystacks(store: Store, start: str, end: str) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT id, text, text_norm, sentiment FROM posts WHERE created_at >= ? AND created_at < ?",
        [start, end],
    )
    for row in rows:
        # text_norm is already NFKC + Simplified; older rows without it are normalised here.
        row["haystack"] = (row["text_norm"] or normalize(row["text"])).casefold()
    return rows


def share_of_voice_section(store: Store, period: Period) -> Section:
    """声量份额: posts mentioning each tracked brand / campaign keyword (normalised, case-folded)."""
    keywords = tracked_keywords(store, period)
    if not keywords:
        return Section(
            "share_of_voice",
            "声量份额",
            ["尚未设置跟踪关键词：请配置 XIANKE_TRACKED_BRANDS（竞品品牌）或为活动填写关键词。"],
            {"keywords": [], "total": 0, "prev_total": 0},
        )
    rows = _haystacks(store, period.start_utc, period.end_utc)
    prev_rows = _haystacks(store, utc_text(period.prev_start), utc_text(period.prev_end))
    items = []
    for keyword, source in keywords:
        hits, prev_hits = _mentions(rows, keyword), _mentions(prev_rows, keyword)
        items.append(
            {
                "keyword": keyword,
                "source": source,
                "mentions": len(hits),
                "prev_mentions": len(prev_hits),
                "negative": sum(h["sentiment"] == "negative" for h in hits),
                "post_ids": [h["id"] for h in hits[:50]],
            }
        )
    total = sum(i["mentions"] for i in items)
    prev_total = sum(i["prev_mentions"] for i in items)
    for item in items:
        item["share"] = item["mentions"] / total if total else None
        item["prev_share"] = item["prev_mentions"] / prev_total if prev_total else None
    items.sort(key=lambda i: (-i["mentions"], i["keyword"]))
    lines = [
        f"共 {total} 次提及（{period.versus_zh} {_signed(pct_change(total, prev_total) or 0)}%）"
        if prev_total
        else f"共 {total} 次提及"
    ]
    for item in items:
        name = html.escape(item["keyword"]) + ("（活动）" if item["source"] == "campaign" else "")
        line = f"• {name}：{item['mentions']} 次"
        if item["share"] is not None and (item["mentions"] or item["prev_mentions"]):
            line += f"，占 {item['share'] * 100:.1f}%"
            if item["prev_share"] is not None:
                line += f"（{_signed((item['share'] - item['prev_share']) * 100)}个百分点）"
        if item["mentions"]:
            line += f"，负面 {item['negative'] / item['mentions'] * 100:.0f}%"
        lines.append(line)
    return Section(
        "share_of_voice", "声量份额", lines, {"keywords": items, "total": total, "prev_total": prev_total}
    )


def topics_section(store: Store, period: Period, *, top: int = 5, examples: int = 2) -> Section:
    """热门话题: topics with most posts in the period, each with 1–2 example posts from the period."""
    rows = store.query(
        """SELECT p.topic_id, t.label, t.emerging, t.examples, count(*) AS n,
                  sum(p.sentiment = 'negative') AS negative
           FROM posts p JOIN topics t ON t.id = p.topic_id
           WHERE p.created_at >= ? AND p.created_at < ?
           GROUP BY p.topic_id ORDER BY n DESC, p.topic_id LIMIT ?""",
        [period.start_utc, period.end_utc, top],
    )
    if not rows:
        return Section(
            "topics", "热门话题", ["本期帖子还没有归入话题（话题任务每几小时运行一次）。"], {"topics": []}
        )
    lines, topics = [], []
    for i, row in enumerate(rows, 1):
        chosen = _topic_examples(store, period, row["topic_id"], loads(row["examples"], []), examples)
        flag = " 🆕新兴" if row["emerging"] else ""
        negative = row["negative"] or 0
        lines.append(
            f"{i}. <b>{html.escape(row['label'])}</b>（{row['n']} 条，负面 "
            f"{negative / row['n'] * 100:.0f}%）{flag}"
        )
        lines.extend(f"   {quote(post['text'], 50)}" for post in chosen)
        topics.append(
            {
                "topic_id": row["topic_id"],
                "label": row["label"],
                "posts": row["n"],
                "negative": negative,
                "emerging": bool(row["emerging"]),
                "post_ids": [post["id"] for post in chosen],
            }
        )
    return Section("topics", "热门话题", lines, {"topics": topics})


def _topic_examples(store: Store, period: Period, topic_id: int, stored: list[Any], n: int) -> list[dict]:
    # The topic job's representative posts first (closest to the centroid), if they are in this period;
    # then the most recent posts of the topic in the period.
    ids = [e["post_id"] for e in stored if isinstance(e, dict) and "post_id" in e]
    rows = store.query(
        f"""SELECT id, text FROM posts WHERE topic_id = ? AND created_at >= ? AND created_at < ?
            AND id IN ({",".join("?" * len(ids)) or "NULL"})""",
        [topic_id, period.start_utc, period.end_utc, *ids],
    )
    by_id = {row["id"]: row for row in rows}
    chosen = [by_id[i] for i in ids if i in by_id][:n]
    if len(chosen) < n:
        # NOT IN (NULL) would match nothing, hence the dummy id 0 when nothing is chosen yet.
        chosen += store.query(
            f"""SELECT id, text FROM posts WHERE topic_id = ? AND created_at >= ? AND created_at < ?
                AND id NOT IN ({",".join("?" * len(chosen)) or "0"}) ORDER BY created_at DESC, id LIMIT ?""",
            [topic_id, period.start_utc, period.end_utc, *[c["id"] for c in chosen], n - len(chosen)],
        )
    return chosen


def most_negative_section(store: Store, period: Period, *, top: int = 5) -> Section:
    """最负面: the posts with the lowest sentiment score, with their (negative first) aspects."""
    posts = negative_posts(store, period.start, period.end, top)
    if not posts:
        return Section("most_negative", "最负面", ["本期没有负面帖子。"], {"posts": []})
    lines = []
    for i, post in enumerate(posts, 1):
        notes = [f"情感分 {post['score']:.2f}"] if post["score"] is not None else []
        if post["aspects"]:
            notes.append(html.escape("、".join(post["aspects"])))
        lines.append(
            f"{i}. {quote(post['text'], 60)}（{' · '.join(notes)}）"
            if notes
            else f"{i}. {quote(post['text'], 60)}"
        )
    data = [
        {"id": p["id"], "score": p["score"], "aspects": p["aspects"], "excerpt": excerpt(p["text"], 60)}
        for p in posts
    ]
    return Section("most_negative", "最负面", lines, {"posts": data})


# -- campaigns (adapter over commerce.campaigns / analytics.campaign_report) -------------------------------


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def active_campaigns(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Campaigns running at `now` as {id, name, keywords}: CampaignRepository.active when it exists,
    else the same rule on the campaigns table (no start or started, no end or not yet ended)."""
    try:
        from commerce.campaigns import CampaignRepository
    except ImportError:
        found: list[Any] = [
            row
            for row in store.query("SELECT * FROM campaigns ORDER BY id")
            if ((start := _parse_time(row["starts_at"])) is None or start <= now)
            and ((end := _parse_time(row["ends_at"])) is None or end >= now)
        ]
    else:
        found = list(CampaignRepository(store).active(now))
    out = []
    for campaign in found:
        keywords = _get(campaign, "keywords", [])
        if isinstance(keywords, str):
            keywords = loads(keywords, [])
        out.append(
            {
                "id": _get(campaign, "id"),
                "name": _get(campaign, "name") or _get(campaign, "slug", ""),
                "keywords": list(keywords or []),
            }
        )
    return out


Estimator = Callable[[Store, int, datetime], Any]


def _default_estimator() -> Estimator | None:
    try:
        from analytics.campaign_report import estimate_campaign
    except ImportError:
        return None
    return estimate_campaign


def report_estimates(report: Any) -> list[Any]:
    """The Estimate-like values of a CampaignReport (anything with a sentence_zh), in field order."""
    if report is None:
        return []
    values = list(vars(report).values()) if hasattr(report, "__dict__") else list(report)
    out: list[Any] = []
    for value in values:
        items = value if isinstance(value, list | tuple) else [value]
        out.extend(item for item in items if getattr(item, "sentence_zh", ""))
    return out


def make_campaigns_section(estimate: Estimator | None = None) -> SectionFn:
    """活动效果 with a given estimator (tests pass a stub); default: analytics.campaign_report.estimate_campaign."""

    def campaigns_section(store: Store, period: Period) -> Section:
        campaigns = active_campaigns(store, period.now)
        if not campaigns:
            return Section("campaigns", "活动效果", ["目前没有进行中的活动。"], {"campaigns": []})
        estimator = estimate or _default_estimator()
        lines, data = [], []
        for campaign in campaigns:
            lines.append(f"<b>{html.escape(str(campaign['name']))}</b>")
            entry: dict[str, Any] = {"id": campaign["id"], "name": campaign["name"], "estimates": []}
            if estimator is None:
                lines.append("   效果评估模块尚未启用。")
            else:
                try:
                    estimates = report_estimates(estimator(store, campaign["id"], period.now))
                except Exception as exc:  # one campaign's missing data must not sink the whole digest
                    log_event(
                        log,
                        "campaign estimate failed",
                        logging.WARNING,
                        campaign=campaign["id"],
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    estimates, entry["error"] = [], str(exc)[:300]
                    lines.append("   暂时无法评估（数据不足或配置不完整）。")
                if not estimates and "error" not in entry:
                    lines.append("   数据还不足以评估效果，请继续观察。")
                for est in estimates:
                    lines.append(f"   • {html.escape(est.sentence_zh)}")
                    entry["estimates"].append(_estimate_data(est))
            data.append(entry)
        return Section("campaigns", "活动效果", lines, {"campaigns": data})

    return campaigns_section


def _estimate_data(est: Any) -> dict[str, Any]:
    if hasattr(est, "to_dict"):
        return {k: v for k, v in est.to_dict().items() if k != "extra"}
    return {k: _get(est, k) for k in ("name", "effect", "low", "high", "unit", "sentence_zh")}


campaigns_section = make_campaigns_section()

_BASE_SECTIONS: tuple[SectionFn, ...] = (
    overview_section,
    share_of_voice_section,
    topics_section,
    most_negative_section,
    campaigns_section,
)
# Per kind, in order. Later issues append (e.g. SECTIONS["weekly"] gains items to stock).
SECTIONS: dict[str, list[SectionFn]] = {kind: list(_BASE_SECTIONS) for kind in KINDS}


def add_section(kind: str, section: SectionFn, *, before: SectionFn | None = None) -> None:
    sections = SECTIONS[kind]
    if section in sections:
        return
    sections.insert(sections.index(before) if before in sections else len(sections), section)


add_section("weekly", stock_section)


# Before the campaign section, which stays last in the daily digest (tests and readers expect it there).
add_section("weekly", referral_section, before=campaigns_section)
add_section("daily", referral_section, before=campaigns_section)


def checkout_section(store: Store, period: Any) -> Section | None:
    """下单转化 (issue 14): view → add to cart → checkout → paid, bot orders next to imported ones."""
    from listening.checkout_digest import checkout_section as funnel_section  # imported when a digest runs

    return funnel_section(store, period)


add_section("weekly", checkout_section, before=campaigns_section)
add_section("daily", checkout_section, before=campaigns_section)


# -- rendering ----------------------------------------------------------------------------------


@dataclass
class Digest:
    kind: str
    period: Period
    sections: list[Section]
    text_zh: str  # Telegram HTML, ≤ 4096 characters
    text_plain: str  # for the terminal: every line, no tags
    caption_zh: str  # photo caption, ≤ 1024 characters
    chart_path: Path | None
    payload: dict[str, Any]
    id: int | None = None


def telegram_length(text: str) -> int:
    # Telegram counts UTF-16 code units; measuring the raw HTML (tags included) errs on the safe side.
    return len(text.encode("utf-16-le")) // 2


def _title(period: Period) -> str:
    name = {"daily": "鲜课舆情日报", "weekly": "鲜课舆情周报"}.get(period.kind, "鲜课舆情速报")
    return f"{name}｜{period.label_zh}"


def render_html(period: Period, sections: Sequence[Section], limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    """Header + sections; when too long, drop the last lines of the longest sections first."""
    kept = [list(s.lines) for s in sections]
    cut = [False] * len(sections)

    def text() -> str:
        blocks = [f"📊 <b>{html.escape(_title(period))}</b>"]
        for section, lines, was_cut in zip(sections, kept, cut, strict=True):
            body = lines + (["……（更多内容见终端命令 xianke digest）"] if was_cut else [])
            blocks.append("\n".join([f"<b>【{html.escape(section.title)}】</b>", *body]))
        return "\n\n".join(blocks)

    rendered = text()
    while telegram_length(rendered) > limit:
        longest = max(range(len(kept)), key=lambda i: (len(kept[i]), i))
        if len(kept[longest]) <= 1:
            return rendered[: limit - 1] + "…"  # pathological: one huge line per section
        kept[longest].pop()
        cut[longest] = True
        rendered = text()
    return rendered


_TAG = re.compile(r"<[^>]+>")


def html_to_plain(text: str) -> str:
    # Only our own tags exist: user text was escaped, so its "<" is "&lt;" and survives this.
    return html.unescape(_TAG.sub("", text))


def _caption(period: Period, sections: Sequence[Section]) -> str:
    overview = next((s for s in sections if s.key == "overview"), None)
    parts = [f"📊 <b>{html.escape(_title(period))}</b>"]
    if overview is not None:
        d = overview.data
        summary = f"声量 {d['volume']} 条"
        if d["change_pct"] is not None:
            summary += f"（{_signed(d['change_pct'])}%）"
        if d["shares"]["negative"] is not None:
            summary += f"，负面 {d['shares']['negative'] * 100:.1f}%"
            if d["change_pp"]["negative"] is not None:
                summary += f"（{_signed(d['change_pp']['negative'])}个百分点）"
        parts.append(summary + "。")
    parts.append("详细内容见下一条消息。")
    return "\n".join(parts)[:TELEGRAM_CAPTION_LIMIT]


# -- chart data ---------------------------------------------------------------------------------


def chart_data(store: Store, period: Period, sections: Sequence[Section], config: AlertConfig) -> Any:
    from core.charts import ChartData, DayPoint

    trend_days = 56 if period.kind == "weekly" else 28
    last = period.last_day
    first = last - timedelta(days=trend_days - 1)
    counts = bucket_counts(
        store,
        midnight(first - timedelta(days=config.window_days), period.zone),
        midnight(last + timedelta(days=1), period.zone),
        period.zone,
    )
    by_day = {key.date(): c for key, c in counts.items()}
    points = []
    for i in range(trend_days):
        day = first + timedelta(days=i)
        c = by_day.get(day)
        point = DayPoint(day, c.positive, c.neutral, c.negative, c.unanalysed) if c else DayPoint(day)
        history = [by_day.get(day - timedelta(days=j)) for j in range(1, config.window_days + 1)]
        shares = [h.negative_share for h in history if h is not None and h.analysed >= config.min_volume]
        if len(shares) >= config.min_baseline_days:
            n = c.analysed if c else config.min_volume
            median = statistics.median(shares)
            threshold = robust_threshold(shares, config.k, share_floor(median, max(n, config.min_volume)))
            point.threshold_share = min(threshold.value, 1.0) if threshold is not None else None
        points.append(point)
    # A young database: start the trend at the first day with posts rather than weeks of empty bars.
    while len(points) > 1 and points[0].day < period.first_day and not _has_posts(points[0]):
        points.pop(0)
    data = {s.key: s.data for s in sections}
    sov = [(i["keyword"], i["mentions"]) for i in data.get("share_of_voice", {}).get("keywords", [])][:8]
    topics = [(t["label"], t["posts"], t["negative"]) for t in data.get("topics", {}).get("topics", [])]
    return ChartData(_title(period), points, period.first_day, last, sov, topics)


def _has_posts(point: Any) -> bool:
    return bool(point.positive or point.neutral or point.negative or point.unanalysed)


# -- building, storing, sending ----------------------------------------------------------------------


def build_digest(
    store: Store,
    kind: str,
    now: datetime,
    zone: tzinfo,
    *,
    charts_dir: Path | None = None,
    tracked_brands: Iterable[str] = (),
    sections: Sequence[SectionFn] | None = None,
    alert_config: AlertConfig | None = None,
) -> Digest:
    """Build (not store, not send) the digest of `kind` for the period before `now`; draws the chart
    into `charts_dir` when given."""
    period = period_for(kind, now, zone, tracked_brands)
    built = [s for fn in (sections if sections is not None else SECTIONS[kind]) if (s := fn(store, period))]
    text_zh = render_html(period, built)
    text_plain = html_to_plain(render_html(period, built, limit=10**9))
    chart_path = None
    if charts_dir is not None:
        from core.charts import digest_chart

        stamp = period.start.strftime("%Y%m%d") + (period.end.strftime("-%H%M") if kind == "adhoc" else "")
        chart_path = digest_chart(
            chart_data(store, period, built, alert_config or AlertConfig()),
            Path(charts_dir) / f"digest-{kind}-{stamp}.png",
        )
    payload = {
        "version": 1,
        "kind": kind,
        "period": {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "prev_start": period.prev_start.isoformat(),
            "prev_end": period.prev_end.isoformat(),
        },
        "sections": {s.key: s.data for s in built},
        "post_ids": _post_ids(built),
    }
    return Digest(kind, period, built, text_zh, text_plain, _caption(period, built), chart_path, payload)


def _post_ids(sections: Sequence[Section]) -> dict[str, list[int]]:
    """Every post shown in the message, by section: what a 判断有误 button will point at."""
    out: dict[str, list[int]] = {}
    for section in sections:
        ids: list[int] = []
        for item in section.data.get("posts", []) + section.data.get("topics", []):
            ids.extend([item["id"]] if "id" in item else item.get("post_ids", []))
        if ids:
            out[section.key] = ids
    return out


def record_digest(store: Store, digest: Digest) -> int:
    """Store the digest; a scheduled digest already stored for its period keeps its row (and, once
    sent, its text: what marketers received stays on record)."""
    fields = {
        "text": digest.text_zh,
        "chart_path": str(digest.chart_path) if digest.chart_path else None,
        "payload": dumps(digest.payload),
    }
    start, end = utc_text(digest.period.start), utc_text(digest.period.end)
    with store.transaction() as db:
        if digest.kind != "adhoc":
            row = db.execute(
                "SELECT id, sent_at FROM digests WHERE kind = ? AND period_start = ? AND period_end = ?",
                [digest.kind, start, end],
            ).fetchone()
            if row is not None:
                if row[1] is None:
                    db["digests"].update(row[0], fields)
                digest.id = int(row[0])
                return digest.id
        digest.id = int(
            db["digests"]
            .insert({"kind": digest.kind, "period_start": start, "period_end": end, **fields})
            .last_pk
        )
    return digest.id


def delivered_chats(store: Store, kind: str, period: Period) -> set[int]:
    """Chats that already got the scheduled digest for this period (or blocked the bot)."""
    return finished_chats(
        store.scalar(
            "SELECT deliveries FROM digests WHERE kind = ? AND period_start = ? AND period_end = ?",
            [kind, utc_text(period.start), utc_text(period.end)],
        )
    )


def digest_messages(chat_id: int, digest: Digest) -> list[Outgoing]:
    """The chart as a photo with a short caption, then the full text."""
    messages = []
    if digest.chart_path is not None and Path(digest.chart_path).is_file():
        messages.append(Outgoing(chat_id, digest.caption_zh, photo=Path(digest.chart_path)))
    # 判断有误 under the most negative posts: a marketer's correction becomes training data.
    negative = digest.payload.get("post_ids", {}).get("most_negative", [])
    messages.append(Outgoing(chat_id, digest.text_zh, buttons=correction_buttons(negative, label="最负面{n} 判断有误")))
    return messages


async def send_digest(
    notifier: Notifier, chat_ids: Iterable[int], digest: Digest, *, store: Store
) -> list[Delivery]:
    """Send to every chat that has not had this digest yet, once each (core.delivery); a chat that
    fails is recorded and skipped, the others still get it. Returns this call's deliveries."""
    if digest.id is None:
        record_digest(store, digest)
    assert digest.id is not None
    done = finished_chats(store.scalar("SELECT deliveries FROM digests WHERE id = ?", [digest.id]))
    results = []
    for chat_id in chat_ids:
        if chat_id in done:
            continue
        delivery = await deliver(notifier, digest_messages(chat_id, digest))
        record_delivery(store, "digests", digest.id, delivery)
        if delivery.status != "sent":
            log_event(
                log,
                "digest not delivered",
                logging.WARNING,
                chat_id=chat_id,
                digest=digest.id,
                status=delivery.status,
                error=delivery.error,
            )
        results.append(delivery)
        done.add(chat_id)
    return results


# -- the scheduled jobs ------------------------------------------------------------------------------


def tracked_brands(settings: Any) -> list[str]:
    """XIANKE_TRACKED_BRANDS as a list (accepts a list or "盒马,叮咚买菜")."""
    value = getattr(settings, "tracked_brands", None) or []
    if isinstance(value, str):
        value = re.split(r"[,，、\n]+", value)
    return [str(v).strip() for v in value if str(v).strip()]


def build_for_settings(store: Store, settings: Any, kind: str, now: datetime | None = None) -> Digest:
    now = now or datetime.now(settings.zone)
    return build_digest(
        store,
        kind,
        now,
        settings.zone,
        charts_dir=Path(settings.data_dir) / "charts",
        tracked_brands=tracked_brands(settings),
        alert_config=AlertConfig.from_settings(settings),
    )
