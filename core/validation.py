"""One input policy for every edge: files, HTTP bodies, CSV rows, CLI flags and Telegram text.

Edges differ in what a *record* is (a post, an order, a catalog row) but share what can go wrong
with raw input, so the checks for that live here once:

- bytes → text: UTF-8 (with or without BOM), UTF-16 with BOM or GB18030; binary is refused
  (`decode_bytes`).
- JSON: nesting is bounded before parsing (no RecursionError), integers longer than
  `MAX_INT_DIGITS` become `HugeNumber` instead of a ValueError or a value SQLite cannot bind
  (`loads_json`).
- text: lone surrogates (a `"\\ud800"` JSON escape) cannot be stored as UTF-8; free text gets
  U+FFFD in their place, identifiers are refused (`free_text`, `has_lone_surrogate`).
- numbers: integers within a range, floats finite (`bounded_int`, `finite_float`).
- CSV: records are split by quote balance, so an unclosed quote is reported on its own line and
  the valid row after it is still read (`csv_records`).

Reasons are short bilingual strings (English / 中文) the caller puts into its report.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 32  # real posts, orders and catalogs nest 4 deep at most
MAX_INT_DIGITS = 40  # ids and amounts fit in 20 digits; more is a paste accident or an attack
SQLITE_INT_MAX = 2**63 - 1
TELEGRAM_ID_MAX = 2**53  # Telegram promises ids fit in 52 bits (a double); more is a typo
MAX_CSV_RECORD_LINES = 200  # a quoted field may span lines, but not a whole file

_ENCODINGS = ("utf-8-sig", "gb18030")  # utf-8-sig also reads plain UTF-8; GB18030 is a superset of GBK
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_JSON_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")
_INT_TEXT_RE = re.compile(r"\s*[+-]?\d+(?:\.0+)?\s*")


class InputRejected(ValueError):
    """Raw input that cannot be used at all; the message is the reason to show."""


class FileRejected(InputRejected):
    """The whole file is unusable (binary, unknown encoding or type); the message says why."""


class HugeNumber(str):
    """A JSON integer with more than MAX_INT_DIGITS digits, kept as its digits so it can be reported."""

    def __repr__(self) -> str:
        return f"HugeNumber({len(self)} digits)"


# -- bytes and text ------------------------------------------------------------------------------


def looks_binary(text: str) -> bool:
    """Control characters or decoding replacement marks in bulk mean this was never text."""
    if "\x00" in text:
        return True
    sample = text[:4096]
    bad = sum(
        1
        for ch in sample
        if ch == "\ufffd" or (unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in "\n\r\t")
    )
    return bad > max(2, len(sample) * 0.05)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """(text, encoding) trying UTF-8, UTF-8 with BOM, UTF-16 with BOM and GB18030, or FileRejected."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return free_text(data.decode("utf-16")), "utf-16"
        except UnicodeDecodeError:
            raise FileRejected("broken UTF-16 text / UTF-16 编码损坏") from None
    if b"\x00" in data[:65536]:
        raise FileRejected("binary file (contains NUL bytes), not JSON/CSV text / 二进制文件")
    for encoding in _ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if looks_binary(text[:65536]):
            raise FileRejected("binary file (control characters), not JSON/CSV text / 二进制文件")
        return text, encoding
    raise FileRejected("unknown text encoding: save the file as UTF-8 (GBK/GB18030 also accepted) / 编码无法识别")


def has_lone_surrogate(text: str) -> bool:
    """True when `text` holds a surrogate code point, which has no UTF-8 form and SQLite refuses."""
    return _SURROGATE_RE.search(text) is not None


def free_text(text: str) -> str:
    """Free text made storable: each lone surrogate becomes U+FFFD, everything else is kept."""
    return _SURROGATE_RE.sub("\ufffd", text)


def identifier_reason(value: Any, name: str) -> str | None:
    """Why `value` cannot serve as an identifier (a surrogate or a huge number), or None."""
    if isinstance(value, HugeNumber):
        return f"{name} is a number with {len(value)} digits (at most {MAX_INT_DIGITS}) / {name} 数字过长"
    if isinstance(value, str) and has_lone_surrogate(value):
        return f"{name} contains an invalid character (lone surrogate) / {name} 含无效字符"
    return None


def poison_reason(value: Any, name: str = "value") -> str | None:
    """The first part of a parsed structure that cannot be stored (surrogate, huge number, nan/inf)."""
    if isinstance(value, str):
        return identifier_reason(value, name)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} is {value} (numbers must be finite) / {name} 不是有限数字"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > SQLITE_INT_MAX:
        return f"{name} is too large / {name} 数字过大"
    if isinstance(value, dict):
        items: Any = [(f"{name}.{key}" if name != "value" else str(key), v) for key, v in value.items()]
        for key in value:
            if isinstance(key, str) and has_lone_surrogate(key):
                return "a field name contains an invalid character / 字段名含无效字符"
    elif isinstance(value, list):
        items = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for child_name, child in items:
        reason = poison_reason(child, free_text(child_name)[:64])
        if reason:
            return reason
    return None


# -- JSON ---------------------------------------------------------------------------------------


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in JSON text, counted without parsing it."""
    brackets = _BRACKET_RE.findall(_JSON_STRING_RE.sub('""', text))
    if not brackets:
        return 0
    return max(accumulate(1 if b in "[{" else -1 for b in brackets))


def _parse_int(digits: str) -> int | HugeNumber:
    return HugeNumber(digits) if len(digits.lstrip("-")) > MAX_INT_DIGITS else int(digits)


def loads_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON under the shared policy, or raise InputRejected with the reason.

    Bytes must be UTF-8. NaN/Infinity literals and 1e999 parse to non-finite floats, which the
    number checks below refuse wherever a number is expected.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputRejected(f"not UTF-8 (byte {exc.start}) / 不是 UTF-8 编码") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise InputRejected(f"JSON nests {depth} levels deep (at most {max_depth}) / JSON 嵌套过深")
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise InputRejected(f"not valid JSON ({exc.msg}, line {exc.lineno}) / 不是合法 JSON") from None
    except (RecursionError, ValueError) as exc:  # belt and braces: the depth scan should catch these
        raise InputRejected(f"unreadable JSON ({type(exc).__name__}) / JSON 无法读取") from None


# -- numbers ------------------------------------------------------------------------------------


def bounded_int(value: Any, name: str, low: int, high: int) -> int | str:
    """An int in [low, high] from an int, an integral float or digits; else the reason (a str).

    Digits are read without going through float, so 400 digits are refused, not an OverflowError.
    """
    number: int | None = None
    if isinstance(value, HugeNumber) or (isinstance(value, str) and len(value.strip()) > MAX_INT_DIGITS + 4):
        return f"{name}：数字过长（{len(value.strip())} 位） / {name} has too many digits"
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)  # spreadsheets turn integers into floats
    elif isinstance(value, str) and len(value) <= MAX_INT_DIGITS + 4 and _INT_TEXT_RE.fullmatch(value):
        number = int(value.strip().split(".")[0])
    if number is None:
        return f"{name}：必须是整数（收到 {str(value)[:30]!r}） / {name} must be an integer"
    if not low <= number <= high:
        return f"{name}：应在 {low} 到 {high} 之间（收到 {str(number)[:30]}） / {name} out of range"
    return number


def finite_float(value: Any, name: str, low: float, high: float) -> float | str:
    """A finite float in [low, high], else the reason (nan, inf and 1e400 are never amounts)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return f"{name}：必须是数字（收到 {str(value)[:30]!r}） / {name} must be a number"
    if not math.isfinite(number):
        return f"{name}：必须是有限的数字（收到 {str(value)[:30]}） / {name} must be finite"
    if not low <= number <= high:
        return f"{name}：应在 {low:g} 到 {high:g} 之间（收到 {number:g}） / {name} out of range"
    return number


# -- dates --------------------------------------------------------------------------------------

EARLIEST_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)  # before this a date is a unit mix-up or a default
LATEST_YEARS_AHEAD = 10  # plans reach a few years ahead; 9999 is a typo


def moment_reason(moment: datetime, name: str, *, now: datetime | None = None) -> str | None:
    """Why a date is outside the sane window (2000 … ten years from now), or None."""
    latest = (now or datetime.now(UTC)) + timedelta(days=365 * LATEST_YEARS_AHEAD)
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not EARLIEST_MOMENT <= aware <= latest:
        return f"{name}：{aware.date()} 不在 2000 年到 {latest.year} 年之间 / {name} outside 2000–{latest.year}"
    return None


# -- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvProblem:
    reason: str
    raw: str


def csv_records(text: str) -> Iterator[tuple[int, list[str] | CsvProblem]]:
    """(first line number, fields) per CSV record; the header is record 1.

    A record ends where its quotes balance (RFC 4180 doubles quotes inside a field, so an even
    count means every quoted field is closed). A line whose quote is never closed — within
    MAX_CSV_RECORD_LINES lines or by the end of the file — is reported alone as a CsvProblem and
    reading goes on at the next line, so it cannot swallow the rows after it.
    """
    lines = text.splitlines(keepends=True)
    number = 0
    while number < len(lines):
        start = number
        quotes = lines[number].count('"')
        while quotes % 2 and number + 1 < len(lines) and number - start < MAX_CSV_RECORD_LINES:
            number += 1
            quotes += lines[number].count('"')
        if quotes % 2:
            raw = lines[start].rstrip("\r\n")
            yield start + 1, CsvProblem("unclosed quote in this row / 这一行的引号没有闭合", raw)
            number = start + 1
            continue
        chunk = "".join(lines[start : number + 1])
        spans_lines = number > start
        number += 1
        if not chunk.strip():
            continue
        try:
            rows = list(csv.reader(io.StringIO(chunk, newline=""), strict=True))
        except csv.Error as exc:
            rows, error = [], str(exc)
        else:
            error = "stray quote"
        if len(rows) == 1:
            yield start + 1, rows[0]
            continue
        raw = lines[start].rstrip("\r\n")
        if spans_lines:  # the quote opened here closed only inside later rows: this line alone is broken
            yield start + 1, CsvProblem("unclosed quote in this row / 这一行的引号没有闭合", raw)
            number = start + 1
        else:
            yield start + 1, CsvProblem(f"broken CSV row ({error}) / CSV 行损坏", raw)


def csv_dicts(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str] | CsvProblem]]]:
    """(header, rows as dicts keyed by the stripped header) — a row with extra fields is a CsvProblem."""
    records = csv_records(text)
    header: list[str] = []
    for _, first in records:
        if isinstance(first, list):
            header = [name.strip() for name in first]
        break

    def rows() -> Iterator[tuple[int, dict[str, str] | CsvProblem]]:
        for line, fields in records:
            if isinstance(fields, CsvProblem):
                yield line, fields
            elif len(fields) > len(header):
                yield line, CsvProblem("row has more fields than the header / 列数多于表头", ",".join(fields))
            else:
                yield line, {name: value for name, value in zip(header, fields, strict=False)}

    return header, rows()
