"""`make demo`'s campaign week at a smaller size: the real entry, order, ingest and analysis paths, then
the weekly digest, whose estimates must recover the effects the simulation injected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from core.store import Store
from nlp.sentiment import load_sentiment
from tests.conftest import MODELS_DIR
from xianke.demo_week import WeekConfig, digest_estimates, print_week, simulate_week

pytestmark = pytest.mark.timeout(300)

SMALL = WeekConfig(n_customers=800, pre_days=21, mention_base=4.0, other_posts=3.0, seed=4)


def test_demo_week_recovers_the_injected_lift(store: Store, embedder: Any, tmp_path: Path) -> None:
    sentiment = load_sentiment("embedded", embedder, MODELS_DIR)
    result = simulate_week(store, embedder=embedder, sentiment=sentiment, config=SMALL, charts_dir=tmp_path)

    # The real paths ran: arms from the campaign's hash, coupons only for the campaign group, orders
    # imported with coupon redemptions, posts stored and analysed.
    counts = result.counts
    assert counts["treatment"] + counts["holdout"] == SMALL.n_customers
    assert 0.18 < counts["holdout"] / SMALL.n_customers < 0.32  # 25% holdout, drawn per customer
    assert counts["coupons_issued"] == counts["treatment"] and counts["coupons_redeemed"] > 0
    assert counts["extra_mentions"] > 0
    assert store.scalar("SELECT count(*) FROM posts WHERE analyzed_at IS NULL") == 0
    assert store.scalar("SELECT count(DISTINCT sentiment) FROM posts") >= 2

    # The digest covers the campaign week and carries its estimates …
    text = result.digest.text_plain
    assert "鲜课舆情周报" in text and "秋季食材包扫码礼" in text and "活动组转化率" in text
    assert result.digest.chart_path is not None and result.digest.chart_path.is_file()
    assert {"holdout_difference", "causal_impact"} <= set(digest_estimates(result.digest, result.campaign.campaign_id))

    # … and each injected truth lies inside the printed 95% interval.
    conversion = result.check("转化率")
    mentions = result.check("「")
    assert conversion is not None and mentions is not None
    assert 0.04 < result.truth["rate_diff"] < 0.08  # base rate 15% × lift 40%, per customer
    assert conversion.inside, conversion.line_zh()
    assert mentions.inside, mentions.line_zh()

    console = Console(record=True, width=120)
    print_week(console, result)
    assert "✓ 转化率（活动组 − 对照组）：真实提升" in console.export_text()
