"""The result type, its formatting for marketers, and the input checks shared by every estimator.

An `Estimate` is either published (estimate, 95% interval, p-value that agree with each other) or
withheld: the data do not meet the estimator's validity conditions, so `withheld` is True, the
numbers are NaN and `reason_zh` / `reason_en` say why in a sentence a marketer can act on.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

ALPHA = 0.05
MIN_PRE_DAYS = 14


@dataclass(frozen=True)
class Estimate:
    """One effect estimate with its 95% interval, what it estimates, and what to watch out for.

    `unit` says how to read `effect`: "proportion" (a rate difference, 0.021 = 2.1 percentage
    points), "ratio" (0.35 = +35%), "yuan", "mentions", "score" or "value". `estimand` names the
    quantity in plain words (e.g. "total incremental revenue over the campaign's users, yuan").
    `significant` is decided by the interval; `p_value` is made to agree with it (see
    `__post_init__`), so a report never says "significant" next to p = 0.08.
    """

    name: str
    effect: float
    low: float
    high: float
    p_value: float
    unit: str
    extra: dict[str, Any] = field(default_factory=dict)
    sentence_zh: str = ""
    sentence_en: str = ""
    estimand: str = ""
    warnings: tuple[str, ...] = ()
    withheld: bool = False
    reason_zh: str = ""
    reason_en: str = ""

    def __post_init__(self) -> None:
        if self.withheld:
            return
        if not all(math.isfinite(v) for v in (self.effect, self.low, self.high)):
            raise ValueError(f"{self.name}: a published estimate needs a finite effect and interval; withhold it instead")
        # Score tests and Newcombe intervals can disagree right at the 5% boundary; the interval decides.
        if self.significant and not self.p_value < ALPHA:
            object.__setattr__(self, "p_value", math.nextafter(ALPHA, 0.0))
            object.__setattr__(self, "warnings", (*self.warnings, "p-value clamped to the interval's verdict"))
        elif not self.significant and self.p_value < ALPHA:
            object.__setattr__(self, "p_value", ALPHA)
            object.__setattr__(self, "warnings", (*self.warnings, "p-value clamped to the interval's verdict"))

    @property
    def estimate(self) -> float:
        return self.effect

    @property
    def interval(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def significant(self) -> bool:
        """True when the estimate is published and its 95% interval excludes 0."""
        return bool(not self.withheld and (self.low > 0 or self.high < 0))

    def to_dict(self) -> dict[str, Any]:
        out = _jsonable(asdict(self))
        out["significant"] = self.significant
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)


def withheld(
    name: str, unit: str, reason_zh: str, reason_en: str, *, estimand: str = "", extra: dict[str, Any] | None = None,
    warnings: tuple[str, ...] = (),
) -> Estimate:
    """An estimate the data cannot support: NaN numbers, never significant, the reason as its sentence."""
    nan = math.nan
    return Estimate(
        name, nan, nan, nan, nan, unit, dict(extra or {}), f"暂不给出结论：{reason_zh}", f"Withheld: {reason_en}",
        estimand, warnings, True, reason_zh, reason_en,
    )


class IntervalLike(Protocol):
    effect: float
    low: float
    high: float
    unit: str

def _jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars → Python, NaN/inf → None, timestamps → ISO dates."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, pd.Timestamp):
        return obj.date().isoformat()
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj



# --------------------------------------------------------------------------------------------
# Human formatting and sentences
# --------------------------------------------------------------------------------------------


def _num(x: float, unit: str, lang: str) -> str:
    """Format one number for marketers; the unit decides percent points, %, ¥ or plain counts."""
    if not math.isfinite(x):
        return "无法计算" if lang == "zh" else "n/a"
    if unit == "proportion":
        return f"{x * 100:.1f}"
    if unit == "ratio":
        return f"{x * 100:.1f}%" if abs(x) < 0.1 else f"{x * 100:.0f}%"
    if unit == "yuan":
        return f"-¥{abs(x):,.2f}" if x < 0 else f"¥{x:,.2f}"
    if unit == "mentions":
        return f"{x:,.0f}"
    if unit == "score":
        return f"{x:.3f}"
    return f"{x:,.2f}"


def _unit_word(unit: str, lang: str) -> str:
    words = {
        "proportion": (" 个百分点", " percentage points"),
        "mentions": (" 条", " mentions"),
    }
    zh, en = words.get(unit, ("", ""))
    return zh if lang == "zh" else en


def _amount(x: float, unit: str, lang: str) -> str:
    return _num(x, unit, lang) + _unit_word(unit, lang)


def _ci(low: float, high: float, unit: str, lang: str, label_zh: str = "95%置信区间") -> str:
    if lang == "zh":
        return f"（{label_zh} {_num(low, unit, lang)} ~ {_num(high, unit, lang)}）"
    return f" (95% interval {_num(low, unit, lang)} to {_num(high, unit, lang)})"


def _verdict(low: float, high: float, *, roi: bool = False, series: bool = False) -> tuple[str, str]:
    """The closing clause: significant up, significant down, or 'keep observing'."""
    if low > 0:
        if roi:
            return "结果显著，活动已经回本并盈利。", "the result is significant: the campaign paid for itself."
        return "结果显著。", "the result is significant."
    if high < 0:
        if roi:
            return "结果显著：活动没有回本，建议调整。", "the result is significant: the campaign lost money."
        if series:
            return (
                "结果显著：活动期间反而低于预测，建议检查活动。",
                "the result is significant, in the wrong direction: please review the campaign.",
            )
        return (
            "结果显著：活动组反而更差，建议检查活动设置。",
            "the result is significant, in the wrong direction: please review the campaign.",
        )
    if roi:
        return (
            "区间包含 0，暂时不能确定活动能否回本，建议继续观察。",
            "the interval includes 0, so we cannot yet tell whether it pays off; keep observing.",
        )
    return (
        "区间包含 0，暂时不能确定活动有效，建议继续观察。",
        "the interval includes 0, so we cannot yet tell whether the campaign works; keep observing.",
    )


def _direction(effect: float, lang: str) -> str:
    if lang == "zh":
        return "高" if effect >= 0 else "低"
    return "higher" if effect >= 0 else "lower"


# --------------------------------------------------------------------------------------------
# Input checks (errors name what to fix, in Chinese and English)
# --------------------------------------------------------------------------------------------


def _binary(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{what} 为空，请提供至少一个用户 / {what} is empty; pass at least one user")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{what} 只能包含 0 或 1 / {what} must contain only 0/1 values")
    return arr.astype(int)


def _finite(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"{what} 为空或含缺失值 / {what} is empty or has missing/infinite values")
    return arr


def _both_arms(treat: np.ndarray) -> None:
    if treat.min() == treat.max():
        raise ValueError(
            "活动组和对照组都至少需要一个用户 / both the campaign group and the holdout need users"
        )
