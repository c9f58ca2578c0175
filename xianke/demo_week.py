"""`make demo`, last act: one simulated campaign week, pushed through the real code paths, ending in
the weekly digest — and a check that the digest's estimates recover the effects that were injected.

What is simulated (seeded, so every run prints the same numbers), and which real code takes over:

- Customers scan a QR code during the campaign week: `commerce.campaigns.record_entry` (what the bot's
  `/start <slug>` calls) records the entry, draws the arm from its hash (treatment / holdout) and hands
  the treatment arm its entry coupon.
- Orders: each customer has a weekly order propensity q ~ Beta (mean `base_rate`); over the 8 weeks
  before the entry they ordered Poisson(8·q) times (what CUPED adjusts for). After the entry a
  customer orders with probability q — or min(1, (1 + lift)·q) in the campaign group: the injected
  conversion lift. That order lands inside the part of the attribution window already observed, so
  the per-customer truth mean(min(1, (1 + lift)·q) − q) is exactly what the holdout comparison
  estimates. Campaign-group buyers mostly pay with their coupon. Every order goes through
  `commerce.orders.record_orders` (the file import / webhook path: validation, coupon redemption,
  attribution).
- Social posts: daily mentions of the campaign keyword and other posts (the control series) from
  `analytics.effects_sim.simulate_mentions`, with `mention_lift` extra mentions from the campaign's first
  day on. Posts are written as varied Chinese sentences, stored by `listening.ingest.PostIngestor`
  (validation, dedupe, spam filter) and analysed by `listening.analysis.analyze_new_posts` with the real
  sentiment model; the truth is the number of extra posts actually stored.
- The weekly digest (`listening.digest.build_digest`) estimates the campaign with
  `analytics.campaign_report.estimate_campaign`, as the scheduled job does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from analytics.effects_sim import simulate_mentions
from commerce.campaigns import Campaign, CampaignRepository, record_entry
from commerce.orders import record_orders
from core.repos import CatalogRepository
from core.store import Store
from listening.digest import Digest, build_digest
from listening.ingest import PostIngestor
from recsys.catalog_io import load_shipped

SHOP_ZONE = ZoneInfo("Asia/Shanghai")
WEEK_USER_BASE = 1_000_000_000_500_000  # demo users, far from real Telegram ids and from recsys.simulate's
KEYWORD = "秋季食材包"
TRACKED = ("鲜课", "盒马", "叮咚买菜")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class WeekConfig:
    n_customers: int = 2000
    holdout_pct: float = 25.0
    base_rate: float = 0.15  # chance that a customer orders in a given week without the campaign
    concentration: float = 3.0  # Beta(a, b) with a + b = concentration: customers differ a lot
    lift: float = 0.40  # injected relative conversion lift in the campaign group
    mention_base: float = 6.0  # mentions of the keyword per day before the campaign
    other_posts: float = 6.0  # other posts per day (the control series)
    mention_lift: float = 0.8  # injected relative lift of mentions from the campaign's first day
    drift_sd: float = 0.01  # daily random-walk drift of the post volume (log scale), shared by both series
    pre_days: int = 35  # days of posts before the campaign (CausalImpact needs at least 14)
    coupon_use: float = 0.7  # share of campaign-group buyers who pay with their coupon
    seed: int = 14
    week_start: date = date(2026, 11, 2)  # a Monday: the weekly digest then covers exactly this week


@dataclass
class Check:
    """One injected truth against the digest's estimate of it."""

    label_zh: str
    truth: float
    effect: float
    low: float
    high: float
    unit: str  # "pp" (percentage points) or "mentions"

    @property
    def inside(self) -> bool:
        return self.low <= self.truth <= self.high

    def line_zh(self) -> str:
        mark = "✓" if self.inside else "✗"
        verdict = "落在估计区间" if self.inside else "没有落在估计区间"
        return (
            f"{mark} {self.label_zh}：真实提升 {self._fmt(self.truth)} {verdict} "
            f"[{self._fmt(self.low)}, {self._fmt(self.high)}] 内（点估计 {self._fmt(self.effect)}）"
        )

    def _fmt(self, value: float) -> str:
        if self.unit == "pp":
            return f"{value * 100:+.1f} 个百分点"
        return f"{value:+.0f} 条"


@dataclass
class WeekResult:
    campaign: Campaign
    digest: Digest
    now: datetime
    counts: dict[str, int] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.label_zh.startswith(name)), None)


# -- entry point ----------------------------------------------------------------------------------


def simulate_week(
    store: Store,
    *,
    embedder: Any | None = None,
    sentiment: Any | None = None,
    config: WeekConfig = WeekConfig(),
    charts_dir: Path | None = None,
    zone: tzinfo = SHOP_ZONE,
    progress: Progress = lambda _: None,
) -> WeekResult:
    """Simulate the week into `store` (fresh or with the catalog loaded) and build the weekly digest.
    Without an embedder and sentiment model the posts are stored but not analysed."""
    rng = np.random.default_rng(config.seed)
    start = datetime.combine(config.week_start, time.min, tzinfo=zone)
    now = start + timedelta(days=7, hours=22)  # Monday night after the campaign week
    catalog = CatalogRepository(store)
    if catalog.counts()["kits"] == 0:
        load_shipped(catalog)
    campaign = CampaignRepository(store).create(Campaign.build(
        slug="autumn_kit_qr", name="秋季食材包扫码礼", channel="qr", starts_at=start,
        ends_at=start + timedelta(days=14) - timedelta(milliseconds=1), cost_cents=300_000,
        holdout_pct=config.holdout_pct, keywords=[KEYWORD],
        coupon_rule={"trigger": "entry", "target_type": "kit", "discount_cents": 1_500, "min_spend_cents": 6_000},
    ))
    result = WeekResult(campaign, None, now)  # type: ignore[arg-type]  # the digest comes last
    progress(f"活动「{campaign.name}」：{config.n_customers} 位顾客扫码进入，对照组 {config.holdout_pct:g}%")
    _customers_and_orders(store, campaign, config, rng, start, now, result)
    progress(
        f"订单 {result.counts['orders']} 笔（活动后 {result.counts['orders_post']} 笔），"
        f"券 发出 {result.counts['coupons_issued']} / 核销 {result.counts['coupons_redeemed']}"
    )
    _posts(store, config, rng, start, now, zone, result)
    progress(f"帖子 {result.counts['posts']} 条（其中活动带来的额外提及 {result.counts['extra_mentions']} 条）")
    if embedder is not None and sentiment is not None:
        from listening.analysis import analyze_new_posts, default_aspects
        from listening.topic_refresh import refresh_topics

        counts = analyze_new_posts(store, embedder, sentiment, aspects=default_aspects(sentiment))
        refresh_topics(store, embedder, now=now)
        progress(
            f"情感分析 {counts['analyzed']} 条：正面 {counts['positive']} · 中性 {counts['neutral']} · "
            f"负面 {counts['negative']}"
        )
    result.digest = build_digest(store, "weekly", now, zone, charts_dir=charts_dir, tracked_brands=TRACKED)
    result.checks = _checks(result)
    return result


# -- customers, arms, coupons, orders ---------------------------------------------------------------


def _customers_and_orders(
    store: Store, campaign: Campaign, config: WeekConfig, rng: np.random.Generator, start: datetime,
    now: datetime, result: WeekResult,
) -> None:
    n = config.n_customers
    a = config.base_rate * config.concentration
    q = rng.beta(a, config.concentration - a, n)
    q_treated = np.minimum(1.0, q * (1.0 + config.lift))
    entry_day = rng.integers(0, 7, n)
    entry_minute = rng.integers(9 * 60, 21 * 60, n)
    pre_orders = rng.poisson(q * 8.0)
    draws = rng.random(n)  # one uniform per customer decides conversion in either arm (common numbers)
    delay_h = rng.exponential(24.0, n)
    coupon_draw = rng.random(n)
    kits = [k for k in CatalogRepository(store).kits() if k.get("price_cents")]
    ingredients = [i for i in CatalogRepository(store).ingredients() if i.get("price_cents")]

    orders: list[dict[str, Any]] = []
    lift_sum = q_sum = 0.0
    treated = 0
    for i in range(n):
        user = WEEK_USER_BASE + i
        entered = start + timedelta(days=int(entry_day[i]), minutes=int(entry_minute[i]))
        entry = record_entry(store, user, campaign.slug, now=entered)
        assert entry is not None and entry.arm is not None  # in period, hashed arm
        in_campaign = entry.arm == "treatment"
        treated += in_campaign
        lift_sum += q_treated[i] - q[i]  # the per-customer truth, over everyone who entered
        q_sum += q[i]
        for k in range(int(pre_orders[i])):
            when = entered - timedelta(minutes=int(rng.integers(60, 56 * 24 * 60)))
            orders.append(_order(f"wk-{user}-p{k}", user, when, _basket(rng, kits, ingredients)))
        if draws[i] >= (q_treated[i] if in_campaign else q[i]):
            continue
        # The order falls in the observed part of the attribution window (before `now`), so the
        # estimator sees every conversion the simulation made.
        room_h = (now - entered).total_seconds() / 3600 - 0.5
        when = entered + timedelta(hours=float(min(max(delay_h[i], 0.3), room_h)))
        # Entrants came through a kit's QR code: they buy a kit in either arm, so the campaign moves
        # conversion (what the holdout measures), not the basket.
        basket = _basket(rng, kits, ingredients, kit_min=6_000)
        coupon = entry.coupon["code"] if in_campaign and entry.coupon and coupon_draw[i] < config.coupon_use else None
        orders.append(_order(f"wk-{user}-c", user, when, basket, coupon))
    orders.sort(key=lambda o: o["created_at"])
    report = record_orders(store, [((n,), o) for n, o in enumerate(orders, 1)], now=now, default_source="demo")
    if report.rejected:
        raise RuntimeError(f"demo orders rejected: {report.rejected[0].reasons}")
    stats = CampaignRepository(store).stats(campaign.campaign_id)
    result.truth["rate_diff"] = lift_sum / n
    result.truth["relative_lift"] = lift_sum / q_sum
    result.counts.update(
        customers=n, treatment=treated, holdout=n - treated, orders=report.added,
        orders_post=sum(1 for o in orders if o["external_id"].endswith("-c")),
        coupons_issued=int(stats["coupons_issued"]), coupons_redeemed=report.coupons_redeemed,
    )


def _basket(
    rng: np.random.Generator, kits: list[dict[str, Any]], ingredients: list[dict[str, Any]], *, kit_min: int = 0
) -> list[dict[str, Any]]:
    """A kit (at least `kit_min`, so a campaign coupon applies) or a few ingredients, sometimes both."""
    lines: list[dict[str, Any]] = []
    if kit_min or rng.random() < 0.4:
        eligible = [k for k in kits if k["price_cents"] >= kit_min]
        kit = eligible[int(rng.integers(len(eligible)))]
        lines.append({"slug": kit["slug"], "quantity": 1, "price_cents": kit["price_cents"]})
    if not lines or rng.random() < 0.3:
        for j in rng.choice(len(ingredients), size=int(rng.integers(1, 4)), replace=False):
            item = ingredients[int(j)]
            lines.append({"slug": item["slug"], "quantity": int(rng.integers(1, 3)), "price_cents": item["price_cents"]})
    return lines


def _order(external_id: str, user: int, when: datetime, items: list[dict[str, Any]], coupon: str | None = None) -> dict:
    order: dict[str, Any] = {"external_id": external_id, "user_id": user, "created_at": _utc(when), "items": items}
    if coupon:
        order["coupon_code"] = coupon
    return order


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- social posts -----------------------------------------------------------------------------------

_OPENERS = ("今天", "周末", "昨晚", "下班后", "降温了", "和闺蜜一起", "带娃", "第一次", "又一次", "终于", "趁着休息",
            "一大早", "午饭时间", "加班回家", "宅家")
_DISHES = ("番茄牛腩", "糖醋排骨", "麻婆豆腐", "清蒸鲈鱼", "可乐鸡翅", "红烧肉", "宫保鸡丁", "葱油拌面", "酸菜鱼",
           "蒜蓉西兰花", "土豆炖牛肉", "香菇滑鸡", "虾仁蒸蛋", "板栗烧鸡", "萝卜炖羊排", "菌菇汤")
_INGREDIENTS = ("牛腩", "番茄", "鲈鱼", "排骨", "豆腐", "青菜", "羊排", "板栗", "香菇", "虾仁", "鸡翅", "土豆")
_GOOD = ("食材很新鲜，{dish}一次就成功了", "分量刚好两个人吃", "配料齐全不用自己再买", "性价比挺高",
         "孩子说比外面的还好吃", "步骤卡片写得很清楚", "{ing}品质不错，炖出来很香", "包装很用心，冰袋还没化")
_BAD = ("可惜{ing}有点不新鲜", "物流慢了一天，{ing}都蔫了", "分量有点少，不太够吃", "价格偏贵了",
        "少了一包调料，客服回复也慢", "{ing}有股怪味，很失望")
_MEH = ("还在研究怎么做", "先收藏了", "准备下周再试试", "不知道{dish}要炖多久", "看起来还行")
_ENDS = ("", "推荐给大家", "还会回购", "大家觉得呢", "记录一下", "打卡第{n}天", "#做饭日记#", "明天继续")
_MENTION = ("{opener}扫码领了{kw}的券，{opinion}。{end}", "{opener}收到{kw}，做了{dish}，{opinion}。{end}",
            "{opener}用{kw}做{dish}，{opinion}！{end}", "第{n}次买{kw}了，这次是{dish}，{opinion}。{end}",
            "{kw}里的{dish}，{opinion}，{end}")
_OTHER = ("{opener}在{shop}买了{ing}，{opinion}。{end}", "{opener}学做{dish}，{opinion}。{end}",
          "{opener}自己在家做{dish}，{opinion}。{end}", "{shop}的{ing}，{opinion}，{end}",
          "求推荐靠谱的{dish}做法，{opinion}。{end}", "第{n}次做{dish}，{opinion}！{end}")
_SHOPS = ("盒马", "叮咚买菜", "楼下菜场", "超市", "鲜课", "朴朴")
_SOURCES = ("weibo", "xiaohongshu", "douyin")


def _post_text(rng: np.random.Generator, mention: bool) -> str:
    mood = rng.random()
    pool = _GOOD if mood < 0.55 else _BAD if mood < 0.8 else _MEH
    fill = {
        "opener": _pick(rng, _OPENERS), "dish": _pick(rng, _DISHES), "ing": _pick(rng, _INGREDIENTS),
        "shop": _pick(rng, _SHOPS), "n": int(rng.integers(2, 60)), "kw": KEYWORD,
    }
    fill["opinion"] = _pick(rng, pool).format(**fill)
    fill["end"] = _pick(rng, _ENDS).format(**fill)
    return _pick(rng, _MENTION if mention else _OTHER).format(**fill).rstrip("，。 ")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _posts(
    store: Store, config: WeekConfig, rng: np.random.Generator, start: datetime, now: datetime, zone: tzinfo,
    result: WeekResult,
) -> None:
    """Pre-period and campaign days (through the digest's own day, before `now`), day by day through
    the real ingestor; the campaign's extra mentions go in their own batch so the truth counts only
    those the ingestor actually kept."""
    post_days = (now.date() - start.date()).days + 1
    first_day = start.date() - timedelta(days=config.pre_days)
    sim = simulate_mentions(
        rng, config.pre_days, post_days, config.mention_lift, base=config.mention_base,
        control_base=config.other_posts, shared_sd=config.drift_sd, own_sd=config.drift_sd / 2,
        start=first_day.isoformat(),
    )
    ingestor = PostIngestor(store, b"xianke-demo-week", zone=zone)
    stored = extra_stored = n = 0
    for offset, day in enumerate(sim.mentions.index):
        base_mentions = int(sim.counterfactual.iloc[offset])
        extra = int(sim.mentions.iloc[offset]) - base_mentions
        batches = [[True] * base_mentions + [False] * int(sim.control.iloc[offset]), [True] * extra]
        for batch_no, batch in enumerate(batches):
            records = []
            for mention in batch:
                n += 1
                local = datetime.combine(day.date(), time(8), tzinfo=zone) + timedelta(minutes=int(rng.integers(14 * 60)))
                records.append({
                    "source": _pick(rng, _SOURCES), "external_id": f"wk-post-{n}", "text": _post_text(rng, mention),
                    "created_at": _utc(min(local, now - timedelta(minutes=1))), "author": f"fan{int(rng.integers(5000))}",
                })
            added = ingestor.ingest_records(records).added if records else 0
            stored += added
            extra_stored += added if batch_no == 1 else 0
    result.truth["extra_mentions"] = float(extra_stored)
    result.counts.update(posts=stored, extra_mentions=extra_stored)


# -- the comparison -----------------------------------------------------------------------------------


def digest_estimates(digest: Digest, campaign_id: int) -> dict[str, dict[str, Any]]:
    """The estimates the digest printed for one campaign, by estimator name."""
    section = digest.payload["sections"].get("campaigns", {})
    for entry in section.get("campaigns", []):
        if entry.get("id") == campaign_id:
            return {e["name"]: e for e in entry.get("estimates", [])}
    return {}


def _checks(result: WeekResult) -> list[Check]:
    estimates = digest_estimates(result.digest, result.campaign.campaign_id)
    checks = []
    if (diff := estimates.get("holdout_difference")) is not None:
        checks.append(Check("转化率（活动组 − 对照组）", result.truth["rate_diff"], diff["effect"], diff["low"],
                            diff["high"], "pp"))
    if (impact := estimates.get("causal_impact")) is not None:
        checks.append(Check(f"「{KEYWORD}」提及量（CausalImpact）", result.truth["extra_mentions"],
                            impact["effect"], impact["low"], impact["high"], "mentions"))
    return checks


def print_week(console: Any, result: WeekResult) -> None:
    """The demo's printout: the digest as marketers get it, the chart, then truth vs estimate."""
    console.print(result.digest.text_plain, markup=False, highlight=False)
    console.print(f"\nchart: {result.digest.chart_path or '(none)'}")
    console.print(
        f"注入的真实效果：转化率 {result.truth['rate_diff'] * 100:+.1f} 个百分点"
        f"（相对 {result.truth['relative_lift'] * 100:+.0f}%），额外提及 {result.truth['extra_mentions']:.0f} 条",
        highlight=False,
    )
    for check in result.checks:
        console.print(("[green]" if check.inside else "[red]") + check.line_zh() + "[/]", highlight=False)
    if not result.checks:
        console.print("[red]✗ 周报里没有这个活动的估计[/]")


def run_demo_week(app: Any, console: Any, db_path: Path) -> WeekResult:
    """`xianke demo`'s section: a fresh database of its own (so the arms, drawn from campaign and user
    ids, are the same on every run), the app's encoder and sentiment model, the chart under data_dir."""
    for suffix in ("", "-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    store = app.open_store(db_path)
    try:
        result = simulate_week(
            store, embedder=app.embedder, sentiment=app.sentiment, charts_dir=app.settings.data_dir / "charts",
            zone=app.settings.zone, progress=lambda line: console.print(line, highlight=False),
        )
        print_week(console, result)
        return result
    finally:
        store.close()
