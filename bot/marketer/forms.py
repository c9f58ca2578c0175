"""Reading what a marketer types into the /campaign wizard: dates, yuan, percentages, coupon amounts,
keyword lists, and a slug suggestion. Pure functions (no Telegram, no store), so they are unit-tested
on their own; the domain rules themselves (lengths, ranges, slug shape) stay in commerce.campaigns.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo

from core.domain import CAMPAIGN_SLUG_RE

_TODAY = {"今天", "今日", "即日", "现在", "马上", "today", "now"}
_TOMORROW = {"明天", "明日", "tomorrow"}
_OPEN_END = {"长期", "不限", "无", "没有", "不设", "不结束", "永久", "open", "none", "-"}
_ISO_DAY = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_MONTH_DAY = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})日?$")
_IN_DAYS = re.compile(r"^\+?(\d{1,3})\s*(?:天后|天|days?|d)$")
_NUMBER = re.compile(r"^\d+(?:\.\d{1,2})?$")
_THRESHOLD = re.compile(r"^满\s*(\d+(?:\.\d{1,2})?)\s*(?:元)?\s*减\s*(\d+(?:\.\d{1,2})?)\s*(?:元)?$")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
MAX_YUAN = 10_000_000  # Campaign.cost_cents allows up to ¥10,000,000


def parse_day(text: str, today: date) -> date | None:
    """今天 / 明天 / 7天后 / 2026-12-01 / 2026年12月1日 / 12-01 (this year, or next if already past)."""
    value = _clean(text)
    if value in _TODAY:
        return today
    if value in _TOMORROW:
        return today + timedelta(days=1)
    if value == "后天":
        return today + timedelta(days=2)
    if match := _IN_DAYS.match(value):
        return today + timedelta(days=int(match.group(1)))
    try:
        if match := _ISO_DAY.match(value):
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if match := _MONTH_DAY.match(value):
            day = date(today.year, int(match.group(1)), int(match.group(2)))
            return day if day >= today else date(today.year + 1, day.month, day.day)
    except ValueError:  # 2026-02-30 and the like
        return None
    return None


def is_open_end(text: str) -> bool:
    return _clean(text) in _OPEN_END


def start_moment(day: date, zone: tzinfo) -> datetime:
    """Campaigns start at local midnight, so one that starts "today" is already running."""
    return datetime.combine(day, time.min, tzinfo=zone)


def end_moment(day: date, zone: tzinfo) -> datetime:
    """A bare end date includes that whole day (the same rule as `xianke campaign create --ends`)."""
    return datetime.combine(day, time(23, 59, 59, 999000), tzinfo=zone)


def parse_yuan(text: str) -> int | None:
    """'800', '¥1,200.5', '800元' → cents; None when it is not a non-negative amount."""
    value = _clean(text).replace(",", "").replace("，", "").lstrip("¥￥").removesuffix("元").strip()
    if not _NUMBER.match(value):
        return None
    yuan = float(value)
    return round(yuan * 100) if yuan <= MAX_YUAN else None


def parse_percent(text: str) -> float | None:
    """'20', '20%', '百分之20' → 20.0 (range checks are the campaign's own)."""
    value = _clean(text).removeprefix("百分之").rstrip("%％").strip()
    return float(value) if _NUMBER.match(value) else None


def parse_coupon_amount(text: str) -> tuple[int, int] | None:
    """(discount_cents, min_spend_cents) from '20' / '20元' (no threshold) or '满100减20'."""
    value = _clean(text).replace(" ", "")
    if match := _THRESHOLD.match(value):
        return round(float(match.group(2)) * 100), round(float(match.group(1)) * 100)
    cents = parse_yuan(value)
    return (cents, 0) if cents is not None else None


def parse_keywords(text: str) -> list[str]:
    """Comma, 、 or ； separated; blanks dropped, order kept (duplicates are the campaign's to drop)."""
    return [w.strip() for w in re.split(r"[,，、;；\n]+", text) if w.strip()]


def suggest_slug(name: str, today: date, taken: set[str]) -> str:
    """A free slug from the ASCII words in the name (e.g. 'Spring QR 海报' → spring_qr), else a dated one
    (xk1128). `taken` holds lower-cased slugs already used; a numeric suffix makes it unique."""
    words = [w.lower() for w in _ASCII_WORD.findall(name)]
    base = "_".join(words)[:40].strip("_") if words else ""
    if not base or not CAMPAIGN_SLUG_RE.match(base) or base.startswith("ref_"):
        base = f"xk{today:%m%d}"
    candidate, n = base, 2
    while candidate.lower() in taken:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def _clean(text: str) -> str:
    return (text or "").strip().lower()
