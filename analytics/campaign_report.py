"""Campaign effects from stored data: `estimate_campaign(store, campaign_id, now) -> CampaignReport`.

Who is compared: everyone assigned to the campaign (entry, broadcast plan or purchase rule), by arm,
as assigned — intent to treat. Users skipped after the plan (opted out since) stay in the treatment
arm; dropping them would compare a filtered treatment group with an unfiltered holdout.

Outcome per user, over the same clock for both arms: orders in the `attribution_days` after their
assignment (capped at `now`). Pre-period covariate for CUPED: their orders in the `pre_days` before
assignment. Money is in yuan. Incremental revenue is the Welch difference of mean revenue per user
× treated users; ROI uses the campaign's cost. Mentions: if the campaign tracks keywords and posts
cover at least two weeks before it started, CausalImpact on daily keyword mentions with the daily
volume of all other posts as the control series.

Every estimator that cannot run (no holdout, too few users, no posts …) leaves a Chinese note
instead of an error, so a report always comes back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from analytics.effects import (
    MIN_PRE_DAYS,
    Estimate,
    causal_impact,
    cuped_adjusted,
    holdout_difference,
    holdout_relative_lift,
    incremental_revenue_from_holdout,
    roi,
)
from commerce.campaigns import Campaign, CampaignRepository
from core.repos.coupons import iso_utc
from core.store import Store

PRE_DAYS = 56
MENTION_PRE_DAYS = 56
RECENT_DAYS = 30  # the scheduled job also re-estimates campaigns that ended this recently
ESTIMATE_ZH = {
    "holdout_difference": "转化率差（活动组 − 对照组）",
    "holdout_relative_lift": "转化率相对提升",
    "cuped_adjusted": "转化率差（CUPED 校正）",
    "incremental_revenue": "增量收入",
    "roi": "投资回报率",
    "causal_impact": "提及量变化（CausalImpact）",
}


@dataclass
class CampaignReport:
    campaign: Campaign
    computed_at: datetime
    counts: dict[str, Any]
    estimates: list[Estimate] = field(default_factory=list)
    notes_zh: list[str] = field(default_factory=list)

    def estimate(self, name: str) -> Estimate | None:
        return next((e for e in self.estimates if e.name == name), None)

    def sentences_zh(self) -> list[tuple[str, str]]:
        """(label, sentence) per estimate, for `campaign show`, the marketer bot and digests."""
        return [(ESTIMATE_ZH.get(e.name, e.name), e.sentence_zh) for e in self.estimates]

    def summary_zh(self) -> str:
        c = self.counts
        head = (
            f"「{self.campaign.name}」效果（截至 {self.computed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC）："
            f"活动组 {c['n_treat']} 人转化 {c['conv_treat']}，对照组 {c['n_ctrl']} 人转化 {c['conv_ctrl']}；"
            f"归因订单 {c['attributed_orders']} 笔（其中机器人内支付 {c.get('attributed_bot_orders', 0)} 笔），"
            f"¥{c['attributed_revenue_cents'] / 100:,.2f}"
        )
        lines = [head, *(f"• {label}：{text}" for label, text in self.sentences_zh())]
        lines += [f"（{note}）" for note in self.notes_zh]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign.slug,
            "computed_at": iso_utc(self.computed_at),
            "counts": self.counts,
            "estimates": [e.to_dict() for e in self.estimates],
            "notes_zh": self.notes_zh,
        }


def estimate_campaign(
    store: Store,
    campaign_id: int,
    now: datetime | None = None,
    *,
    zone: tzinfo = ZoneInfo("Asia/Shanghai"),
    pre_days: int = PRE_DAYS,
    n_draws: int = 2000,
    save: bool = False,
) -> CampaignReport:
    """Every estimate the stored data supports for one campaign; `save` keeps it for `campaign show`."""
    moment = now or datetime.now(UTC)
    repo = CampaignRepository(store)
    campaign = repo.get(campaign_id)
    if campaign is None:
        raise ValueError(f"没有 id 为 {campaign_id} 的活动")
    users = _per_user(store, campaign, moment, pre_days)
    stats = repo.stats(campaign_id)
    treat = users["arm"].eq("treatment").to_numpy().astype(int)
    conv = (users["orders_post"] > 0).to_numpy().astype(int)
    revenue = users["revenue_post_cents"].to_numpy(float) / 100.0
    counts = {
        "n_treat": int(treat.sum()),
        "n_ctrl": int((1 - treat).sum()),
        "conv_treat": int(conv[treat == 1].sum()),
        "conv_ctrl": int(conv[treat == 0].sum()),
        "revenue_treat_yuan": float(revenue[treat == 1].sum()),
        "revenue_ctrl_yuan": float(revenue[treat == 0].sum()),
        "sent": int(stats["send_status"].get("sent", 0)),
        "entrants": int(stats["entrants"]),
        "coupons_issued": int(stats["coupons_issued"]),
        "coupons_redeemed": int(stats["coupons_redeemed"]),
        "attributed_orders": int(stats["attributed_orders"]),
        "attributed_revenue_cents": int(stats["attributed_revenue_cents"] or 0),
        "attributed_bot_orders": int(stats.get("attributed_bot_orders") or 0),
        "attribution_days": campaign.attribution_days,
        "pre_days": pre_days,
    }
    report = CampaignReport(campaign, moment, counts)
    _holdout_estimates(report, treat, conv, revenue, users["orders_pre"].to_numpy(float))
    _mentions_estimate(report, store, campaign, moment, zone, n_draws)
    _withhold_unsupported(report)
    if save:
        repo.save_report(campaign_id, report.to_dict(), moment)
    return report


def _withhold_unsupported(report: CampaignReport) -> None:
    """Publish only estimates whose validity conditions hold; say why the others are withheld (issue 18)."""
    for est in [e for e in report.estimates if e.withheld]:
        report.notes_zh.append(f"{ESTIMATE_ZH.get(est.name, est.name)}：暂不给出，{est.reason_zh}")
    report.estimates = [e for e in report.estimates if not e.withheld]


def _per_user(store: Store, campaign: Campaign, now: datetime, pre_days: int) -> pd.DataFrame:
    rows = store.query(
        """SELECT a.user_id, a.arm,
                  coalesce(sum(o.id IS NOT NULL AND o.created_at >= a.assigned_at AND o.created_at <= :now
                               AND julianday(o.created_at) - julianday(a.assigned_at) <= :days), 0) AS orders_post,
                  coalesce(sum(CASE WHEN o.created_at >= a.assigned_at AND o.created_at <= :now
                                     AND julianday(o.created_at) - julianday(a.assigned_at) <= :days
                                    THEN o.total_cents ELSE 0 END), 0) AS revenue_post_cents,
                  coalesce(sum(o.id IS NOT NULL AND o.created_at < a.assigned_at
                               AND julianday(a.assigned_at) - julianday(o.created_at) <= :pre), 0) AS orders_pre
           FROM campaign_assignments a LEFT JOIN orders o ON o.user_id = a.user_id
                AND o.status NOT IN ('cancelled', 'refund_due', 'refunded')  -- bot payments not fulfilled
           WHERE a.campaign_id = :cid AND a.assigned_at <= :now
           GROUP BY a.user_id, a.arm ORDER BY a.user_id""",
        {"cid": campaign.campaign_id, "now": iso_utc(now), "days": campaign.attribution_days, "pre": pre_days},
    )
    return pd.DataFrame(rows, columns=["user_id", "arm", "orders_post", "revenue_post_cents", "orders_pre"])


def _zh(exc: Exception) -> str:
    """effects.py errors read '中文 / English': keep the Chinese half."""
    return str(exc).split(" / ", 1)[0]


def _holdout_estimates(
    report: CampaignReport, treat: np.ndarray, conv: np.ndarray, revenue: np.ndarray, y_pre: np.ndarray
) -> None:
    n_t, n_c = int(treat.sum()), int((1 - treat).sum())
    if n_t == 0 and n_c == 0:
        report.notes_zh.append("还没有用户进入这个活动，暂时无法评估效果")
        return
    if n_c == 0:
        report.notes_zh.append("这个活动没有对照组（对照比例为 0% 或对照组还没人），只能看归因数据，无法估计因果效果")
        return
    if n_t == 0:
        report.notes_zh.append("活动组还没有用户，暂时无法评估效果")
        return
    steps: list[tuple[str, Any]] = [
        ("holdout_difference", lambda: holdout_difference(
            treated_conversions=conv[treat == 1], holdout_conversions=conv[treat == 0])),
        ("holdout_relative_lift", lambda: holdout_relative_lift(
            treated_conversions=conv[treat == 1], holdout_conversions=conv[treat == 0])),
        ("cuped_adjusted", lambda: cuped_adjusted(outcome=conv, is_treated=treat, pre_period=y_pre)),
    ]
    for name, run in steps:
        try:
            report.estimates.append(run())
        except ValueError as exc:
            report.notes_zh.append(f"{ESTIMATE_ZH[name]}：{_zh(exc)}")
    try:
        incremental = incremental_revenue_from_holdout(
            treated_revenue=revenue[treat == 1], holdout_revenue=revenue[treat == 0], n_reached=n_t
        )
    except ValueError as exc:
        report.notes_zh.append(f"{ESTIMATE_ZH['incremental_revenue']}：{_zh(exc)}")
        return
    report.estimates.append(incremental)
    cost = report.campaign.cost_cents / 100.0
    if cost <= 0:
        report.notes_zh.append("活动成本为 0，不计算投资回报率（用 campaign update 填写成本）")
        return
    report.estimates.append(roi(incremental, cost))


def _mentions_estimate(
    report: CampaignReport, store: Store, campaign: Campaign, now: datetime, zone: tzinfo, n_draws: int
) -> None:
    if not campaign.keywords:
        return
    if not store.scalar("SELECT 1 FROM posts LIMIT 1"):
        report.notes_zh.append("还没有导入任何社交帖子，无法评估提及量")
        return
    start = campaign.starts_at or _parse(campaign.created_at) or now
    end = min(campaign.ends_at or now, now)
    post_start = pd.Timestamp(start).tz_convert(zone).normalize().tz_localize(None)
    post_end = pd.Timestamp(end).tz_convert(zone).normalize().tz_localize(None)
    if post_end < post_start:
        report.notes_zh.append("活动还没开始，暂不评估提及量")
        return
    window_start = post_start - pd.Timedelta(days=MENTION_PRE_DAYS)
    series = _daily_mentions(store, campaign.keywords, window_start, post_end, zone)
    if series.empty:
        report.notes_zh.append("活动前后都没有帖子，无法评估提及量")
        return
    first_day = series.index.min()
    pre_end = post_start - pd.Timedelta(days=1)
    if (pre_end - first_day).days + 1 < MIN_PRE_DAYS:
        report.notes_zh.append(f"活动开始前的帖子数据不足 {MIN_PRE_DAYS} 天，无法评估提及量变化")
        return
    if series["mentions"].sum() == 0:
        report.notes_zh.append(f"活动前后都没有提到 {'、'.join(campaign.keywords)} 的帖子")
        return
    days = pd.date_range(first_day, post_end, freq="D")
    y = series["mentions"].reindex(days, fill_value=0)
    control = series["others"].reindex(days, fill_value=0).rename("other_posts")
    try:
        estimate = causal_impact(y, pre_end, post_start, post_end, control, n_draws=n_draws, seed=0)
    except ValueError as exc:
        report.notes_zh.append(f"{ESTIMATE_ZH['causal_impact']}：{_zh(exc)}")
        return
    report.estimates.append(estimate)


def _daily_mentions(
    store: Store, keywords: list[str], first: pd.Timestamp, last: pd.Timestamp, zone: tzinfo
) -> pd.DataFrame:
    """Per local day: posts mentioning any keyword, and all other posts (the control series)."""
    # A day of margin on each side covers the time-zone shift; rows are re-bucketed by local day below.
    lo = iso_utc((first - pd.Timedelta(days=1)).to_pydatetime().replace(tzinfo=UTC))
    hi = iso_utc((last + pd.Timedelta(days=2)).to_pydatetime().replace(tzinfo=UTC))
    likes = " OR ".join(["(text LIKE ? ESCAPE '\\' OR text_norm LIKE ? ESCAPE '\\')"] * len(keywords))
    params: list[Any] = []
    for word in keywords:
        pattern = "%" + re.sub(r"([%_\\])", r"\\\1", word) + "%"
        params += [pattern, pattern]
    rows = store.query(
        f"SELECT created_at, ({likes}) AS hit FROM posts WHERE created_at >= ? AND created_at < ?",
        [*params, lo, hi],
    )
    if not rows:
        return pd.DataFrame(columns=["mentions", "others"])
    df = pd.DataFrame(rows)
    local = pd.to_datetime(df["created_at"], utc=True, format="ISO8601").dt.tz_convert(zone)
    df["day"] = local.dt.normalize().dt.tz_localize(None)
    df = df[(df["day"] >= first) & (df["day"] <= last)]
    out = df.groupby("day")["hit"].agg(mentions="sum", total="count")
    out["others"] = out["total"] - out["mentions"]
    return out[["mentions", "others"]].astype(float)


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
