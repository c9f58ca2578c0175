"""Post ingestion into `posts`: idempotent, resumable, and strict about garbage.

Every connector (drop-folder files, the HTTP endpoint, Telegram groups) hands raw payloads to
`PostIngestor.ingest_records`, which validates them with `nlp.ingest_schema.validate_post`, filters
spam, drops exact duplicates (source + external id, text hash) and near duplicates (MinHash), hashes
authors with a secret salt and writes the batch in one transaction.

File ingest commits progress (`ingest_files.rows_done`) in the same transaction as each batch of
rows, so a process killed mid-file resumes at the last committed batch; the dedupe keys make any
replay harmless anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.logging import log_event
from core.settings import Settings
from core.store import Store, dumps
from core.validation import (
    CsvProblem,
    FileRejected,
    InputRejected,
    csv_dicts,
    decode_bytes,
    free_text,
    loads_json,
)
from nlp.dedupe import NearDuplicateIndex, spam_reasons
from nlp.ingest_schema import PostRecord, format_utc, validate_post

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
DEFAULT_BATCH = 200


# -- author privacy -------------------------------------------------------------


def load_author_salt(settings: Settings) -> bytes:
    """The secret that author hashes are keyed with.

    `XIANKE_AUTHOR_SALT` when set; otherwise a random salt kept in <data_dir>/author_salt (created
    once, readable only by the owner). Losing it only means old and new hashes of one author differ.
    """
    configured = getattr(settings, "author_salt", None)
    if configured is not None:
        value = configured.get_secret_value() if hasattr(configured, "get_secret_value") else str(configured)
        if value:
            return value.encode("utf-8")
    path = settings.data_dir / "author_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race; use its salt
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def hash_author(salt: bytes, author: str | None) -> str | None:
    """Keyed hash: the same author maps to the same id, but names cannot be recovered or guessed."""
    if author is None:
        return None
    # surrogatepass: a malformed author name still hashes (to its own id) instead of raising
    return hmac.new(salt, author.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


# -- reports --------------------------------------------------------------------


@dataclass
class Rejection:
    line: int
    reasons: list[str]
    row: Any = None  # a privacy-safe, truncated echo of the input for the rejects file


@dataclass
class IngestReport:
    added: int = 0
    duplicates: int = 0  # same source + external id, or same normalised text
    near_duplicates: int = 0  # MinHash match against recent posts
    rejected: list[Rejection] = field(default_factory=list)  # invalid input
    spam: list[Rejection] = field(default_factory=list)  # valid but filtered by the spam rules

    def merge(self, other: IngestReport) -> IngestReport:
        self.added += other.added
        self.duplicates += other.duplicates
        self.near_duplicates += other.near_duplicates
        self.rejected += other.rejected
        self.spam += other.spam
        return self

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "duplicates": self.duplicates,
            "near_duplicates": self.near_duplicates,
            "rejected": len(self.rejected),
            "spam": len(self.spam),
        }


def safe_echo(payload: Any, salt: bytes, limit: int = 200) -> Any:
    """What a rejects file may show of a bad row: authors hashed, long strings cut."""

    def cut(value: Any) -> Any:
        if isinstance(value, str):  # lone surrogates cannot be written to a UTF-8 rejects file
            value = free_text(str(value))
            return value if len(value) <= limit else value[:limit] + f"…(+{len(value) - limit} chars)"
        if isinstance(value, list | dict):
            text = free_text(json.dumps(value, ensure_ascii=False, default=str))
            return text if len(text) <= limit else text[:limit] + "…"
        return value

    if isinstance(payload, dict):
        echo = {free_text(str(k)[:64]): cut(v) for k, v in list(payload.items())[:20] if k != "author"}
        if payload.get("author") not in (None, ""):
            echo["author_hash"] = hash_author(salt, str(payload["author"]))
        return echo
    return cut(payload if isinstance(payload, str | int | float | bool | type(None)) else repr(payload))


# -- the ingestor ---------------------------------------------------------------


class PostIngestor:
    """Validates and stores posts. One instance per thread; reuse it so the near-duplicate index stays warm."""

    def __init__(
        self,
        store: Store,
        salt: bytes,
        *,
        zone: tzinfo = ZoneInfo("Asia/Shanghai"),
        near_duplicate_threshold: float = 0.8,
        recent_limit: int = 5000,
        spam_filter: Callable[[str], list[str]] = spam_reasons,
    ):
        self.store = store
        self.salt = salt
        self.zone = zone
        self.recent_limit = recent_limit
        self.spam_filter = spam_filter
        self._threshold = near_duplicate_threshold
        self._index: NearDuplicateIndex | None = None
        self._seen_id = 0

    # Near duplicates are checked against the most recent posts only: old reposts are rare and the
    # index must stay small enough to rebuild in well under a second.
    def _near_index(self) -> NearDuplicateIndex:
        if self._index is None or len(self._index) > 2 * self.recent_limit:
            self._index = NearDuplicateIndex(self._threshold)
            rows = self.store.query(
                "SELECT id, text_norm FROM posts ORDER BY id DESC LIMIT ?", [self.recent_limit]
            )
            self._index.extend((row["id"], row["text_norm"]) for row in reversed(rows))
            self._seen_id = rows[0]["id"] if rows else 0
        else:  # posts written by other processes since the last call
            rows = self.store.query(
                "SELECT id, text_norm FROM posts WHERE id > ? ORDER BY id", [self._seen_id]
            )
            self._index.extend((row["id"], row["text_norm"]) for row in rows)
            if rows:
                self._seen_id = rows[-1]["id"]
        return self._index

    def ingest_records(self, records: Iterable[Any], *, lines: Sequence[int] | None = None) -> IngestReport:
        """Store the good records in one transaction; report the rest with reasons.

        `lines` numbers the records for the report (default 1, 2, …): file line numbers or batch indexes.
        """
        items = list(records)
        numbers = list(lines) if lines is not None else list(range(1, len(items) + 1))
        if len(numbers) != len(items):
            raise ValueError("lines must number every record")
        report = IngestReport()
        try:
            with self.store.transaction():
                index = self._near_index()
                for number, payload in zip(numbers, items, strict=True):
                    self._ingest_one(number, payload, index, report)
        except BaseException:
            self.reset()
            raise
        return report

    def reset(self) -> None:
        """Forget the near-duplicate index (rebuilt from the store on next use), e.g. after a rollback."""
        self._index = None

    def _ingest_one(self, number: int, payload: Any, index: NearDuplicateIndex, report: IngestReport) -> None:
        record = validate_post(payload, zone=self.zone)
        if isinstance(record, list):
            report.rejected.append(Rejection(number, record, safe_echo(payload, self.salt)))
            return
        if self._exists(record):
            report.duplicates += 1
            return
        spam = self.spam_filter(record.text)
        if spam:
            report.spam.append(Rejection(number, [f"spam: {r}" for r in spam], safe_echo(payload, self.salt)))
            return
        if index.find(record.text_norm) is not None:
            report.near_duplicates += 1
            return
        cursor = self.store.db.execute(
            """INSERT OR IGNORE INTO posts
                   (source, external_id, text, text_norm, text_hash, author_hash, tags, lang, created_at, url)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                record.source,
                record.external_id,
                record.text,
                record.text_norm,
                record.text_hash,
                hash_author(self.salt, record.author),
                dumps(record.tags),
                record.lang,
                record.created_at,
                record.url,
            ],
        )
        if cursor.rowcount == 0:  # lost a race with another writer: still a duplicate, not an error
            report.duplicates += 1
            return
        index.add(cursor.lastrowid, record.text_norm)
        report.added += 1

    def _exists(self, record: PostRecord) -> bool:
        return (
            self.store.scalar(
                "SELECT 1 FROM posts WHERE text_hash = ? OR (source = ? AND external_id = ?) LIMIT 1",
                [record.text_hash, record.source, record.external_id],
            )
            is not None
        )


# -- files ----------------------------------------------------------------------


def decode_file(data: bytes) -> tuple[str, str]:
    """(text, encoding) under the shared policy (`core.validation.decode_bytes`), or FileRejected."""
    return decode_bytes(data)


def parse_rows(path: Path, text: str) -> list[tuple[int, Any]]:
    """(line number, payload) per data row; a row that cannot be parsed carries a `RowError` payload."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return list(_jsonl_rows(text))
    if suffix == ".json":
        # A JSON array, {"posts": [...]}, a single post object, or JSON lines saved as .json.
        stripped = text.strip()
        if stripped.startswith(("[", "{")):
            try:
                document = loads_json(stripped)
            except InputRejected as exc:
                if stripped.startswith("[") or "\n" not in stripped:
                    raise FileRejected(str(exc)) from None
                return list(_jsonl_rows(text))  # several objects, one per line
            if isinstance(document, dict):
                document = document["posts"] if isinstance(document.get("posts"), list) else [document]
            return [(i, item) for i, item in enumerate(document, start=1)]  # numbered by item, not line
        return list(_jsonl_rows(text))
    if suffix == ".csv":
        return list(_csv_rows(text))
    raise FileRejected(
        f"unsupported file type {suffix or '(none)'}: use .jsonl, .json or .csv / 不支持的文件类型"
    )


@dataclass(frozen=True)
class RowError:
    reason: str
    raw: str


def _jsonl_rows(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, loads_json(line)
        except InputRejected as exc:
            yield number, RowError(str(exc), line)


def _csv_rows(text: str) -> Iterator[tuple[int, Any]]:
    header, rows = csv_dicts(text)
    if "text" not in header:
        raise FileRejected(
            "CSV needs a header row with at least source, external_id, text, created_at / 缺少表头"
        )
    for number, row in rows:
        yield number, RowError(row.reason, row.raw) if isinstance(row, CsvProblem) else row


@dataclass
class FileReport:
    path: Path
    report: IngestReport = field(default_factory=IngestReport)
    rows: int = 0
    resumed_from: int = 0
    skipped: str | None = None  # why nothing was done ("already ingested")
    file_rejected: str | None = None
    encoding: str | None = None
    moved_to: Path | None = None
    rejects_path: Path | None = None


BatchHook = Callable[[int, int], None]  # (rows done, rows total), after each committed batch


class FileIngestor:
    """Drop-folder ingest: <drop>/x.jsonl → posts; then x.jsonl → <drop>/processed/, bad rows →
    <drop>/rejects/x.jsonl.rejects.jsonl (one JSON line per row: line, reasons, row); a file that
    cannot be ingested at all → <drop>/quarantine/x.jsonl with x.jsonl.report.json."""

    def __init__(self, ingestor: PostIngestor, *, batch_size: int = DEFAULT_BATCH, move: bool = True):
        self.ingestor = ingestor
        self.store = ingestor.store
        self.batch_size = batch_size
        self.move = move

    def ingest_path(self, path: Path, *, on_batch: BatchHook | None = None) -> list[FileReport]:
        path = Path(path)
        if path.is_dir():
            return [self.ingest_file(f, on_batch=on_batch) for f in drop_files(path)]
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        return [self.ingest_file(path, on_batch=on_batch)]

    def ingest_file(self, path: Path, *, on_batch: BatchHook | None = None) -> FileReport:
        """Ingest one file. A file that cannot be ingested at all — unreadable as text, or one that
        breaks the ingestor — goes to <drop>/quarantine/ with a report, so the files after it still run.
        A locked or full database is not the file's fault: that error propagates and the file stays."""
        path = Path(path).resolve()
        try:
            return self._ingest_file(path, on_batch)
        except (sqlite3.OperationalError, OSError):
            raise
        except Exception as exc:  # a poison file must never block the drop folder
            log.exception("ingest file quarantined: %s", path)
            result = FileReport(path, file_rejected=f"could not be ingested ({type(exc).__name__}: {exc})"[:300])
            return self._quarantine(path, result, str(path))

    def _quarantine(self, path: Path, result: FileReport, key: str, rows_done: int = 0) -> FileReport:
        """Move the file to quarantine/ with <name>.report.json saying why; mark it so it is not retried."""
        done = self.store.scalar("SELECT rows_done FROM ingest_files WHERE path = ?", [key]) or rows_done
        self._mark(key, "quarantined", int(done))
        report = {"file": path.name, "reason": result.file_rejected, "rows_done": done, "at": _now(),
                  **result.report.counts()}
        if self.move:
            self._finish(path, result, "quarantine")
            target = result.moved_to or path
            report_path = target.with_name(f"{target.name}.report.json")
            report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return result

    def _ingest_file(self, path: Path, on_batch: BatchHook | None) -> FileReport:
        result = FileReport(path)
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        key = str(path)
        row = self._state(key)
        done_before = self.store.scalar(
            "SELECT path FROM ingest_files WHERE sha256 = ? AND status = 'done' LIMIT 1", [sha]
        )
        if done_before is not None:
            result.skipped = f"already ingested (same content as {done_before})"
            self._finish(path, result, "processed")
            return result
        resuming = bool(row and row["sha256"] == sha and row["status"] == "running")
        start = row["rows_done"] if row and resuming else 0
        if not resuming and self.rejects_path(path).exists():
            # Rejects of an earlier file with the same name are history: keep them under another name.
            self.rejects_path(path).rename(_stamped(self.rejects_path(path)))
        with self.store.transaction():
            self.store.db.execute(
                """INSERT INTO ingest_files (path, sha256, rows_done, status, updated_at)
                   VALUES (?, ?, ?, 'running', ?)
                   ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256, rows_done = excluded.rows_done,
                   status = 'running', updated_at = excluded.updated_at""",
                [key, sha, start, _now()],
            )
        result.resumed_from = start
        rejects = RejectsFile(self.rejects_path(path), keep_upto=start)
        result.rejects_path = rejects.path
        try:
            text, result.encoding = decode_file(data)
            rows = parse_rows(path, text)
        except FileRejected as exc:
            result.file_rejected = str(exc)
            rejects.close()
            return self._quarantine(path, result, key)
        result.rows = len(rows)
        log_event(log, "ingest file", path=key, rows=len(rows), resume_from=start, encoding=result.encoding)
        try:
            for begin in range(start, len(rows), self.batch_size):
                batch = rows[begin : begin + self.batch_size]
                parsed = [(n, p) for n, p in batch if not isinstance(p, RowError)]
                broken = [
                    Rejection(n, [p.reason], safe_echo(p.raw, self.ingestor.salt))
                    for n, p in batch
                    if isinstance(p, RowError)
                ]
                with self.store.transaction():
                    batch_report = self.ingestor.ingest_records(
                        [p for _, p in parsed], lines=[n for n, _ in parsed]
                    )
                    batch_report.rejected = sorted(broken + batch_report.rejected, key=lambda r: r.line)
                    # Rejects hit the disk before the commit; on resume, lines past rows_done are dropped,
                    # so a kill on either side of the commit neither loses nor repeats a reject.
                    rejects.write(sorted(batch_report.rejected + batch_report.spam, key=lambda r: r.line))
                    self._mark(key, "running", begin + len(batch))
                result.report.merge(batch_report)
                if on_batch:
                    on_batch(begin + len(batch), len(rows))
        except BaseException:
            self.ingestor.reset()  # its near-duplicate index may hold rows that were just rolled back
            raise
        finally:
            rejects.close()
        self._mark(key, "done", len(rows))
        self._finish(path, result, "processed")
        if not rejects.written:
            result.rejects_path = None
        log_event(log, "ingest file done", path=key, **result.report.counts())
        return result

    def rejects_path(self, path: Path) -> Path:
        return path.parent / "rejects" / f"{path.name}.rejects.jsonl"

    def _state(self, key: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM ingest_files WHERE path = ?", [key])
        return rows[0] if rows else None

    def _mark(self, key: str, status: str, rows_done: int) -> None:
        with self.store.transaction():
            self.store.db.execute(
                "UPDATE ingest_files SET status = ?, rows_done = ?, updated_at = ? WHERE path = ?",
                [status, rows_done, _now(), key],
            )

    def _finish(self, path: Path, result: FileReport, folder: str) -> None:
        if not self.move:
            return
        target_dir = path.parent / folder
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        if target.exists():  # keep both: a later drop of the same name must not overwrite history
            target = _stamped(target)
        shutil.move(str(path), target)
        result.moved_to = target


class RejectsFile:
    """Append-only JSON lines, opened on first write; entries past `keep_upto` from a killed run are dropped."""

    def __init__(self, path: Path, keep_upto: int):
        self.path = path
        self.written = 0
        self._handle: io.TextIOWrapper | None = None
        if path.exists():
            if keep_upto <= 0:
                path.unlink()
            else:
                kept = [
                    line
                    for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and _line_of(line) <= keep_upto
                ]
                path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
                self.written = len(kept)

    def write(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        for rejection in rejections:
            entry = {"line": rejection.line, "reasons": rejection.reasons, "row": rejection.row}
            self._handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.written += len(rejections)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _stamped(path: Path) -> Path:
    """x.jsonl → x.20261128T101500123456.jsonl (the name an older copy is kept under)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name, dot, suffix = path.name.partition(".")
    return path.with_name(f"{name}.{stamp}{dot}{suffix}")


def _line_of(entry: str) -> int:
    try:
        return int(json.loads(entry).get("line", 0))
    except (ValueError, AttributeError, TypeError):
        return 0


def drop_files(folder: Path) -> list[Path]:
    """Files waiting in a drop folder; hidden files and partial uploads (.tmp, .part) are left alone."""
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file()
        and not f.name.startswith(".")
        and f.suffix.lower() not in (".tmp", ".part", ".crdownload")
    )


def _now() -> str:
    return format_utc(datetime.now(UTC))


# -- scheduled job --------------------------------------------------------------


def drop_dir(settings: Settings) -> Path:
    """`XIANKE_INGEST_DIR` when set, else <data_dir>/inbox."""
    configured = getattr(settings, "ingest_dir", None)
    return Path(configured) if configured else settings.data_dir / "inbox"
