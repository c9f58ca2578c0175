"""One validator for a social post payload, shared by every connector (files, HTTP, Telegram).

A payload is a mapping {source, external_id, text, created_at, author?, url?, lang?}. Validation
either yields a clean `PostRecord` (normalised text, hash, tags, language, UTC timestamp) or a list
of short, bilingual reasons that a marketer can act on. Unknown keys are ignored so connectors can
pass their raw rows through.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from core.validation import HugeNumber, free_text, identifier_reason, looks_binary
from nlp.text import clean_post, text_hash

__all__ = ["PostRecord", "format_utc", "looks_binary", "parse_timestamp", "validate_post"]

MAX_TEXT_CHARS = 10_000
MAX_SOURCE_CHARS = 64
MAX_EXTERNAL_ID_CHARS = 128
MAX_AUTHOR_CHARS = 256
MAX_URL_CHARS = 2048
# Posts older than this are almost always a unit mix-up (ms read as s, a default 1970 date).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Clocks drift; a day of slack keeps a slightly-fast client from being rejected.
FUTURE_SLACK = timedelta(days=1)

_SOURCE_RE = re.compile(r"^[\w.:@/-]+$")  # \w: letters of any script (微博 is a fine source name)
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")
_URL_RE = re.compile(r"^https?://[^\s/]+\S*$", re.IGNORECASE)
_EPOCH_RE = re.compile(r"^\d{9,13}(?:\.\d+)?$")
_DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class PostRecord:
    """A validated post. `author` is the raw id and must be hashed before it is stored."""

    source: str
    external_id: str
    text: str
    text_norm: str
    text_hash: str
    created_at: str  # UTC, ISO 8601 with milliseconds and "Z", like the store's own defaults
    lang: str
    tags: list[str] = field(default_factory=list)
    author: str | None = None
    url: str | None = None


def validate_post(
    payload: Any, *, zone: tzinfo = _DEFAULT_ZONE, now: datetime | None = None
) -> PostRecord | list[str]:
    """A `PostRecord`, or the reasons (non-empty list) why the payload cannot be stored.

    Naive timestamps are read in `zone` (the shop's time zone), then stored as UTC.
    """
    if not isinstance(payload, Mapping):
        return [f"item must be a JSON object, got {_type_name(payload)} / 每条数据必须是对象"]
    reasons: list[str] = []
    source = _short_string(payload.get("source"), "source", MAX_SOURCE_CHARS, reasons)
    if source is not None and not _SOURCE_RE.match(source):
        reasons.append("source may only contain letters, digits and _ . : @ / - (no spaces) / 来源含非法字符")
    external_id = _external_id(payload.get("external_id"), reasons)
    text = _text(payload.get("text"), reasons)
    created_at = _timestamp(payload.get("created_at"), zone, now or datetime.now(UTC), reasons)
    author = _optional_string(payload.get("author"), "author", MAX_AUTHOR_CHARS, reasons, allow_int=True)
    url = _optional_string(payload.get("url"), "url", MAX_URL_CHARS, reasons)
    if url is not None and not _URL_RE.match(url):
        reasons.append("url must start with http:// or https:// / 链接格式不对")
    lang = _optional_string(payload.get("lang"), "lang", 16, reasons)
    if lang is not None and not _LANG_RE.match(lang):
        reasons.append("lang must be a language code such as zh or en / 语言代码无效")

    cleaned = None
    if text is not None:
        cleaned = clean_post(text)
        if not cleaned.text:
            reasons.append("text is empty after removing links, mentions and emoji codes / 清洗后内容为空")
    if reasons:
        return reasons
    assert source and external_id and text and created_at and cleaned  # for the type checker
    return PostRecord(
        source=source,
        external_id=external_id,
        text=text,
        text_norm=cleaned.text,
        text_hash=text_hash(cleaned.text),
        created_at=created_at,
        lang=(lang or cleaned.lang).lower(),
        tags=cleaned.tags,
        author=author,
        url=url,
    )


# -- field checks ---------------------------------------------------------------


def _type_name(value: Any) -> str:
    if isinstance(value, HugeNumber):
        return f"a number of {len(value)} digits"
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _short_string(value: Any, name: str, limit: int, reasons: list[str]) -> str | None:
    if value is None or value == "":
        reasons.append(f"{name} is missing / 缺少 {name}")
        return None
    unusable = identifier_reason(value, name)
    if unusable:
        reasons.append(unusable)
        return None
    if not isinstance(value, str):
        reasons.append(f"{name} must be a string, got {_type_name(value)} / {name} 必须是字符串")
        return None
    value = value.strip()
    if not value:
        reasons.append(f"{name} is missing / 缺少 {name}")
        return None
    if len(value) > limit:
        reasons.append(f"{name} longer than {limit} characters / {name} 过长")
        return None
    return value


def _optional_string(
    value: Any, name: str, limit: int, reasons: list[str], *, allow_int: bool = False
) -> str | None:
    if value is None or value == "":
        return None
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _short_string(value, name, limit, reasons)


def _external_id(value: Any, reasons: list[str]) -> str | None:
    # Platforms use both numeric and string ids; booleans and floats are always a mistake.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))  # spreadsheets and some JSON exporters turn big integer ids into floats
    return _short_string(value, "external_id", MAX_EXTERNAL_ID_CHARS, reasons)


def _text(value: Any, reasons: list[str]) -> str | None:
    if value is None:
        reasons.append("text is missing / 缺少 text")
        return None
    if not isinstance(value, str) or isinstance(value, HugeNumber):
        reasons.append(f"text must be a string, got {_type_name(value)} / text 必须是字符串")
        return None
    value = free_text(value)  # a lone surrogate costs one character, not the post
    if len(value) > MAX_TEXT_CHARS:
        reasons.append(f"text longer than {MAX_TEXT_CHARS} characters ({len(value)}) / 内容过长")
        return None
    if not value.strip():
        reasons.append("text is empty / 内容为空")
        return None
    if looks_binary(value):
        reasons.append("text looks binary (control characters) / 内容像二进制数据")
        return None
    return value.strip()


def _timestamp(value: Any, zone: tzinfo, now: datetime, reasons: list[str]) -> str | None:
    moment = parse_timestamp(value, zone)
    if moment is None:
        if value is None or value == "":
            reasons.append("created_at is missing / 缺少 created_at")
        else:
            reasons.append("created_at is not a date (ISO 8601 or epoch seconds) / created_at 不是日期")
        return None
    if moment < EARLIEST:
        reasons.append("created_at is before 2000 / created_at 早于 2000 年")
        return None
    if moment > now + FUTURE_SLACK:
        reasons.append("created_at is in the future / created_at 在未来")
        return None
    return format_utc(moment)


def parse_timestamp(value: Any, zone: tzinfo = _DEFAULT_ZONE) -> datetime | None:
    """ISO 8601 (naive → `zone`), epoch seconds or milliseconds, or a datetime; None if unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_RE.match(text):
            value = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("/", "-"))
            except ValueError:
                return None
            return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            return None
        seconds = value / 1000 if value > 1e12 else value  # milliseconds are common in exports
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
