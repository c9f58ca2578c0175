"""Marketers' sentiment corrections (判断有误): stored per (post, marketer), used to retrain, never to grade.

A marketer taps 判断有误 under a post in a digest or an alert and picks the right label. The callback
data format lives here, in core, because jobs write the buttons and the bot reads them, and neither
may import the other:

    sfix:<post_id>            open the choice (正面 / 中性 / 负面)
    sfix:<post_id>:<p|u|n>    store positive / neutral / negative
    sfix:<post_id>:x          cancel
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from core.notify import Button
from core.repos.coupons import iso_utc
from core.store import Store

LABELS = ("positive", "neutral", "negative")
LABELS_ZH = {"positive": "正面", "neutral": "中性", "negative": "负面"}
FIX_PREFIX = "sfix"
_CODES = {"p": "positive", "u": "neutral", "n": "negative"}
_CODE_OF = {label: code for code, label in _CODES.items()}
_FIX_RE = re.compile(rf"^{FIX_PREFIX}:(\d{{1,18}})(?::([pun x]))?$".replace(" ", ""))
CANCEL = "cancel"
MAX_BUTTONS = 10


def fix_callback(post_id: int, label: str | None = None) -> str:
    """Callback data for a 判断有误 button (label None) or for one of its answers; ≤ 26 bytes."""
    if label is None:
        return f"{FIX_PREFIX}:{int(post_id)}"
    code = "x" if label == CANCEL else _CODE_OF[label]
    return f"{FIX_PREFIX}:{int(post_id)}:{code}"


def parse_fix_callback(data: str | None) -> tuple[int, str | None] | None:
    """(post_id, None | label | "cancel") for our callback data, None for anything else."""
    match = _FIX_RE.match(data or "")
    if match is None:
        return None
    code = match.group(2)
    if code is None:
        return int(match.group(1)), None
    return int(match.group(1)), CANCEL if code == "x" else _CODES[code]


def correction_buttons(
    post_ids: Sequence[int], *, label: str = "判断有误 {n}", per_row: int = 3
) -> list[list[Button]]:
    """One 判断有误 button per listed post; `{n}` numbers it like the message's list (1., 2., …)."""
    ids = [int(i) for i in post_ids][:MAX_BUTTONS]
    buttons = [Button(label.format(n=n), fix_callback(i)) for n, i in enumerate(ids, 1)]
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


class CorrectionError(ValueError):
    """A correction cannot be stored (unknown post or label); the message says which."""


class CorrectionRepository:
    def __init__(self, store: Store):
        self.store = store

    def post(self, post_id: int) -> dict[str, Any] | None:
        rows = self.store.query(
            "SELECT id, text, text_norm, sentiment, sentiment_score, source, created_at FROM posts WHERE id = ?",
            [post_id],
        )
        return rows[0] if rows else None

    def add(self, post_id: int, label: str, marketer_id: int | None, *, now: datetime | None = None) -> dict[str, Any]:
        """Store (or change) this marketer's label for the post; returns the stored row."""
        if label not in LABELS:
            raise CorrectionError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
        stamp = iso_utc(now or datetime.now(UTC))
        with self.store.transaction() as db:
            if self.post(post_id) is None:
                raise CorrectionError(f"post {post_id} does not exist (deleted or never ingested)")
            db.execute(
                """INSERT INTO sentiment_corrections (post_id, label, marketer_id, created_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT(post_id, marketer_id) DO UPDATE SET label = excluded.label,
                       created_at = excluded.created_at""",
                [post_id, label, marketer_id, stamp],
            )
            rows = self.store.query(
                "SELECT * FROM sentiment_corrections WHERE post_id = ? AND marketer_id IS ? ORDER BY id DESC LIMIT 1",
                [post_id, marketer_id],
            )
        return rows[0]

    def for_post(self, post_id: int) -> list[dict[str, Any]]:
        return self.store.query(
            "SELECT * FROM sentiment_corrections WHERE post_id = ? ORDER BY created_at, id", [post_id]
        )

    def count(self) -> int:
        return int(self.store.scalar("SELECT count(*) FROM sentiment_corrections") or 0)

    def latest(self) -> list[dict[str, Any]]:
        """One row per corrected post — the most recent correction wins when marketers disagree —
        with the post's text (normalised text when the pipeline stored it)."""
        return self.store.query(
            """SELECT c.post_id, c.label, c.marketer_id, c.created_at,
                      coalesce(nullif(p.text_norm, ''), p.text) AS text, p.sentiment AS model_label
               FROM sentiment_corrections c JOIN posts p ON p.id = c.post_id
               WHERE c.id = (SELECT c2.id FROM sentiment_corrections c2 WHERE c2.post_id = c.post_id
                             ORDER BY c2.created_at DESC, c2.id DESC LIMIT 1)
               ORDER BY c.post_id"""
        )

    def training_pairs(self, *, binary: bool = True) -> list[tuple[str, str]]:
        """(text, label) to learn from. The shipped model is two-class, so by default neutral
        corrections are left out (they still keep the post out of evaluation data)."""
        return [
            (row["text"], row["label"])
            for row in self.latest()
            if row["text"] and (not binary or row["label"] != "neutral")
        ]

    def corrected_texts(self) -> list[str]:
        """Texts of every corrected post, whatever the label: evaluation data must not contain them."""
        return [row["text"] for row in self.latest() if row["text"]]


def texts_of(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [text for text, _ in pairs]
