"""The digest's vocabulary, shared by every section module: the reporting Period and a Section.

Kept apart from listening/digest.py so section modules (referral_digest, stock_digest) import it
without importing the digest that registers them (no cycle, no import hidden in a function).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal

from core.clock import utc_text
from core.store import Store

Kind = Literal["daily", "weekly", "adhoc"]
KINDS: tuple[str, ...] = ("daily", "weekly", "adhoc")
WEEKDAYS_ZH = "一二三四五六日"


# -- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime  # aware, local zone
    end: datetime  # exclusive
    prev_start: datetime
    prev_end: datetime
    now: datetime
    zone: tzinfo
    tracked_brands: tuple[str, ...] = ()

    @property
    def start_utc(self) -> str:
        return utc_text(self.start)

    @property
    def end_utc(self) -> str:
        return utc_text(self.end)

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()

    @property
    def versus_zh(self) -> str:
        return {"daily": "较前一日", "weekly": "较上周"}.get(self.kind, "较前24小时")

    @property
    def label_zh(self) -> str:
        if self.kind == "daily":
            return f"{_md(self.start)}（周{WEEKDAYS_ZH[self.start.weekday()]}）"
        if self.kind == "weekly":
            return f"{_md(self.start)}–{_md(self.end - timedelta(days=1))}"
        return f"截至 {_md(self.end)} {self.end:%H:%M}（近24小时）"


def _md(moment: datetime | date) -> str:
    return f"{moment.month}月{moment.day}日"


def midnight(day: date, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def period_for(kind: str, now: datetime, zone: tzinfo, tracked_brands: Iterable[str] = ()) -> Period:
    """The period a digest of `kind` built at `now` reports on, and the one before it."""
    if kind not in KINDS:
        raise ValueError(f"digest kind must be one of {', '.join(KINDS)}, not {kind!r}")
    local = now.astimezone(zone)
    today = local.date()
    if kind == "daily":
        start, end = midnight(today - timedelta(days=1), zone), midnight(today, zone)
        prev_start = midnight(today - timedelta(days=2), zone)
    elif kind == "weekly":
        monday = today - timedelta(days=today.weekday())
        start, end = midnight(monday - timedelta(days=7), zone), midnight(monday, zone)
        prev_start = midnight(monday - timedelta(days=14), zone)
    else:
        start, end, prev_start = local - timedelta(hours=24), local, local - timedelta(hours=48)
    return Period(kind, start, end, prev_start, start, local, zone, tuple(tracked_brands))


# -- sections ---------------------------------------------------------------------------------


@dataclass
class Section:
    key: str
    title: str
    lines: list[str]  # Telegram HTML; user text already escaped
    data: dict[str, Any] = field(default_factory=dict)  # JSON-able numbers and post ids


SectionFn = Callable[[Store, Period], Section | None]
