"""Simulators with known injected campaign effects (pure, seeded).

Used by tests/test_effects.py to measure interval coverage and false-positive rates, and by
`make demo`, which simulates a campaign week with a holdout and must recover the lift it injected.

Data-generating processes (why they look like this):
- Users: each has a latent purchase propensity p_i ~ Beta with mean `base_rate`. The campaign
  multiplies it by (1 + lift) in the treated arm. Pre-period orders ~ Poisson(p_i * opportunities),
  so pre-period behaviour predicts conversion the way it does in real shops, which is what CUPED
  exploits. Heterogeneous p_i keeps each arm's conversions exactly Bernoulli(mean rate), so the
  true rate difference is known in closed form.
- Mentions: daily counts ~ Poisson(mu_t), log mu_t = level + shared random walk + own random walk
  + weekly pattern. A control series (e.g. mentions of a generic cooking topic) shares the random
  walk and the weekly pattern but is untouched by the campaign. The treated series is the
  counterfactual plus independent Poisson(lift * mu_t) extra mentions in the post period, so its
  marginal law is Poisson((1 + lift) mu_t) and the realised injected effect is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

WEEKLY_PATTERN = np.array([0.0, -0.05, -0.10, 0.0, 0.10, 0.30, 0.25])  # Mon..Sun, weekend peak
DEFAULT_START = "2025-01-06"  # a Monday, so WEEKLY_PATTERN lines up with weekdays


@dataclass(frozen=True)
class HoldoutSim:
    treat: np.ndarray  # 1 = received the campaign, 0 = holdout
    conv: np.ndarray  # 1 = ordered during the campaign window
    y_pre: np.ndarray  # orders in the pre-period (the CUPED covariate)
    revenue: np.ndarray  # ¥ spent during the campaign window
    true_rate_diff: float  # expected treated rate − control rate
    true_relative_lift: float
    mean_basket: float  # ¥ per order, expected

    @property
    def true_revenue_per_user(self) -> float:
        return self.true_rate_diff * self.mean_basket


@dataclass(frozen=True)
class MentionsSim:
    mentions: pd.Series  # observed daily mentions (with the campaign effect in the post period)
    counterfactual: pd.Series  # the same days without the campaign
    control: pd.Series  # a series the campaign does not touch
    pre_end: pd.Timestamp
    post_start: pd.Timestamp
    post_end: pd.Timestamp
    expected_mu: pd.Series  # Poisson means without the campaign

    @property
    def true_total_effect(self) -> float:
        """Realised extra mentions in the post period (the estimand of causal_impact)."""
        return float((self.mentions - self.counterfactual)[self.post_start : self.post_end].sum())


@dataclass(frozen=True)
class CampaignSim:
    holdout: HoldoutSim
    mentions: MentionsSim
    lift: float

    # Flat accessors so callers can write sim.treat, sim.conv, ... as the demo spec says.
    @property
    def treat(self) -> np.ndarray:
        return self.holdout.treat

    @property
    def conv(self) -> np.ndarray:
        return self.holdout.conv

    @property
    def y_pre(self) -> np.ndarray:
        return self.holdout.y_pre

    @property
    def revenue(self) -> np.ndarray:
        return self.holdout.revenue


def _expected_lifted_rate(a: float, b: float, lift: float) -> float:
    """E[min(1, (1 + lift) p)] for p ~ Beta(a, b): the treated rate, exact even when capping at 1."""
    c = 1.0 + lift
    if c <= 1.0:
        return c * a / (a + b)
    t = 1.0 / c
    below = a / (a + b) * stats.beta.cdf(t, a + 1, b)  # E[p; p < t]
    return c * below + stats.beta.sf(t, a, b)


def simulate_holdout(
    rng: np.random.Generator,
    n_users: int,
    base_rate: float,
    lift: float,
    pre_days: int = 56,
    *,
    treat_share: float = 0.5,
    concentration: float = 3.0,
    mean_basket: float = 120.0,
) -> HoldoutSim:
    """Per-user holdout experiment; `lift` is relative (0.3 = +30% conversion rate)."""
    a, b = base_rate * concentration, (1.0 - base_rate) * concentration
    p = rng.beta(a, b, n_users)
    treat = (rng.random(n_users) < treat_share).astype(int)
    p_now = np.where(treat == 1, np.minimum(1.0, p * (1.0 + lift)), p)
    conv = (rng.random(n_users) < p_now).astype(int)
    y_pre = rng.poisson(p * 4.0 * pre_days / 7.0).astype(float)  # ~4 buying occasions a week
    basket = rng.lognormal(np.log(mean_basket) - 0.125, 0.5, n_users)  # mean = mean_basket
    true_diff = _expected_lifted_rate(a, b, lift) - base_rate
    return HoldoutSim(treat, conv, y_pre, conv * basket, true_diff, true_diff / base_rate, mean_basket)


def simulate_mentions(
    rng: np.random.Generator,
    pre_days: int,
    post_days: int,
    lift: float,
    *,
    base: float = 40.0,
    control_base: float = 80.0,
    shared_sd: float = 0.03,
    own_sd: float = 0.02,
    start: str = DEFAULT_START,
) -> MentionsSim:
    """Daily mention counts with weekly seasonality, a control series and an injected relative lift."""
    n = pre_days + post_days
    idx = pd.date_range(start, periods=n, freq="D")
    shared = np.cumsum(rng.normal(0.0, shared_sd, n))  # drift the control also sees
    own = np.cumsum(rng.normal(0.0, own_sd, n))  # drift only the target has: unforecastable
    week = WEEKLY_PATTERN[idx.dayofweek]
    control = rng.poisson(control_base * np.exp(shared + 0.5 * week))
    mu = base * np.exp(shared + own + week)
    y0 = rng.poisson(mu)
    extra = np.zeros(n, dtype=int)
    extra[pre_days:] = rng.poisson(max(lift, 0.0) * mu[pre_days:])
    return MentionsSim(
        mentions=pd.Series(y0 + extra, index=idx, name="mentions"),
        counterfactual=pd.Series(y0, index=idx, name="mentions_counterfactual"),
        control=pd.Series(control, index=idx, name="control_mentions"),
        pre_end=idx[pre_days - 1],
        post_start=idx[pre_days],
        post_end=idx[-1],
        expected_mu=pd.Series(mu, index=idx, name="mu"),
    )


def simulate_campaign(
    seed: int,
    n_users: int = 2000,
    base_rate: float = 0.05,
    lift: float = 0.3,
    pre_days: int = 56,
    post_days: int = 7,
) -> CampaignSim:
    """A campaign with a 50/50 holdout and a mentions series, both lifted by the same relative `lift`."""
    if lift < 0:
        raise ValueError("lift 不能为负（模拟只注入非负效果）/ lift must be >= 0 in the simulator")
    rng = np.random.default_rng(seed)
    holdout = simulate_holdout(rng, n_users, base_rate, lift, pre_days)
    mentions = simulate_mentions(rng, pre_days, post_days, lift)
    return CampaignSim(holdout=holdout, mentions=mentions, lift=lift)
