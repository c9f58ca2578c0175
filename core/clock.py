"""The one clock: the store's timestamp format, parsing it back, and local time for people.

Stored timestamps are UTC text with milliseconds and a 'Z' (`2026-12-01T04:05:06.789Z`): string
order equals time order, so SQL can compare and sort them as text. Everything a marketer, a customer
or staff reads is shown in the shop's zone (XIANKE_TIMEZONE, Settings.zone) via `local_text`.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")  # the shop's zone when none is configured (Settings.timezone)


def utc_text(moment: datetime | None = None) -> str:
    """`moment` (default: now) in the store's timestamp format; a naive datetime is taken as UTC."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_utc(text: str) -> datetime:
    """A stored timestamp back as an aware UTC datetime (also accepts '+00:00' and naive ISO text)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def now_local(zone: tzinfo | None = None) -> datetime:
    """Now in the shop's time zone."""
    return datetime.now(zone or DEFAULT_ZONE)


def local_text(moment: datetime | str | None, zone: tzinfo | None = None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment (or a stored timestamp) as people read it: local time in `zone`; '' for None/''."""
    if moment is None or moment == "":
        return ""
    when = parse_utc(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone or DEFAULT_ZONE).strftime(fmt)
