"""User segments: RFM + behaviour features, KMeans clusters with readable Chinese names, rule filters.

Features per user (orders from the shop import, likes from the bot's event log):
  recency_days   days since the last order (capped at the window for people who never ordered)
  frequency      orders in the window (default one year)
  monetary_yuan  spend in the window
  course_share   share of course lines among purchased lines; kit_share the same for kits + ingredients
  likes          like events in the window
Clustering runs on log1p of the counts and amounts, standardised, with a fixed seed, so the same data
always gives the same segments. Clusters are named from their centroid profile: each archetype
(高价值常客, 课程党, 食材党, 沉睡用户, 潜在用户, 活跃新客, 普通用户) scores every centroid and a one-to-one
assignment maximises the total score, so two clusters never share a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from commerce.campaigns import SegmentRule
from core.repos.coupons import iso_utc
from core.store import Store, loads

DEFAULT_K = 5
DEFAULT_SEED = 7
WINDOW_DAYS = 365
CLUSTER_FEATURES = ("recency_days", "frequency", "monetary_yuan", "course_share", "kit_share", "likes")
_LOGGED = ("recency_days", "frequency", "monetary_yuan", "likes")

# Archetype → score of a standardised centroid z (a Series over CLUSTER_FEATURES plus `bought`, the
# share of the cluster that ever ordered). Higher means "this name fits this cluster better".
Score = Callable[[pd.Series], float]
ARCHETYPES: dict[str, Score] = {
    "高价值常客": lambda z: z["frequency"] + z["monetary_yuan"] - 0.5 * z["recency_days"],
    "课程党": lambda z: 1.5 * z["course_share"] - 0.5 * z["kit_share"] + 0.5 * z["bought"],
    "食材党": lambda z: 1.5 * z["kit_share"] - 0.5 * z["course_share"] + 0.5 * z["bought"],
    "沉睡用户": lambda z: z["recency_days"] + 1.5 * z["bought"] - z["frequency"] - 0.5 * z["likes"],
    "潜在用户": lambda z: 1.5 * (1 - z["bought"]) + z["likes"],
    "活跃新客": lambda z: -z["recency_days"] - 0.5 * z["frequency"],
    "普通用户": lambda z: 0.0,
}


@dataclass(frozen=True)
class Segment:
    name: str
    size: int
    profile: dict[str, float]  # mean recency days, orders, spend (¥), course/kit share, likes, share who ever bought
    user_ids: tuple[int, ...] = field(repr=False)

    def describe_zh(self) -> str:
        p = self.profile
        recency = "从未下单" if p["bought"] == 0 else f"平均 {p['recency_days']:.0f} 天前下过单"
        return (
            f"{recency} · 年均 {p['frequency']:.1f} 单 · 人均消费 ¥{p['monetary_yuan']:,.0f} · "
            f"课程占比 {p['course_share']:.0%} · 食材占比 {p['kit_share']:.0%} · 人均点赞 {p['likes']:.1f}"
        )


@dataclass(frozen=True)
class Segmentation:
    segments: list[Segment]
    labels: dict[int, str]  # user id → segment name
    features: pd.DataFrame = field(repr=False)

    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    def get(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)


def user_features(store: Store, now: datetime, *, window_days: int = WINDOW_DAYS) -> pd.DataFrame:
    """One row per user (index user_id): clustering features plus what rule filters need."""
    since = iso_utc(now - timedelta(days=window_days))
    users = pd.DataFrame(
        store.query(
            "SELECT id AS user_id, language, profile, opted_out, blocked_bot, banned, created_at FROM users ORDER BY id"
        ),
        columns=["user_id", "language", "profile", "opted_out", "blocked_bot", "banned", "created_at"],
    ).set_index("user_id")
    orders = _frame(
        store.query(
            """SELECT user_id, count(*) AS orders_all, sum(total_cents) AS spend_all_cents, max(created_at) AS last_order,
                      sum(created_at >= :since) AS frequency,
                      sum(CASE WHEN created_at >= :since THEN total_cents ELSE 0 END) AS spend_cents
               FROM orders WHERE user_id IS NOT NULL GROUP BY user_id""",
            {"since": since},
        ),
        ["orders_all", "spend_all_cents", "last_order", "frequency", "spend_cents"],
    )
    lines = _frame(
        store.query(
            """SELECT o.user_id,
                      sum(i.item_slug LIKE 'course/%') AS course_lines,
                      sum(i.item_slug LIKE 'kit/%' OR i.item_slug LIKE 'ingredient/%') AS kit_lines,
                      count(*) AS all_lines,
                      max(i.item_slug LIKE 'course/%') AS bought_course,
                      max(i.item_slug LIKE 'kit/%') AS bought_kit,
                      max(i.item_slug LIKE 'ingredient/%') AS bought_ingredient
               FROM orders o JOIN order_items i ON i.order_id = o.id
               WHERE o.user_id IS NOT NULL GROUP BY o.user_id""",
        ),
        ["course_lines", "kit_lines", "all_lines", "bought_course", "bought_kit", "bought_ingredient"],
    )
    events = _frame(
        store.query(
            """SELECT user_id, sum(kind = 'like' AND created_at >= :since) AS likes, max(created_at) AS last_event
               FROM events WHERE user_id IS NOT NULL GROUP BY user_id""",
            {"since": since},
        ),
        ["likes", "last_event"],
    )
    df = users.join(orders).join(lines).join(events)
    counts = ["orders_all", "spend_all_cents", "frequency", "spend_cents", "course_lines", "kit_lines", "all_lines",
              "bought_course", "bought_kit", "bought_ingredient", "likes"]
    df[counts] = df[counts].fillna(0).astype(float)
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    last_order = pd.to_datetime(df["last_order"], utc=True, format="ISO8601")
    df["recency_days"] = ((now_ts - last_order).dt.total_seconds() / 86400).clip(lower=0).fillna(window_days)
    df["recency_days"] = df["recency_days"].clip(upper=window_days)
    df["monetary_yuan"] = df["spend_cents"] / 100.0
    has_lines = df["all_lines"] > 0
    df["course_share"] = np.where(has_lines, df["course_lines"] / df["all_lines"].where(has_lines, 1), 0.0)
    df["kit_share"] = np.where(has_lines, df["kit_lines"] / df["all_lines"].where(has_lines, 1), 0.0)
    df["bought"] = (df["orders_all"] > 0).astype(float)
    activity = pd.concat(
        [pd.to_datetime(df[c], utc=True, format="ISO8601") for c in ("last_order", "last_event", "created_at")], axis=1
    )
    df["last_active"] = activity.max(axis=1)
    df["diet"] = [tuple((loads(p, {}) or {}).get("diet") or ()) for p in df["profile"]]
    return df.drop(columns=["profile"])


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", *columns]).set_index("user_id")


def segment_users(
    store: Store,
    now: datetime | None = None,
    *,
    k: int = DEFAULT_K,
    seed: int = DEFAULT_SEED,
    window_days: int = WINDOW_DAYS,
    features: pd.DataFrame | None = None,
) -> Segmentation:
    """KMeans segments of every user who is not banned, named from their centroid profiles."""
    from sklearn.cluster import KMeans  # imported here: `xianke --help` and the bot need not load sklearn

    moment = now or datetime.now(UTC)
    df = features if features is not None else user_features(store, moment, window_days=window_days)
    df = df[df["banned"] == 0]
    if df.empty:
        return Segmentation([], {}, df)
    X = _design(df)
    distinct = len(np.unique(X.round(9), axis=0))
    k = max(1, min(k, distinct))
    if k == 1:
        labels = np.zeros(len(df), dtype=int)
    else:
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    names = _name_clusters(X, df["bought"].to_numpy(), labels, k)
    segments = []
    for cluster in range(k):
        members = df[labels == cluster]
        profile = {c: float(members[c].mean()) for c in (*CLUSTER_FEATURES, "bought")}
        segments.append(Segment(names[cluster], len(members), profile, tuple(int(u) for u in members.index)))
    segments.sort(key=lambda s: (-s.size, s.name))
    label_of = {int(u): names[c] for u, c in zip(df.index, labels, strict=True)}
    return Segmentation(segments, label_of, df)


def _design(df: pd.DataFrame) -> np.ndarray:
    cols = [np.log1p(df[c].to_numpy(float)) if c in _LOGGED else df[c].to_numpy(float) for c in CLUSTER_FEATURES]
    X = np.column_stack(cols)
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _name_clusters(X: np.ndarray, bought: np.ndarray, labels: np.ndarray, k: int) -> list[str]:
    centroids = []
    for cluster in range(k):
        z = pd.Series(X[labels == cluster].mean(axis=0), index=CLUSTER_FEATURES)
        z["bought"] = float(bought[labels == cluster].mean())
        centroids.append(z)
    names = list(ARCHETYPES)
    scores = np.array([[ARCHETYPES[n](z) for n in names] for z in centroids])
    rows, cols = linear_sum_assignment(scores, maximize=True)
    out = [""] * k
    for r, c in zip(rows, cols, strict=True):
        out[r] = names[c]
    extra = 2
    for i in range(k):  # more clusters than archetypes: number the spare ones
        if not out[i]:
            out[i] = f"普通用户{extra}"
            extra += 1
    return out


# -- rule filters ----------------------------------------------------------------------------


def select_users(
    store: Store,
    rule: SegmentRule,
    now: datetime | None = None,
    *,
    k: int = DEFAULT_K,
    seed: int = DEFAULT_SEED,
    reachable_only: bool = True,
) -> list[int]:
    """User ids matching a segment rule, ascending. `reachable_only` drops banned, opted-out and blocked
    users — before any randomisation, so both arms of a campaign come from the same population."""
    moment = now or datetime.now(UTC)
    everyone = user_features(store, moment)
    df = everyone[everyone["banned"] == 0]
    if reachable_only:
        df = df[(df["opted_out"] == 0) & (df["blocked_bot"] == 0)]
    if rule.segment:
        # Clusters are fitted on everyone (not only the reachable), so names match `xianke campaign segments`.
        segmentation = segment_users(store, moment, k=k, seed=seed, features=everyone)
        if segmentation.get(rule.segment) is None:
            known = "、".join(segmentation.names()) or "（暂无用户）"
            raise ValueError(f"没有名为「{rule.segment}」的人群；现有人群：{known}")
        df = df[[segmentation.labels.get(int(u)) == rule.segment for u in df.index]]
    return [int(u) for u in apply_rule(df, rule, moment).index]


def apply_rule(df: pd.DataFrame, rule: SegmentRule, now: datetime) -> pd.DataFrame:
    """The rows of a user_features frame that pass the rule's filters (the cluster filter is separate)."""
    mask = pd.Series(True, index=df.index)
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    if rule.min_orders is not None:
        mask &= df["orders_all"] >= rule.min_orders
    if rule.max_orders is not None:
        mask &= df["orders_all"] <= rule.max_orders
    if rule.min_spend_cents is not None:
        mask &= df["spend_all_cents"] >= rule.min_spend_cents
    if rule.last_active_days is not None:
        mask &= df["last_active"] >= now_ts - pd.Timedelta(days=rule.last_active_days)
    if rule.inactive_days is not None:
        mask &= df["last_active"] < now_ts - pd.Timedelta(days=rule.inactive_days)
    if rule.bought is not None:
        mask &= df[f"bought_{rule.bought}"] > 0
    if rule.diet is not None:
        mask &= pd.Series([rule.diet in diets for diets in df["diet"]], index=df.index)
    if rule.language is not None:
        mask &= df["language"] == rule.language
    return df[mask]


def segment_sizes(segmentation: Segmentation) -> dict[str, int]:
    return {s.name: s.size for s in segmentation.segments}
