"""Randomised holdout: conversion-rate difference (Newcombe), relative lift, and CUPED.

Validity conditions checked on the data
- Rate difference: none beyond 0/1 outcomes; Newcombe's interval holds with 0 conversions.
- Relative lift: the holdout needs at least one conversion, otherwise the ratio is undefined
  (withheld, with the Newcombe difference as the number to read).
- CUPED: an OLS/HC1 Wald interval, valid only when every arm has ≥ 10 conversions and ≥ 10
  non-conversions. Below that (a 10% holdout at a 3% base rate has ~1 conversion) HC1 collapses —
  the issue's independent simulation measured 73% coverage — so CUPED is withheld and points to
  the Newcombe difference, which covers ≥ 95% there (tests/test_effects_hard_cases.py).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import statsmodels.api as sm
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from analytics.effects.result import (
    ALPHA,
    Estimate,
    _amount,
    _binary,
    _both_arms,
    _ci,
    _direction,
    _finite,
    _num,
    _verdict,
    withheld,
)

MIN_EVENTS_PER_ARM = 10  # below this a Wald/HC1 interval for a rate is not trustworthy
RATE_DIFF_ESTIMAND = "treated conversion rate − holdout conversion rate (intent to treat)"


# --------------------------------------------------------------------------------------------
# Randomised holdout: conversion-rate difference and relative lift
# --------------------------------------------------------------------------------------------
# Why Newcombe's hybrid score interval (method 10 of Newcombe 1998) and not the unpooled Wald: the
# Wald interval estimates its standard error from the same noisy rates, which fails when an arm has
# few conversions — exactly the case of a 10% holdout at a 2–5% conversion rate. Exact binomial
# coverage (enumerating all outcomes) of nominal 95% intervals:
#     treated/holdout users, rate   Wald    Newcombe
#     450 / 50,  2%                 64%     96%
#     900 / 100, 2%                 86%     96%
#     270 / 30,  5%                 78%     96%
#     300 / 300, 2–10%              95%     95–96%
#     50 / 50,   2%, +30% lift      88%     99.6%
# Over 2–10% rates and 50–1000 users per arm Newcombe never dropped below 95.0%. It combines two
# Wilson intervals, stays inside [-1, 1] and works with 0 conversions. The p-value is the matching
# score (Miettinen–Nurminen) test. For the relative lift we use the score interval for the ratio
# (Koopman), which also behaves with small counts, unlike Katz's log interval.


def holdout_difference_from_counts(conv_treat: int, n_treat: int, conv_ctrl: int, n_ctrl: int) -> Estimate:
    """Rate difference (treated − holdout) from aggregated counts, with relative lift in `extra`."""
    _check_counts(conv_treat, n_treat, "活动组/campaign group")
    _check_counts(conv_ctrl, n_ctrl, "对照组/holdout")
    p1, p0 = conv_treat / n_treat, conv_ctrl / n_ctrl
    low, high = confint_proportions_2indep(
        conv_treat, n_treat, conv_ctrl, n_ctrl, method="newcomb", compare="diff", alpha=ALPHA
    )
    p_value = _score_p_value(conv_treat, n_treat, conv_ctrl, n_ctrl)
    rel = _relative_lift_from_counts(conv_treat, n_treat, conv_ctrl, n_ctrl)
    extra = {
        "treat_rate": p1,
        "ctrl_rate": p0,
        "n_treat": n_treat,
        "n_ctrl": n_ctrl,
        "conv_treat": conv_treat,
        "conv_ctrl": conv_ctrl,
        "relative_lift": rel.effect,
        "relative_low": rel.low,
        "relative_high": rel.high,
        "small_sample": min(conv_treat, conv_ctrl, n_treat - conv_treat, n_ctrl - conv_ctrl) < 10,
        "method": "Newcombe hybrid score interval; Miettinen–Nurminen score test",
    }
    zh, en = _holdout_sentences(p1 - p0, float(low), float(high), rel)
    return Estimate(
        "holdout_difference", p1 - p0, float(low), float(high), p_value, "proportion", extra, zh, en,
        estimand=RATE_DIFF_ESTIMAND,
    )


def holdout_difference(*, treated_conversions: Any, holdout_conversions: Any) -> Estimate:
    """Conversion-rate difference from per-user 0/1 conversions, one array per arm (named, so a
    pooled array cannot be passed by mistake)."""
    t = _binary(treated_conversions, "treated_conversions")
    c = _binary(holdout_conversions, "holdout_conversions")
    return holdout_difference_from_counts(int(t.sum()), t.size, int(c.sum()), c.size)


def holdout_relative_lift(*, treated_conversions: Any, holdout_conversions: Any) -> Estimate:
    """Relative lift (treated rate / holdout rate − 1) as its own Estimate; withheld without holdout conversions."""
    t = _binary(treated_conversions, "treated_conversions")
    c = _binary(holdout_conversions, "holdout_conversions")
    return _relative_lift_from_counts(int(t.sum()), t.size, int(c.sum()), c.size)


def _check_counts(conv: int, n: int, what: str) -> None:
    if n <= 0 or conv < 0 or conv > n:
        raise ValueError(
            f"{what} 的人数或转化数不合理（转化 {conv} / 人数 {n}）"
            f" / {what}: conversions must be between 0 and the number of users (got {conv}/{n})"
        )


def _score_p_value(x1: int, n1: int, x0: int, n0: int) -> float:
    if x1 + x0 in (0, n1 + n0):
        return 1.0  # no variation at all: nothing to test
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = test_proportions_2indep(x1, n1, x0, n0, method="score", compare="diff").pvalue
    return float(p) if math.isfinite(p) else 1.0


def _relative_lift_from_counts(x1: int, n1: int, x0: int, n0: int) -> Estimate:
    p1, p0 = x1 / n1, x0 / n0
    extra = {"treat_rate": p1, "ctrl_rate": p0, "method": "score interval for the rate ratio (Koopman)"}
    estimand = "treated conversion rate / holdout conversion rate − 1"
    if x0 == 0:
        # The ratio is undefined and its score interval runs to +inf: never publish that as 'significant'.
        return withheld(
            "holdout_relative_lift", "ratio",
            "对照组还没有任何转化，相对提升无法计算；请看转化率差，或扩大对照组后继续观察。",
            "the holdout has no conversions, so the relative lift is undefined; read the rate difference instead.",
            estimand=estimand, extra=extra,
        )
    rel = p1 / p0 - 1.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lo_r, hi_r = confint_proportions_2indep(x1, n1, x0, n0, method="score", compare="ratio", alpha=ALPHA)
    low, high = float(lo_r) - 1.0, float(hi_r) - 1.0
    if not (math.isfinite(low) and math.isfinite(high)):
        return withheld(
            "holdout_relative_lift", "ratio", "相对提升的区间无法计算（转化太少），请看转化率差。",
            "the relative-lift interval is unbounded (too few conversions); read the rate difference instead.",
            estimand=estimand, extra=extra,
        )
    p_value = _score_p_value(x1, n1, x0, n0)
    zh = f"活动组转化率是对照组的 {_num(1 + rel, 'ratio', 'zh')}，相对变化 {_num(rel, 'ratio', 'zh')}"
    zh += _ci(low, high, "ratio", "zh") + "，" + _verdict(low, high)[0]
    en = f"The campaign group's conversion rate differs from the holdout's by {_num(rel, 'ratio', 'en')}"
    en += _ci(low, high, "ratio", "en") + "; " + _verdict(low, high)[1]
    return Estimate("holdout_relative_lift", rel, low, high, p_value, "ratio", extra, zh, en, estimand=estimand)


def _holdout_sentences(diff: float, low: float, high: float, rel: Estimate) -> tuple[str, str]:
    v_zh, v_en = _verdict(low, high)
    zh = (
        f"活动组转化率比对照组{_direction(diff, 'zh')} {_amount(abs(diff), 'proportion', 'zh')}"
        f"{_ci(low, high, 'proportion', 'zh')}"
    )
    en = (
        f"The campaign group converted {_amount(abs(diff), 'proportion', 'en')} "
        f"{_direction(diff, 'en')} than the holdout{_ci(low, high, 'proportion', 'en')}"
    )
    if not rel.withheld:
        word_zh, word_en = ("相对提升", "a relative lift of") if rel.effect >= 0 else ("相对变化", "a relative change of")
        zh += f"，{word_zh} {_num(rel.effect, 'ratio', 'zh')}{_ci(rel.low, rel.high, 'ratio', 'zh')}"
        en += f", {word_en} {_num(rel.effect, 'ratio', 'en')}{_ci(rel.low, rel.high, 'ratio', 'en')}"
    return f"{zh}，{v_zh}", f"{en}; {v_en}"


# --------------------------------------------------------------------------------------------
# CUPED / regression adjustment
# --------------------------------------------------------------------------------------------


def cuped_adjusted(
    *, outcome: Any, is_treated: Any, pre_period: Any, value_unit: str | None = None
) -> Estimate:
    """Treatment effect on `outcome` adjusted for `pre_period` behaviour: OLS y ~ treat + centred x, HC1.

    All three arrays are per user over BOTH arms (pooled), aligned by position; `is_treated` is 0/1.
    CUPED's theta-adjusted mean difference equals this OLS coefficient; HC1 errors keep the interval
    honest when the arms' variances differ. `pre_period` may be one covariate per user or several
    (2-D). For 0/1 outcomes the interval is withheld when an arm has fewer than
    `MIN_EVENTS_PER_ARM` conversions or non-conversions (see the module docstring).
    """
    y_arr = _finite(outcome, "outcome").ravel()
    t_arr = _binary(is_treated, "is_treated")
    x_pre = _finite(pre_period, "pre_period")
    x_pre = x_pre[:, None] if x_pre.ndim == 1 else x_pre
    if not (len(y_arr) == len(t_arr) == len(x_pre)):
        raise ValueError(
            "outcome、is_treated、pre_period 必须是同一批用户（两组合并）且长度相同"
            " / outcome, is_treated and pre_period must cover the same users (both arms pooled) in the same order"
        )
    _both_arms(t_arr)
    binary = bool(np.isin(y_arr, (0.0, 1.0)).all())
    unit = value_unit or ("proportion" if binary else "value")
    estimand = "treated mean − holdout mean of the outcome (intent to treat), adjusted for pre-period behaviour"
    fewest = _fewest_events(y_arr, t_arr) if binary else MIN_EVENTS_PER_ARM
    if fewest < MIN_EVENTS_PER_ARM:
        return withheld(
            "cuped_adjusted", unit,
            f"有一组的转化（或未转化）只有 {fewest} 个（少于 {MIN_EVENTS_PER_ARM} 个），回归校正的区间不可靠；"
            "请以转化率差（Newcombe 区间）为准。",
            f"an arm has only {fewest} conversions or non-conversions (< {MIN_EVENTS_PER_ARM}), so the "
            "regression interval is unreliable; read the rate difference (Newcombe interval) instead.",
            estimand=estimand, extra={"fewest_events": fewest, "fallback": "holdout_difference"},
        )
    x_pre = x_pre[:, x_pre.std(axis=0) > 0]  # a constant covariate carries no information
    adj = _ols_treat(y_arr, t_arr, x_pre - x_pre.mean(axis=0))
    raw = _ols_treat(y_arr, t_arr, np.empty((len(y_arr), 0)))
    var_red = 1.0 - (adj["se"] / raw["se"]) ** 2 if raw["se"] > 0 else 0.0
    extra = {
        "unadjusted_effect": raw["effect"],
        "unadjusted_low": raw["low"],
        "unadjusted_high": raw["high"],
        "variance_reduction": var_red,
        "se": adj["se"],
        "unadjusted_se": raw["se"],
        "n_covariates": x_pre.shape[1],
        "fewest_events": fewest if binary else None,
        "method": "OLS y ~ treat + centred pre-period covariates, HC1 robust errors, t interval",
    }
    zh, en = _cuped_sentences(adj["effect"], adj["low"], adj["high"], var_red, unit)
    return Estimate(
        "cuped_adjusted", adj["effect"], adj["low"], adj["high"], adj["p"], unit, extra, zh, en, estimand=estimand
    )

def _fewest_events(y: np.ndarray, treat: np.ndarray) -> int:
    counts = [int(y[treat == g].sum()) for g in (0, 1)] + [int((1 - y[treat == g]).sum()) for g in (0, 1)]
    return min(counts)


def _ols_treat(y: np.ndarray, treat: np.ndarray, covariates: np.ndarray) -> dict[str, float]:
    X = np.column_stack([np.ones_like(y), treat.astype(float), covariates])
    if np.ptp(y) == 0:  # constant outcome: OLS would report a 0 ± nan interval
        return {"effect": 0.0, "low": 0.0, "high": 0.0, "se": 0.0, "p": 1.0}
    fit = sm.OLS(y, X).fit(cov_type="HC1", use_t=True)
    low, high = fit.conf_int(alpha=ALPHA)[1]
    return {"effect": float(fit.params[1]), "low": float(low), "high": float(high),
            "se": float(fit.bse[1]), "p": float(fit.pvalues[1])}


def _cuped_sentences(eff: float, low: float, high: float, var_red: float, unit: str) -> tuple[str, str]:
    v_zh, v_en = _verdict(low, high)
    metric_zh = "转化率" if unit == "proportion" else "指标"
    metric_en = "conversion rate" if unit == "proportion" else "outcome"
    zh = (
        f"用活动前的行为校正后，活动组{metric_zh}比对照组{_direction(eff, 'zh')} "
        f"{_amount(abs(eff), unit, 'zh')}{_ci(low, high, unit, 'zh')}，"
        f"校正让估计的方差降低了 {_num(max(var_red, 0.0), 'ratio', 'zh')}，{v_zh}"
    )
    en = (
        f"After adjusting for pre-campaign behaviour, the campaign group's {metric_en} is "
        f"{_amount(abs(eff), unit, 'en')} {_direction(eff, 'en')} than the holdout{_ci(low, high, unit, 'en')}; "
        f"the adjustment cut the variance by {_num(max(var_red, 0.0), 'ratio', 'en')}; {v_en}"
    )
    return zh, en
