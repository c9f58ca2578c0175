"""A customer's data: export everything we hold about them (/mydata) and forget them (/forget).

Forgetting is one transaction over every table that can point at a person:

- the `users` row is deleted (its campaign assignments and referrals go with it: ON DELETE CASCADE);
- their events keep kind, item and time (campaign and catalog statistics survive) but lose user_id
  and payload; other people's events that name them (a referrer's reward event) lose those keys;
- coupons and orders are unlinked (user_id NULL): codes and totals stay for the shop's books;
- support tickets move to a fresh tombstone user (random negative id, no name, flagged banned and
  opted out, `forgotten_at` set) with every customer-written text scrubbed, so SLA statistics
  still count them and no ticket stays open;
- FSM state rows keyed by their chat or user id are deleted;
- posts they wrote in listened groups (found by the salted author hashes the caller passes) lose
  text, author and vector like posts past retention (`scrub_posts`);
- any other table that references users(id) — added by a later migration — is handled by its
  foreign key: nullable columns are set NULL, the rows of NOT NULL ones are deleted. So a new table
  can never silently keep a forgotten person's id.

What this cannot reach is named in docs/deployment.md: application logs (they carry user ids, not
names; rotate them), SQLite backups, and messages already in the staff forum topic on Telegram.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.store import Store, loads

EXPORT_FORMAT = "xianke-mydata/1"
# Keys inside event payloads that hold another customer's Telegram id (referrals, support).
PERSON_KEYS = ("user_id", "friend_id", "referrer_id", "customer_id")
_PERSON_PATHS_SQL = ", ".join(f"'$.{key}', NULL" for key in PERSON_KEYS)
# Tables this module treats explicitly; every other FK to users(id) gets the generic treatment.
_EXPLICIT = {
    ("events", "user_id"), ("coupons", "user_id"), ("orders", "user_id"), ("tickets", "user_id"),
    ("campaign_assignments", "user_id"), ("users", "referred_by"), ("referrals", "friend_id"),
    ("referrals", "referrer_id"),
}


def utc_now_text(moment: datetime | None = None) -> str:
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class UserReference:
    """A column that holds a users.id, found through the schema's foreign keys."""

    table: str
    column: str
    not_null: bool
    on_delete: str


def user_references(store: Store) -> list[UserReference]:
    """Every (table, column) with a foreign key to users(id), read from the live schema."""
    refs: list[UserReference] = []
    tables = [row[0] for row in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )]
    for table in tables:
        columns = {row[1]: bool(row[3]) for row in store.db.execute(f'PRAGMA table_info("{table}")')}
        for fk in store.db.execute(f'PRAGMA foreign_key_list("{table}")'):
            # (id, seq, table, from, to, on_update, on_delete, match)
            if fk[2] == "users" and (fk[4] in (None, "id")):
                refs.append(UserReference(table, fk[3], columns.get(fk[3], False), str(fk[6]).upper()))
    return refs


def fsm_keys_for(store: Store, user_id: int) -> list[str]:
    """FSM keys (`fsm:<bot>:<chat>:<user>:<destiny>`, maybe with business/thread parts) naming the user."""
    wanted = str(user_id)
    keys = [row[0] for row in store.db.execute(
        "SELECT key FROM fsm_state WHERE key LIKE ?", [f"%:{wanted}:%"]
    )]
    # Part 0 is the prefix and part 1 the bot id: only chat/user/thread parts identify the customer.
    return [key for key in keys if wanted in key.split(":")[2:-1]]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON-friendly values: JSON text columns decoded, blobs summarised."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, bytes | bytearray | memoryview):
            out[key] = f"<{len(bytes(value))} bytes>"
        elif isinstance(value, str) and value[:1] in "[{":
            try:
                out[key] = loads(value)
            except ValueError:
                out[key] = value
        else:
            out[key] = value
    return out


def _rows(store: Store, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    return [_plain(row) for row in store.query(sql, list(params))]


def _has_table(store: Store, name: str) -> bool:
    return store.db[name].exists()


def export_user(store: Store, user_id: int, *, author_hashes: Iterable[str] = ()) -> dict[str, Any]:
    """Everything stored about one customer, as one JSON-serialisable document."""
    users = _rows(store, "SELECT * FROM users WHERE id = ?", [user_id])
    doc: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": utc_now_text(),
        "user_id": user_id,
        "user": users[0] if users else None,
        "events": _rows(store, "SELECT * FROM events WHERE user_id = ? ORDER BY id", [user_id]),
        "coupons": _rows(store, "SELECT * FROM coupons WHERE user_id = ? ORDER BY id", [user_id]),
        "campaign_assignments": _rows(
            store,
            """SELECT c.slug AS campaign, c.name AS campaign_name, a.* FROM campaign_assignments a
               JOIN campaigns c ON c.id = a.campaign_id WHERE a.user_id = ? ORDER BY a.campaign_id""",
            [user_id],
        ),
    }
    orders = _rows(store, "SELECT * FROM orders WHERE user_id = ? ORDER BY id", [user_id])
    for order in orders:
        order["items"] = _rows(store, "SELECT * FROM order_items WHERE order_id = ?", [order["id"]])
    doc["orders"] = orders
    tickets = _rows(store, "SELECT * FROM tickets WHERE user_id = ? ORDER BY id", [user_id])
    for ticket in tickets:
        ticket["messages"] = _rows(
            store, "SELECT * FROM ticket_messages WHERE ticket_id = ? ORDER BY id", [ticket["id"]]
        )
    doc["tickets"] = tickets
    if _has_table(store, "referrals"):
        doc["referrals"] = {
            "invited_by": _rows(store, "SELECT * FROM referrals WHERE friend_id = ?", [user_id]),
            "friends_invited": _rows(
                store, "SELECT * FROM referrals WHERE referrer_id = ? ORDER BY joined_at", [user_id]
            ),
        }
    doc["conversation_state"] = [
        _plain(row) for key in fsm_keys_for(store, user_id)
        for row in store.query("SELECT * FROM fsm_state WHERE key = ?", [key])
    ]
    hashes = sorted(set(author_hashes))
    if hashes:
        marks = ",".join("?" * len(hashes))
        doc["listening_posts"] = _rows(
            store,
            f"""SELECT id, source, external_id, text, created_at, sentiment, url FROM posts
                WHERE author_hash IN ({marks}) ORDER BY id""",
            hashes,
        )
    # Tables added later that point at users: exported as they are, so the export never lags the schema.
    other: dict[str, list[dict[str, Any]]] = {}
    for ref in user_references(store):
        if (ref.table, ref.column) in _EXPLICIT:
            continue
        rows = _rows(store, f'SELECT * FROM "{ref.table}" WHERE "{ref.column}" = ?', [user_id])
        if rows:
            other.setdefault(ref.table, []).extend(rows)
    if other:
        doc["other"] = other
    return doc


@dataclass
class ForgetReport:
    user_id: int
    counts: dict[str, int] = field(default_factory=dict)
    tombstone_id: int | None = None

    @property
    def found(self) -> bool:
        return any(self.counts.values())


def scrub_posts(store: Store, post_ids: Sequence[int], *, now: str | None = None) -> int:
    """Remove the raw content of posts, keeping what trends need (time, source, sentiment, topic).

    text/text_norm become '' (the columns are NOT NULL), author hash, vector, url and aspect spans
    go; text_hash stays so a re-ingested copy of a purged post is still recognised as a duplicate.
    Topic example snippets quoting these posts are blanked too. Call inside a transaction.
    """
    if not post_ids:
        return 0
    stamp = now or utc_now_text()
    changed = 0
    for start in range(0, len(post_ids), 500):
        chunk = list(post_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows = store.query(f"SELECT id, aspects FROM posts WHERE id IN ({marks})", chunk)
        for row in rows:
            changed += store.db.execute(
                """UPDATE posts SET text = '', text_norm = '', author_hash = NULL, embedding = NULL,
                       embedding_model = NULL, url = NULL, aspects = ?, purged_at = ?,
                       analyzed_at = coalesce(analyzed_at, ?)
                   WHERE id = ?""",
                [_aspects_without_spans(row["aspects"]), stamp, stamp, row["id"]],
            ).rowcount
    _blank_topic_examples(store, set(post_ids))
    return changed


def _aspects_without_spans(raw: str | None) -> str:
    """Keep aspect and polarity (counts by aspect survive); drop quoted spans of the text."""
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return "[]"
    if not isinstance(items, list):
        return "[]"
    kept = [
        {k: v for k, v in item.items() if k in ("aspect", "polarity", "score", "confidence")}
        for item in items if isinstance(item, dict)
    ]
    return json.dumps(kept, ensure_ascii=False, sort_keys=True)


def _blank_topic_examples(store: Store, post_ids: set[int]) -> None:
    for row in store.query("SELECT id, examples FROM topics WHERE examples LIKE '%post_id%'"):
        try:
            examples = json.loads(row["examples"] or "[]")
        except ValueError:
            continue
        if not isinstance(examples, list):
            continue
        touched = False
        for example in examples:
            if isinstance(example, dict) and example.get("post_id") in post_ids and example.get("text"):
                example["text"] = ""
                touched = True
        if touched:
            store.db.execute(
                "UPDATE topics SET examples = ? WHERE id = ?",
                [json.dumps(examples, ensure_ascii=False, sort_keys=True), row["id"]],
            )


def _new_tombstone(store: Store, stamp: str) -> int:
    while True:
        candidate = -(secrets.randbelow(2**52) + 1)  # Telegram ids are positive: never a real user
        if store.scalar("SELECT 1 FROM users WHERE id = ?", [candidate]) is None:
            break
    store.db.execute(
        """INSERT INTO users (id, username, first_name, profile, consents, roles, referral_code,
                              opted_out, blocked_bot, banned, forgotten_at)
           VALUES (?, NULL, '', '{}', '{}', '[]', NULL, 1, 1, 1, ?)""",
        [candidate, stamp],
    )
    return candidate


def _columns(store: Store, table: str) -> set[str]:
    return {row[1] for row in store.db.execute(f'PRAGMA table_info("{table}")')}


def revoke_issued_coupons(db: Any, user_id: int) -> int:
    """A forgotten customer's unused codes stop working: ownerless but `issued`, anyone could spend them."""
    return db.execute(
        "UPDATE coupons SET status = 'revoked' WHERE user_id = ? AND status = 'issued'", [user_id]
    ).rowcount


def forget_user(
    store: Store, user_id: int, *, author_hashes: Iterable[str] = (), now: datetime | None = None
) -> ForgetReport:
    """Delete or anonymise everything about `user_id`, all or nothing. Safe to call twice."""
    stamp = utc_now_text(now)
    report = ForgetReport(user_id)
    counts = report.counts
    hashes = sorted(set(author_hashes))
    with store.transaction() as db:
        counts["events"] = db.execute(
            "UPDATE events SET user_id = NULL, payload = '{}' WHERE user_id = ?", [user_id]
        ).rowcount
        # Other people's events that name this customer (a referrer's reward names the friend).
        mentions = [
            row[0] for row in db.execute(
                f"""SELECT id FROM events WHERE json_valid(payload) AND ({
                    " OR ".join(f"json_extract(payload, '$.{key}') = ?" for key in PERSON_KEYS)})""",
                [user_id] * len(PERSON_KEYS),
            )
        ]
        for event_id in mentions:
            db.execute(
                f"UPDATE events SET payload = json_replace(payload, {_PERSON_PATHS_SQL}) WHERE id = ?",
                [event_id],
            )
        counts["event_mentions"] = len(mentions)
        counts["coupons_revoked"] = revoke_issued_coupons(db, user_id)
        counts["coupons"] = db.execute("UPDATE coupons SET user_id = NULL WHERE user_id = ?", [user_id]).rowcount
        counts["orders"] = db.execute("UPDATE orders SET user_id = NULL WHERE user_id = ?", [user_id]).rowcount

        ticket_ids = [row[0] for row in db.execute("SELECT id FROM tickets WHERE user_id = ?", [user_id])]
        if ticket_ids:
            report.tombstone_id = _new_tombstone(store, stamp)
            ticket_cols = _columns(store, "tickets")
            sets = ["user_id = ?", "thread_id = NULL", "rating_comment = NULL", "delivery_error = NULL",
                    "status = 'closed'", "closed_at = coalesce(closed_at, ?)"]
            params: list[Any] = [report.tombstone_id, stamp]
            if "closed_by" in ticket_cols:
                sets.append("closed_by = coalesce(closed_by, 'forgotten')")
            if "customer_status" in ticket_cols:
                sets.append("customer_status = NULL")
            marks = ",".join("?" * len(ticket_ids))
            db.execute(f"UPDATE tickets SET {', '.join(sets)} WHERE id IN ({marks})", [*params, *ticket_ids])
            counts["ticket_messages"] = db.execute(
                f"""UPDATE ticket_messages SET text = NULL, customer_message_id = NULL
                    WHERE ticket_id IN ({marks})""",
                ticket_ids,
            ).rowcount
        counts["tickets"] = len(ticket_ids)

        keys = fsm_keys_for(store, user_id)
        for key in keys:
            db.execute("DELETE FROM fsm_state WHERE key = ?", [key])
        counts["fsm_state"] = len(keys)

        if hashes:
            marks = ",".join("?" * len(hashes))
            post_ids = [row[0] for row in db.execute(
                f"SELECT id FROM posts WHERE author_hash IN ({marks})", hashes
            )]
            counts["posts"] = scrub_posts(store, post_ids, now=stamp)

        # Anything else that points at users(id): by its foreign key, so new tables are covered too.
        for ref in user_references(store):
            if (ref.table, ref.column) in _EXPLICIT or ref.on_delete in ("CASCADE", "SET NULL"):
                continue  # explicit above, or the DELETE below takes care of it
            if ref.not_null:
                n = db.execute(f'DELETE FROM "{ref.table}" WHERE "{ref.column}" = ?', [user_id]).rowcount
            else:
                n = db.execute(
                    f'UPDATE "{ref.table}" SET "{ref.column}" = NULL WHERE "{ref.column}" = ?', [user_id]
                ).rowcount
            counts[f"{ref.table}.{ref.column}"] = n
        if _has_table(store, "referrals"):
            counts["referrals"] = int(store.scalar(
                "SELECT count(*) FROM referrals WHERE friend_id = ? OR referrer_id = ?", [user_id, user_id]
            ))
        counts["campaign_assignments"] = int(store.scalar(
            "SELECT count(*) FROM campaign_assignments WHERE user_id = ?", [user_id]
        ))
        counts["users"] = db.execute("DELETE FROM users WHERE id = ?", [user_id]).rowcount
    return report
