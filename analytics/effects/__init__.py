"""Campaign effect estimators (issue 7 §6, hardened in issue 18): pure functions returning `Estimate`.

Each estimator states its validity conditions in its module docstring and checks them on the data;
when they fail it returns a withheld Estimate with the reason instead of a silent wrong interval.
Methods and measured coverage: docs/effects-methods.md.

- holdout: Newcombe rate difference, relative lift, CUPED (withheld on sparse arms).
- money: incremental revenue (withheld when whales dominate), ROI (money only).
- did: unit fixed-effects DiD, Welch on unit changes or randomisation inference, refuses 1/1.
- impact (+ impact_model): CausalImpact with placebo and control checks.
"""

from analytics.effects.did import did_estimate
from analytics.effects.holdout import (
    cuped_adjusted,
    holdout_difference,
    holdout_difference_from_counts,
    holdout_relative_lift,
)
from analytics.effects.impact import (
    Counterfactual,
    causal_impact,
    counterfactual_forecast,
    impact_from_counterfactual,
)
from analytics.effects.money import bootstrap_t, incremental_revenue_from_holdout, roi
from analytics.effects.result import ALPHA, MIN_PRE_DAYS, Estimate, withheld

__all__ = [
    "ALPHA", "MIN_PRE_DAYS", "Counterfactual", "Estimate", "bootstrap_t", "causal_impact", "counterfactual_forecast",
    "cuped_adjusted", "did_estimate", "holdout_difference", "holdout_difference_from_counts",
    "holdout_relative_lift", "impact_from_counterfactual", "incremental_revenue_from_holdout", "roi", "withheld",
]
