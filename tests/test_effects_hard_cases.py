"""Issue 18 hard cases: own seeded generators with injected truth; coverage / false positives or withheld.

Fast CI counts here; the measured table with replication counts is in docs/effects-methods.md."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.effects import (
    cuped_adjusted,
    did_estimate,
    holdout_difference,
    incremental_revenue_from_holdout,
)

REPS = 40


def _panel(rng: np.random.Generator, n_t: int, n_c: int, effect: float, periods: int = 20) -> pd.DataFrame:
    """Unit and time fixed effects, AR(1) noise per unit (φ = 0.6), effect on treated post rows."""
    time_fe = rng.normal(0, 1, periods)
    rows = []
    for u in range(n_t + n_c):
        fe, e, treated = rng.normal(0, 2), 0.0, int(u < n_t)
        for t in range(periods):
            e = 0.6 * e + rng.normal(0, 1)
            post = int(t >= 12)
            rows.append((fe + time_fe[t] + effect * treated * post + e, treated, post, u, t))
    return pd.DataFrame(rows, columns=["y", "treated", "post", "unit", "time"])


def test_did_five_by_five_covers_and_controls_false_positives():
    covered = flagged = 0
    for seed in range(REPS):
        covered += (lambda e: e.low <= 1.0 <= e.high)(did_estimate(_panel(np.random.default_rng(seed), 5, 5, 1.0)))
        flagged += did_estimate(_panel(np.random.default_rng(10_000 + seed), 5, 5, 0.0)).significant
    assert covered / REPS >= 0.85 and flagged / REPS <= 0.15  # binomial slack at 40 runs


def test_did_one_by_one_is_always_withheld_with_a_reason():
    for seed in range(5):
        est = did_estimate(_panel(np.random.default_rng(seed), 1, 1, 0.0, periods=60))
        assert est.withheld and not est.significant and "只有 1 个活动单位" in est.reason_zh


def test_cuped_sparse_holdout_is_withheld_and_newcombe_covers():
    covered = withheld = 0
    for seed in range(REPS):
        rng = np.random.default_rng(seed)
        treat = np.r_[np.ones(360, int), np.zeros(40, int)]
        p = rng.beta(0.6, 19.4, 400)  # mean 3%
        conv = (rng.random(400) < p * np.where(treat == 1, 1.5, 1.0)).astype(int)
        pre = rng.poisson(p * 30).astype(float)
        est = cuped_adjusted(outcome=conv, is_treated=treat, pre_period=pre)
        withheld += est.withheld
        diff = holdout_difference(treated_conversions=conv[treat == 1], holdout_conversions=conv[treat == 0])
        covered += diff.low <= 0.015 <= diff.high
    assert withheld == REPS and covered / REPS >= 0.85


def test_revenue_with_whales_is_withheld_not_published_wrong():
    published_wrong = 0
    for seed in range(REPS):
        rng = np.random.default_rng(seed)
        mu = np.log(100) - 1.5**2 / 2
        rt = (rng.random(3600) < 0.05) * rng.lognormal(mu, 1.5, 3600)
        rc = (rng.random(400) < 0.05) * rng.lognormal(mu, 1.5, 400)
        est = incremental_revenue_from_holdout(treated_revenue=rt, holdout_revenue=rc)
        published_wrong += est.significant
        assert est.withheld or est.low <= est.effect <= est.high
    assert published_wrong / REPS <= 0.07
