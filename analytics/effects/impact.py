"""CausalImpact-style effect of a campaign on a daily series (mentions, sentiment).

Validity conditions checked on the data (each failure withholds the estimate with its reason)
- At least `MIN_PRE_DAYS` of pre-period and no missing day in the campaign window.
- Placebo: the same model, fitted on the pre-period minus its last `w` days, must NOT find an
  "effect" in those `w` days (w = campaign length, at most a quarter of the pre-period). If it
  does, the model does not describe the series and its post-period forecast is not trusted.
- Controls unaffected: each control series, forecast from its own pre-period, must not move in
  the campaign window. A control the campaign moves (e.g. "all other posts", which a campaign
  itself inflates) turns the campaign into a fake drop of the target: the issue measured 98% false
  positives. For series the marketer names as unaffected (`controls_named=True`) a move is a
  warning instead.
Scale: counts (inferred from non-negative integers, stated in `extra["counts"]`) with a pre-period
mean ≥ `LOG_MIN_MEAN` are modelled on log1p; low counts on their own scale, because expm1 of a
Gaussian log1p forecast overstates a 3-a-day series by ~10% (issue 18).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.effects.impact_model import _fit_and_draw
from analytics.effects.result import (
    ALPHA,
    MIN_PRE_DAYS,
    Estimate,
    _amount,
    _ci,
    _direction,
    _num,
    _verdict,
    withheld,
)

LOG_MIN_MEAN = 20.0
IMPACT_ESTIMAND = "actual − counterfactual (no-campaign forecast) over the campaign window"


@dataclass(frozen=True)
class Counterfactual:
    """Predictive draws of the post-period series had there been no campaign (original scale)."""

    draws: np.ndarray  # shape (post days, n_draws)
    post_index: pd.DatetimeIndex
    counts: bool
    model: str  # which specification was used after any fallback
    params: dict[str, float]
    converged: bool
    notes: tuple[str, ...] = ()


_METRICS = {"mentions": ("提及量", "mentions"), "sentiment": ("情感得分", "sentiment score")}


def causal_impact(
    y: pd.Series,
    pre_end: Any,
    post_start: Any,
    post_end: Any,
    controls: pd.DataFrame | pd.Series | None = None,
    *,
    counts: bool | None = None,
    controls_named: bool = False,
    checks: bool = True,
    metric: str = "mentions",
    n_draws: int = 2000,
    seed: int = 0,
    stochastic_seasonal: bool = False,
    maxiter: int = 200,
) -> Estimate:
    """Effect of a campaign on a daily series: actual − counterfactual forecast from the pre-period.

    The counterfactual is an UnobservedComponents model fitted on the pre-period only (local level
    or constant + AR(1), weekly seasonal, the controls as regressors; see impact_model). The
    headline `effect` is the cumulative effect for counts and the average daily effect otherwise.
    `checks=False` skips the placebo and control checks (simulations that study the model alone).
    """
    counts = _infer_counts(y) if counts is None else counts
    kw = {"counts": counts, "n_draws": n_draws, "seed": seed, "stochastic_seasonal": stochastic_seasonal,
          "maxiter": maxiter}
    cf = counterfactual_forecast(y, pre_end, post_start, post_end, controls, **kw)
    est = impact_from_counterfactual(cf, y, metric=metric)
    if not checks:
        return est
    reason = _placebo_failure(y, pre_end, post_start, post_end, controls, kw)
    moved = _moved_controls(controls, pre_end, post_start, post_end, kw) if controls is not None else []
    warnings_ = list(est.warnings)
    if moved and controls_named:
        warnings_.append(f"named control(s) {moved} moved during the campaign")
    elif moved:
        reason = reason or (
            f"对照序列 {'、'.join(moved)} 在活动期间也明显变化，可能受到了活动影响，用它做对照会把活动算成下降或上升；"
            "请指定不受活动影响的对照（如不含活动关键词的竞品/品牌提及）。",
            f"control series {moved} moved during the campaign too, so the campaign may have moved them; name "
            "controls the campaign cannot touch (e.g. competitor/brand mentions without the campaign keywords).",
        )
    if reason:
        return withheld(est.name, est.unit, reason[0], reason[1], estimand=IMPACT_ESTIMAND,
                        extra={**est.extra, "daily": []}, warnings=tuple(warnings_))
    return Estimate(est.name, est.effect, est.low, est.high, est.p_value, est.unit, est.extra, est.sentence_zh,
                    est.sentence_en, IMPACT_ESTIMAND, tuple(warnings_))


def _infer_counts(y: pd.Series) -> bool:
    values = pd.to_numeric(y, errors="coerce").dropna().to_numpy(float)
    return bool(values.size and (values >= 0).all() and np.equal(np.mod(values, 1), 0).all())


def _placebo_failure(
    y: pd.Series, pre_end: Any, post_start: Any, post_end: Any, controls: Any, kw: dict[str, Any]
) -> tuple[str, str] | None:
    """Pretend the campaign started `w` days before it did; a 'significant' effect there fails the fit."""
    pre_end, post_start, post_end = (pd.Timestamp(d).normalize() for d in (pre_end, post_start, post_end))
    pre_days = int(y[:pre_end].notna().sum())
    w = min((post_end - post_start).days + 1, pre_days // 4)
    if w < 3 or pre_days - w < MIN_PRE_DAYS:
        return None  # too short for a placebo window; the main fit's own checks still apply
    fake_end = pre_end - pd.Timedelta(days=w)
    y_pre = y[:pre_end]
    ctrl = None if controls is None else controls[:pre_end]
    cf = counterfactual_forecast(y_pre, fake_end, fake_end + pd.Timedelta(days=1), pre_end, ctrl, **kw)
    placebo = impact_from_counterfactual(cf, y_pre)
    if not placebo.significant:
        return None
    return (
        f"安慰剂检验未通过：把活动开始日提前 {w} 天（那时还没有活动），模型也“发现”了效果（p = {placebo.p_value:.3f}），"
        "说明模型没能描述活动前的序列，预测不可信。",
        f"placebo test failed: pretending the campaign started {w} days earlier (before it existed) also finds an "
        f"'effect' (p = {placebo.p_value:.3f}), so the model does not describe the pre-period.",
    )


def _moved_controls(
    controls: pd.DataFrame | pd.Series, pre_end: Any, post_start: Any, post_end: Any, kw: dict[str, Any]
) -> list[str]:
    """Controls whose own forecast (from their own pre-period) misses the campaign window."""
    frame = controls.to_frame() if isinstance(controls, pd.Series) else controls
    moved = []
    for name in frame.columns:
        series = frame[name].astype(float)
        cf = counterfactual_forecast(series, pre_end, post_start, post_end, None, **{**kw, "counts": _infer_counts(series)})
        if impact_from_counterfactual(cf, series).significant:
            moved.append(str(name))
    return moved


def counterfactual_forecast(
    y: pd.Series,
    pre_end: Any,
    post_start: Any,
    post_end: Any,
    controls: pd.DataFrame | pd.Series | None = None,
    *,
    counts: bool | None = None,
    n_draws: int = 2000,
    seed: int = 0,
    stochastic_seasonal: bool = False,
    maxiter: int = 200,
) -> Counterfactual:
    """Fit on the pre-period and draw the post-period counterfactual. Uses y only up to `pre_end`."""
    series, pre_end, post_start, post_end = _daily(y, pre_end, post_start, post_end)
    pre = series[:pre_end]
    if pre.notna().sum() < MIN_PRE_DAYS:
        raise ValueError(
            f"活动前数据只有 {int(pre.notna().sum())} 天，至少需要 {MIN_PRE_DAYS} 天才能预测"
            f" / the pre-period has only {int(pre.notna().sum())} days of data; need at least {MIN_PRE_DAYS}"
        )
    counts = _infer_counts(pre) if counts is None else counts
    if counts and (pre < 0).any():
        raise ValueError("计数序列不能为负 / a count series cannot be negative; pass counts=False")
    horizon = pd.date_range(pre_end + pd.Timedelta(days=1), post_end, freq="D")
    log = bool(counts and np.nanmean(pre.to_numpy(float)) >= LOG_MIN_MEAN)
    X_pre, X_fut, notes = _exog(controls, pre.index, horizon, log=log)
    endog = np.log1p(pre.to_numpy(float)) if log else pre.to_numpy(float)
    rng = np.random.default_rng(seed)
    draws, model, params, converged, more = _fit_and_draw(
        endog, X_pre, X_fut, len(horizon), n_draws, rng, stochastic_seasonal, maxiter, counts, log
    )
    keep = horizon >= post_start
    draws = draws[keep]
    if log:
        draws = np.clip(np.expm1(draws), 0.0, None)
    scale = "log1p" if log else "identity"
    return Counterfactual(draws, horizon[keep], counts, model, params, converged, (*notes, *more, f"scale {scale}"))


def impact_from_counterfactual(cf: Counterfactual, y: pd.Series, *, metric: str = "mentions") -> Estimate:
    """Compare the actual post-period values with the counterfactual draws."""
    actual = _post_actual(y, cf.post_index)
    pred_total = cf.draws.sum(axis=0)
    cum = actual.sum() - pred_total
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(pred_total > 0, cum / pred_total, np.nan)
    days = len(actual)
    cum_lo, cum_hi = np.quantile(cum, [ALPHA / 2, 1 - ALPHA / 2])
    rel_lo, rel_hi = _nanquantile(rel)
    k_hi = int((pred_total >= actual.sum()).sum())
    k_lo = int((pred_total <= actual.sum()).sum())
    p_value = min(1.0, 2 * (min(k_hi, k_lo) + 1) / (len(pred_total) + 1))
    extra = {
        "actual_total": float(actual.sum()),
        "predicted_total": float(pred_total.mean()),
        "predicted_low": float(np.quantile(pred_total, ALPHA / 2)),
        "predicted_high": float(np.quantile(pred_total, 1 - ALPHA / 2)),
        "cumulative_effect": float(cum.mean()),
        "cumulative_low": float(cum_lo),
        "cumulative_high": float(cum_hi),
        "average_effect": float(cum.mean() / days),
        "average_low": float(cum_lo / days),
        "average_high": float(cum_hi / days),
        "relative_effect": float(cum.mean() / pred_total.mean()) if pred_total.mean() > 0 else math.nan,
        "relative_low": rel_lo,
        "relative_high": rel_hi,
        "post_start": cf.post_index[0],
        "post_end": cf.post_index[-1],
        "model": cf.model,
        "converged": cf.converged,
        "params": cf.params,
        "notes": list(cf.notes),
        "counts": cf.counts,
        "daily": _daily_table(cf, actual),
    }
    if cf.counts:
        name, eff, low, high, unit = "causal_impact", extra["cumulative_effect"], cum_lo, cum_hi, "mentions"
    else:
        name, eff, low, high = "causal_impact", extra["average_effect"], cum_lo / days, cum_hi / days
        unit = "score"
    zh, en = _impact_sentences(extra, metric, unit, float(low), float(high))
    return Estimate(name, float(eff), float(low), float(high), p_value, unit, extra, zh, en)


def _nanquantile(x: np.ndarray) -> tuple[float, float]:
    if not np.isfinite(x).any():
        return math.nan, math.nan
    lo, hi = np.nanquantile(x, [ALPHA / 2, 1 - ALPHA / 2])
    return float(lo), float(hi)


def _daily_table(cf: Counterfactual, actual: np.ndarray) -> list[dict[str, Any]]:
    lo, hi = np.quantile(cf.draws, [ALPHA / 2, 1 - ALPHA / 2], axis=1)
    mean = cf.draws.mean(axis=1)
    return [
        {"date": d, "actual": float(a), "predicted": float(m), "low": float(lo_), "high": float(hi_)}
        for d, a, m, lo_, hi_ in zip(cf.post_index, actual, mean, lo, hi, strict=True)
    ]


def _impact_sentences(extra: dict[str, Any], metric: str, unit: str, low: float, high: float) -> tuple[str, str]:
    m_zh, m_en = _METRICS.get(metric, (metric, metric))
    start, end = extra["post_start"].date().isoformat(), extra["post_end"].date().isoformat()
    v_zh, v_en = _verdict(low, high, series=True)
    rel_zh = rel_en = ""
    if unit == "mentions" and math.isfinite(extra["relative_effect"]):  # % of a score is meaningless
        r, rl, rh = extra["relative_effect"], extra["relative_low"], extra["relative_high"]
        rel_zh = f"，相对变化 {_num(r, 'ratio', 'zh')}{_ci(rl, rh, 'ratio', 'zh', '95%区间')}"
        rel_en = f", a relative change of {_num(r, 'ratio', 'en')}{_ci(rl, rh, 'ratio', 'en')}"
    if unit == "mentions":
        eff = extra["cumulative_effect"]
        zh = (
            f"活动期间（{start} 至 {end}）实际{m_zh} {_amount(extra['actual_total'], unit, 'zh')}，"
            f"模型预测如果没有活动约为 {_amount(extra['predicted_total'], unit, 'zh')}，"
            f"{'多出' if eff >= 0 else '减少'} {_amount(abs(eff), unit, 'zh')}"
            f"{_ci(low, high, unit, 'zh', '95%区间')}{rel_zh}，{v_zh}"
        )
        en = (
            f"During the campaign ({start} to {end}) there were {_amount(extra['actual_total'], unit, 'en')}; "
            f"without the campaign the model expects about {_amount(extra['predicted_total'], unit, 'en')}, "
            f"a difference of {_amount(eff, unit, 'en')}{_ci(low, high, unit, 'en')}{rel_en}; {v_en}"
        )
        return zh, en
    eff = extra["average_effect"]
    zh = (
        f"活动期间（{start} 至 {end}）平均每天的{m_zh}比模型预测的无活动水平{_direction(eff, 'zh')} "
        f"{_num(abs(eff), unit, 'zh')}{_ci(low, high, unit, 'zh', '95%区间')}，{v_zh}"
    )
    en = (
        f"During the campaign ({start} to {end}) the daily {m_en} was on average {_num(abs(eff), unit, 'en')} "
        f"{_direction(eff, 'en')} than the no-campaign forecast{_ci(low, high, unit, 'en')}; {v_en}"
    )
    return zh, en


def _daily(y: pd.Series, pre_end: Any, post_start: Any, post_end: Any) -> tuple[pd.Series, Any, Any, Any]:
    if not isinstance(y, pd.Series) or not isinstance(y.index, pd.DatetimeIndex):
        raise ValueError("y 必须是按日期索引的 pandas Series / y must be a pandas Series with a DatetimeIndex")
    pre_end, post_start, post_end = (pd.Timestamp(d).normalize() for d in (pre_end, post_start, post_end))
    if not pre_end < post_start <= post_end:
        raise ValueError(
            "日期顺序应为 活动前结束 < 活动开始 ≤ 活动结束 / dates must satisfy pre_end < post_start <= post_end"
        )
    s = y.copy()
    s.index = s.index.normalize()
    if s.index.has_duplicates:
        raise ValueError("同一天出现多行，请先按天汇总 / duplicate days in y; aggregate to one row per day")
    s = s.sort_index().asfreq("D").astype(float)  # missing days become NaN, which the Kalman filter skips
    return s, pre_end, post_start, post_end


def _post_actual(y: pd.Series, post_index: pd.DatetimeIndex) -> np.ndarray:
    s = y.copy()
    s.index = pd.DatetimeIndex(s.index).normalize()
    actual = s.reindex(post_index).to_numpy(float)
    if not np.isfinite(actual).all():
        raise ValueError(
            "活动期间有缺失的日期，请补齐（没有提及请填 0）"
            " / the campaign window has missing days; fill them (use 0 for days without mentions)"
        )
    return actual


def _exog(
    controls: pd.DataFrame | pd.Series | None, pre_index: pd.DatetimeIndex, horizon: pd.DatetimeIndex, *, log: bool
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[str, ...]]:
    """Align control series to the pre-period and forecast horizon; drop constant ones."""
    if controls is None:
        return None, None, ()
    ctrl = controls.to_frame() if isinstance(controls, pd.Series) else controls.copy()
    ctrl.index = pd.DatetimeIndex(ctrl.index).normalize()
    full = ctrl.reindex(pre_index.append(horizon)).astype(float)
    if full.isna().any().any():
        raise ValueError(
            "对照序列需要覆盖活动前和活动期间的每一天 / controls must have a value for every pre and post day"
        )
    if log:
        if (full < 0).any().any():
            raise ValueError("对照计数不能为负 / control counts cannot be negative")
        full = np.log1p(full)
    pre_part = full.iloc[: len(pre_index)]
    keep = pre_part.std() > 0
    notes = tuple(f"dropped constant control {c!r}" for c in full.columns[~keep])
    if not keep.any():
        return None, None, notes
    full = full.loc[:, keep]
    return full.iloc[: len(pre_index)].to_numpy(), full.iloc[len(pre_index) :].to_numpy(), notes
