"""Privacy: /mydata exports everything about a customer; /forget leaves nothing personal anywhere; the
retention job scrubs old raw posts but keeps the trends.

"Nothing personal anywhere" is checked by brute force: every column of every row of every table is
searched for the customer's Telegram id, name and username after forgetting.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.privacy import export_user, forget_user, fsm_keys_for
from core.store import Store, dumps
from jobs.registry import JOBS
from listening.ingest import hash_author
from listening.retention import purge_raw_posts
from tests.fakebot import FakeBotAPI
from tests.hardening_helpers import polling
from xianke.bot_wiring import BotRuntime
from xianke.commands.doctor import check_invariants

UID, NAME, USERNAME = 777_000_123, "测试用户Ωmega", "forget_me_42"
FRIEND, REFERRER = 777_000_456, 777_000_789
SALT = b"privacy-salt"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def personal_traces(store: Store, user_id: int, needles: list[str]) -> list[str]:
    """Every (table.column = value) that still holds the id (as a number) or any needle (as text)."""
    found = []
    tables = [r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in store.query(f'SELECT * FROM "{table}"'):
            for column, value in row.items():
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                if value == user_id or (isinstance(value, str) and any(n in value for n in needles)):
                    found.append(f"{table}.{column} = {str(value)[:80]!r}")
    return found


def seed(store: Store) -> dict[str, Any]:
    """A customer with a bit of everything, plus a friend and a referrer around them."""
    db = store.db
    with store.transaction():
        db.execute("INSERT INTO users (id, first_name, username, profile, referral_code) VALUES (?, ?, ?, ?, 'REFme001')",
                   [UID, NAME, USERNAME, dumps({"diet": ["素食"], "allergens": ["花生"], "budget_cents": 30000})])
        db.execute("INSERT INTO users (id, first_name, referral_code) VALUES (?, '朋友', 'REFfr002')", [FRIEND])
        db.execute("INSERT INTO users (id, first_name, referral_code) VALUES (?, '介绍人', 'REFre003')", [REFERRER])
        db.execute("UPDATE users SET referred_by = ? WHERE id = ?", [REFERRER, UID])
        db.execute("UPDATE users SET referred_by = ? WHERE id = ?", [UID, FRIEND])
        db.execute("INSERT INTO campaigns (id, slug, name) VALUES (1, 'spring', '春季')")
        db.execute("INSERT INTO campaign_assignments (campaign_id, user_id, arm) VALUES (1, ?, 'treatment')", [UID])
        for kind, item in (("view", "course/sichuan-101"), ("like", "course/sichuan-101"), ("query", None)):
            db.execute("INSERT INTO events (user_id, kind, item_slug, campaign_id, payload) VALUES (?, ?, ?, 1, ?)",
                       [UID, kind, item, dumps({"text": f"{NAME} 想学川菜", "username": USERNAME})])
        # Another person's event that names our customer (the referrer's reward for bringing them).
        db.execute("INSERT INTO events (user_id, kind, payload) VALUES (?, 'referral_rewarded', ?)",
                   [REFERRER, dumps({"friend_id": UID, "role": "referrer"})])
        db.execute("INSERT INTO orders (id, external_id, user_id, total_cents, created_at) VALUES (1, 'SHOP-1', ?, 8800, '2026-11-30')", [UID])
        db.execute("INSERT INTO order_items (order_id, item_slug, quantity, price_cents) VALUES (1, 'kit/hotpot', 1, 8800)")
        db.execute("INSERT INTO coupons (code, user_id, campaign_id, status, redeemed_at, order_id) "
                   "VALUES ('XK-AAAA', ?, 1, 'redeemed', '2026-11-30T00:00:00.000Z', 1)", [UID])
        db.execute("INSERT INTO coupons (code, user_id, status) VALUES ('XK-BBBB', ?, 'issued')", [UID])
        ticket = db.execute("INSERT INTO tickets (user_id, status, thread_id, rating, rating_comment) "
                            "VALUES (?, 'closed', 55, 4, ?)", [UID, f"{NAME}：客服很耐心"]).lastrowid
        db.execute("INSERT INTO tickets (user_id, status, thread_id) VALUES (?, 'open', 56)", [UID])
        db.execute("INSERT INTO ticket_messages (ticket_id, direction, customer_message_id, staff_message_id, text) "
                   "VALUES (?, 'in', 10, 900, ?)", [ticket, f"我是{NAME}，电话 13800000000"])
        db.execute("INSERT INTO ticket_messages (ticket_id, direction, staff_message_id, text) "
                   "VALUES (?, 'out', 901, '您好，马上处理')", [ticket])
        if store.db["referrals"].exists():
            db.execute("INSERT INTO referrals (friend_id, referrer_id, code, joined_at) VALUES (?, ?, 'REFre003', '2026-11-01')",
                       [UID, REFERRER])
            db.execute("INSERT INTO referrals (friend_id, referrer_id, code, joined_at) VALUES (?, ?, 'REFme001', '2026-11-02')",
                       [FRIEND, UID])
        db.execute("INSERT INTO fsm_state (key, state, data) VALUES (?, 'Onboarding:diet', ?)",
                   [f"fsm:123456:{UID}:{UID}:default", dumps({"draft": {"diet": ["素食"]}})])
        db.execute("INSERT INTO fsm_state (key, state) VALUES ('fsm:123456:42:42:default', 'x')")
        author = hash_author(SALT, f"tg:{UID}")
        db.execute("""INSERT INTO posts (source, external_id, text, text_norm, text_hash, author_hash, created_at, sentiment, url)
                      VALUES ('tg:-100', '1', ?, ?, 'hash-1', ?, '2026-11-20T00:00:00.000Z', 'positive', 'https://t.me/c/1')""",
                   [f"{NAME} 说牛腩很好吃", f"{NAME} 说牛腩很好吃", author])
        # A table a later migration might add: the generic foreign-key handling must cover it.
        db.execute("CREATE TABLE loyalty (user_id INTEGER NOT NULL REFERENCES users(id), points INTEGER)")
        db.execute("INSERT INTO loyalty VALUES (?, 120)", [UID])
    return {"author_hash": author}


def test_export_has_everything(store: Store) -> None:
    extra = seed(store)
    doc = export_user(store, UID, author_hashes=[extra["author_hash"]])
    json.dumps(doc, ensure_ascii=False)  # one JSON document
    assert doc["user"]["first_name"] == NAME and doc["user"]["username"] == USERNAME
    assert doc["user"]["profile"]["allergens"] == ["花生"]
    assert [e["kind"] for e in doc["events"]] == ["view", "like", "query"]
    assert {c["code"] for c in doc["coupons"]} == {"XK-AAAA", "XK-BBBB"}
    assert doc["orders"][0]["items"][0]["item_slug"] == "kit/hotpot"
    assert len(doc["tickets"]) == 2 and doc["tickets"][0]["messages"][0]["text"].startswith("我是")
    assert doc["campaign_assignments"][0]["campaign"] == "spring"
    assert doc["conversation_state"][0]["state"] == "Onboarding:diet"
    assert doc["listening_posts"][0]["text"].endswith("牛腩很好吃")
    assert doc["other"]["loyalty"] == [{"user_id": UID, "points": 120}]
    if store.db["referrals"].exists():
        assert doc["referrals"]["invited_by"][0]["referrer_id"] == REFERRER
        assert doc["referrals"]["friends_invited"][0]["friend_id"] == FRIEND


def test_forget_leaves_nothing_personal_and_keeps_the_aggregates(store: Store) -> None:
    extra = seed(store)
    events_by_kind = dict(store.db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    needles = [NAME, USERNAME, str(UID), "REFme001", "13800000000"]
    assert len(personal_traces(store, UID, needles)) > 15  # the search does find what is there
    report = forget_user(store, UID, author_hashes=[extra["author_hash"]], now=NOW)

    assert personal_traces(store, UID, needles) == []
    # Aggregates survive: event counts by kind, orders and their totals, coupons, post sentiment.
    assert dict(store.db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall()) == events_by_kind
    assert store.scalar("SELECT count(*) FROM events WHERE user_id IS NULL AND campaign_id = 1") == 3
    assert store.query("SELECT external_id, user_id, total_cents FROM orders") == [
        {"external_id": "SHOP-1", "user_id": None, "total_cents": 8800}]
    assert store.scalar("SELECT count(*) FROM coupons WHERE user_id IS NULL") == 2
    assert store.query("SELECT sentiment, text FROM posts") == [{"sentiment": "positive", "text": ""}]
    # Support statistics survive on a tombstone: closed, no thread, no customer text.
    tickets = store.query("SELECT user_id, status, thread_id, rating, rating_comment FROM tickets ORDER BY id")
    assert [t["status"] for t in tickets] == ["closed", "closed"] and tickets[0]["rating"] == 4
    assert {t["user_id"] for t in tickets} == {report.tombstone_id} and report.tombstone_id < 0
    assert store.scalar("SELECT count(*) FROM ticket_messages WHERE text IS NOT NULL AND direction = 'in'") == 0
    tomb = store.query("SELECT first_name, username, banned, opted_out, forgotten_at FROM users WHERE id = ?",
                       [report.tombstone_id])[0]
    assert tomb == {"first_name": "", "username": None, "banned": 1, "opted_out": 1, "forgotten_at": "2026-12-01T12:00:00.000Z"}
    # Other people keep their own data; only the mention of the forgotten friend is gone.
    assert store.scalar("SELECT count(*) FROM users WHERE id IN (?, ?)", [FRIEND, REFERRER]) == 2
    assert store.scalar("SELECT referred_by FROM users WHERE id = ?", [FRIEND]) is None
    referrer_event = store.query("SELECT user_id, payload FROM events WHERE kind = 'referral_rewarded'")[0]
    assert referrer_event["user_id"] == REFERRER and json.loads(referrer_event["payload"])["friend_id"] is None
    assert fsm_keys_for(store, 42) == ["fsm:123456:42:42:default"]
    assert store.integrity_problems() == []
    assert [f for f in check_invariants(store) if f.level == "problem"] == []
    # Forgetting twice is harmless, and the export of a forgotten customer is empty.
    assert not forget_user(store, UID).found
    doc = export_user(store, UID)
    assert doc["user"] is None and doc["events"] == doc["coupons"] == doc["orders"] == doc["tickets"] == []


def test_forget_is_all_or_nothing(store: Store) -> None:
    seed(store)
    store.db.execute(
        f"""CREATE TRIGGER refuse BEFORE DELETE ON users WHEN OLD.id = {UID}
            BEGIN SELECT RAISE(ABORT, 'simulated crash at the last step'); END"""
    )
    before = {t: store.query(f'SELECT * FROM "{t}"') for t in ("users", "events", "coupons", "orders", "tickets",
                                                               "ticket_messages", "fsm_state", "posts")}
    with pytest.raises(Exception, match="simulated crash"):
        forget_user(store, UID, author_hashes=[hash_author(SALT, f"tg:{UID}")])
    assert {t: store.query(f'SELECT * FROM "{t}"') for t in before} == before


def test_events_stay_append_only_except_for_anonymisation(store: Store) -> None:
    seed(store)
    for sql in ("UPDATE events SET payload = '{\"x\": 1}'", "UPDATE events SET kind = 'purchase'",
                "UPDATE events SET payload = '{}'", "UPDATE events SET created_at = '2020-01-01'"):
        with pytest.raises(Exception, match="append-only"):
            store.db.execute(sql)


# -- retention ---------------------------------------------------------------------------


def test_retention_scrubs_old_posts_and_keeps_trends(store: Store) -> None:
    with store.transaction() as db:
        for i, (created, sentiment) in enumerate([("2025-01-01", "negative"), ("2025-03-01", "positive"),
                                                   ("2026-11-25", "positive")]):
            db.execute(
                """INSERT INTO posts (source, external_id, text, text_norm, text_hash, author_hash, created_at,
                                      sentiment, aspects, embedding, url, analyzed_at, topic_id)
                   VALUES ('weibo', ?, ?, ?, ?, 'a1', ?, ?, ?, x'0102', 'https://weibo.com/1', ?, NULL)""",
                [str(i), f"原文{i} 牛腩", f"原文{i} 牛腩", f"h{i}", f"{created}T00:00:00.000Z", sentiment,
                 dumps([{"aspect": "口味", "polarity": sentiment, "span": f"原文{i}"}]), f"{created}T01:00:00.000Z"],
            )
        db.execute("INSERT INTO topics (id, label, examples) VALUES (1, '牛腩', ?)",
                   [dumps([{"post_id": 1, "text": "原文0 牛腩"}, {"post_id": 3, "text": "原文2 牛腩"}])])
    counts = purge_raw_posts(store, 180, now=NOW)
    assert counts == {"purged": 2, "kept": 1}
    rows = store.query("SELECT text, text_norm, author_hash, embedding, url, sentiment, aspects, text_hash, created_at, "
                       "purged_at FROM posts ORDER BY id")
    for row in rows[:2]:
        assert row["text"] == row["text_norm"] == "" and row["author_hash"] is row["embedding"] is row["url"] is None
        assert json.loads(row["aspects"])[0] == {"aspect": "口味", "polarity": row["sentiment"]}
        assert row["purged_at"] == "2026-12-01T12:00:00.000Z" and row["text_hash"]
    assert rows[2]["text"] == "原文2 牛腩" and rows[2]["purged_at"] is None
    assert [s["sentiment"] for s in rows] == ["negative", "positive", "positive"]  # trends survive
    examples = json.loads(store.scalar("SELECT examples FROM topics WHERE id = 1"))
    assert examples == [{"post_id": 1, "text": ""}, {"post_id": 3, "text": "原文2 牛腩"}]
    assert purge_raw_posts(store, 180, now=NOW)["purged"] == 0
    assert "retention" in JOBS and JOBS["retention"].make_trigger(hash_settings()) is not None


def hash_settings() -> Any:
    from core.settings import load_settings

    return load_settings(posts_retention_days=30)


# -- end to end: /mydata and /forget through the fake Bot API -------------------------------




async def say(api: FakeBotAPI, runtime: BotRuntime, text: str, **kwargs: Any) -> None:
    target = runtime.stats.processed + 1
    api.push_message(UID, text, first_name=NAME, username=USERNAME, **kwargs)
    await runtime.stats.wait_processed(target, timeout=30)


async def press(api: FakeBotAPI, runtime: BotRuntime, label: str) -> None:
    target = runtime.stats.processed + 1
    api.click_button(UID, label)
    await runtime.stats.wait_processed(target, timeout=30)


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_mydata_and_forget_end_to_end(tmp_path: Path) -> None:
    async with polling(tmp_path) as (api, runtime):
        store = runtime.stores[1]
        await say(api, runtime, "/start")
        await say(api, runtime, "零基础想学几道家常川菜")
        await press(api, runtime, "👍")
        await say(api, runtime, "/mydata")
        [call] = [c for c in api.calls("sendDocument") if c.ok]
        document = json.loads(next(iter(call.files.values())).decode("utf-8"))
        assert document["user"]["first_name"] == NAME and document["user"]["username"] == USERNAME
        assert {"query", "like"} <= {e["kind"] for e in document["events"]}
        assert call.params["caption"]

        # A forged confirmation (no /forget asked, wrong nonce) deletes nothing.
        target = runtime.stats.processed + 1
        api.push_callback(UID, "fg:yes:deadbeef0000")
        await runtime.stats.wait_processed(target, timeout=30)
        assert store.scalar("SELECT count(*) FROM users WHERE id = ?", [UID]) == 1

        await say(api, runtime, "/forget")
        await press(api, runtime, "取消")
        assert "已取消" in api.texts(UID)[-1]
        assert store.scalar("SELECT count(*) FROM users WHERE id = ?", [UID]) == 1
        await say(api, runtime, "/forget")
        assert personal_traces(store, UID, [NAME, USERNAME])
        await press(api, runtime, "确定删除")
        assert "已删除" in api.texts(UID)[-1]
        assert runtime.stats.errors == []
        traces = personal_traces(store, UID, [NAME, USERNAME])
        assert traces == [], traces
        assert store.scalar("SELECT count(*) FROM events WHERE user_id IS NULL") >= 2  # anonymised, not lost
        assert store.integrity_problems() == []
