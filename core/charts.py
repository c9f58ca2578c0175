"""Digest charts with Chinese text: a CJK font registered once, Agg canvas, PNG under <data_dir>/charts.

matplotlib's default DejaVu Sans has no Chinese glyphs (they render as empty boxes and warn "Glyph …
missing from font(s)"). mplfonts ships Noto Sans CJK SC inside its wheel, so the chart never depends
on what the server has installed; Debian's fonts-noto-cjk is the fallback. We draw on a Figure with
an Agg canvas (no pyplot): no global backend, no figure registry, safe in a scheduler thread.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg without switching pyplot
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

MPLFONTS_FILE = "NotoSansCJKsc-Regular.otf"
SYSTEM_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
)
COLORS = {"positive": "#4caf50", "neutral": "#b0bec5", "negative": "#e53935", "unanalysed": "#eceff1"}
LABELS_ZH = {"positive": "正面", "neutral": "中性", "negative": "负面", "unanalysed": "未分析"}


def cjk_font_path() -> Path | None:
    """mplfonts' bundled Noto Sans CJK SC, else Debian's fonts-noto-cjk, else None."""
    try:
        bundled = resources.files("mplfonts").joinpath("fonts", MPLFONTS_FILE)
        if bundled.is_file():
            return Path(str(bundled))
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    return next((path for path in SYSTEM_FONTS if path.is_file()), None)


@lru_cache(maxsize=1)
def register_cjk_font() -> str | None:
    """Add the CJK font to matplotlib's font manager once; returns its family name (None: not found)."""
    path = cjk_font_path()
    if path is None:
        warnings.warn(
            "no CJK font found: install mplfonts (pip) or fonts-noto-cjk (apt); chart text in Chinese "
            "will show empty boxes",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def chart_rc() -> dict[str, Any]:
    """rcParams for drawing with the CJK font (used in an rc_context, so other plots stay untouched)."""
    family = register_cjk_font()
    rc: dict[str, Any] = {"axes.unicode_minus": False, "font.size": 9}
    if family:
        rc["font.family"] = "sans-serif"
        rc["font.sans-serif"] = [family, "DejaVu Sans"]
    return rc


@lru_cache(maxsize=1)
def _charmap() -> frozenset[int]:
    path = cjk_font_path()
    if path is None:
        return frozenset()
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(str(path)).get_charmap())


def drawable(text: str) -> str:
    """Drop characters the font cannot draw (emoji in a topic label) instead of drawing empty boxes."""
    charmap = _charmap()
    if not charmap:
        return text
    return "".join(ch for ch in text if ord(ch) in charmap or ch.isspace())


# -- the digest chart -------------------------------------------------------------------------


@dataclass
class DayPoint:
    day: date
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    unanalysed: int = 0
    threshold_share: float | None = None  # the alert line for that day's negative share

    @property
    def negative_share(self) -> float | None:
        analysed = self.positive + self.neutral + self.negative
        return self.negative / analysed if analysed else None


@dataclass
class ChartData:
    title: str
    days: list[DayPoint]
    period_start: date
    period_end: date  # inclusive last day of the period
    share_of_voice: list[tuple[str, int]] = field(default_factory=list)
    topics: list[tuple[str, int, int]] = field(default_factory=list)  # label, posts, negative posts


def digest_chart(data: ChartData, path: Path) -> Path:
    """2×2 chart: volume by sentiment, negative share vs alert line, share of voice, top topics."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(chart_rc()):
        fig = Figure(figsize=(11, 7.5), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 2)
        fig.suptitle(drawable(data.title), fontsize=14)  # the bundled font has one weight
        _volume(axes[0][0], data)
        _negative_share(axes[0][1], data)
        _bars(
            axes[1][0],
            "声量份额（提及次数）",
            [(k, n) for k, n in data.share_of_voice],
            "#1e88e5",
            "尚未设置跟踪关键词",
        )
        _topics(axes[1][1], data.topics)
        fig.savefig(path, format="png")
    return path


def _shade(ax: Any, data: ChartData) -> None:
    start = mdates.date2num(data.period_start) - 0.5
    end = mdates.date2num(data.period_end) + 0.5
    ax.axvspan(start, end, color="#fff3c4", zorder=0, label="本期")


def _day_axis(ax: Any, data: ChartData) -> None:
    # Both time panels share the same days, whatever NaN gaps the share line has.
    first = min([p.day for p in data.days] + [data.period_start])
    ax.set_xlim(mdates.date2num(first) - 0.7, mdates.date2num(data.period_end) + 0.7)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=8))
    ax.grid(axis="y", alpha=0.3)


def _volume(ax: Any, data: ChartData) -> None:
    ax.set_title("每日声量（按情感）")
    _shade(ax, data)
    x = [mdates.date2num(p.day) for p in data.days]
    bottom = [0] * len(x)
    for key in ("negative", "neutral", "positive", "unanalysed"):
        values = [getattr(p, key) for p in data.days]
        if key == "unanalysed" and not any(values):
            continue
        ax.bar(x, values, bottom=bottom, width=0.8, color=COLORS[key], label=LABELS_ZH[key])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("帖子数")
    ax.set_ylim(0, max([*bottom, 1]) * 1.3)  # headroom so the legend does not cover the bars
    ax.legend(loc="upper left", fontsize=8, ncols=5)
    _day_axis(ax, data)


def _negative_share(ax: Any, data: ChartData) -> None:
    ax.set_title("负面占比与预警线")
    _shade(ax, data)
    x = [mdates.date2num(p.day) for p in data.days]
    share = [p.negative_share * 100 if p.negative_share is not None else float("nan") for p in data.days]
    line = [p.threshold_share * 100 if p.threshold_share is not None else float("nan") for p in data.days]
    ax.plot(x, share, marker="o", markersize=3, color=COLORS["negative"], label="负面占比")
    if any(p.threshold_share is not None for p in data.days):
        ax.step(x, line, where="mid", linestyle="--", color="#6d4c41", label="预警线")
    ax.set_ylabel("%")
    highest = max([v for v in share + line if v == v] + [10.0])  # v == v drops NaN
    ax.set_ylim(0, min(highest * 1.3, 105))
    ax.legend(loc="upper left", fontsize=8)
    _day_axis(ax, data)


def _bars(ax: Any, title: str, items: Sequence[tuple[str, int]], color: str, empty: str) -> None:
    ax.set_title(title)
    if not items:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="#78909c")
        ax.set_axis_off()
        return
    labels = [drawable(label) or "?" for label, _ in items][::-1]
    values = [n for _, n in items][::-1]
    ax.barh(labels, values, color=color, height=0.6)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)


def _topics(ax: Any, topics: Sequence[tuple[str, int, int]]) -> None:
    ax.set_title("热门话题（本期帖子数）")
    if not topics:
        ax.text(0.5, 0.5, "本期暂无话题", ha="center", va="center", transform=ax.transAxes, color="#78909c")
        ax.set_axis_off()
        return
    labels = [drawable(label)[:14] or "?" for label, _, _ in topics][::-1]
    negative = [neg for _, _, neg in topics][::-1]
    other = [n - neg for _, n, neg in topics][::-1]
    ax.barh(labels, negative, color=COLORS["negative"], label="负面", height=0.6)
    ax.barh(labels, other, left=negative, color="#90caf9", label="其他", height=0.6)
    for y, (neg, rest) in enumerate(zip(negative, other, strict=True)):
        ax.text(neg + rest, y, f" {neg + rest}", va="center", fontsize=8)
    ax.margins(x=0.15)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
