"""Post ingestion: idempotent, resumable after SIGKILL, strict with garbage, private about authors."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.settings import Settings
from core.store import Store
from listening.ingest import FileIngestor, PostIngestor, decode_file, hash_author, load_author_salt
from listening.telegram_ingest import message_to_record
from nlp.dedupe import NearDuplicateIndex, spam_reasons
from nlp.ingest_schema import validate_post

REPO_ROOT = Path(__file__).resolve().parents[1]
SALT = b"test-salt"
# Common characters: random 24-character strings of them share almost no 5-grams, so generated posts
# are neither exact nor near duplicates of each other.
_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后"
    "多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合"
    "还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只"
)


def rand_text(rng: random.Random, n: int = 24) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(n))


def good_rows(n: int, seed: int = 1, prefix: str = "p") -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "source": "weibo",
            "external_id": f"{prefix}{i}",
            "text": f"{rand_text(rng)}，红烧肉",
            "created_at": "2026-11-20T10:00:00+08:00",
            "author": f"美食达人{i % 7}",
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def ingestor(store: Store, **kwargs) -> FileIngestor:
    return FileIngestor(PostIngestor(store, SALT), **kwargs)


# -- idempotence ----------------------------------------------------------------


def test_same_file_twice_adds_nothing(store: Store, tmp_path: Path) -> None:
    drop = tmp_path / "inbox"
    rows = good_rows(40)
    write_jsonl(drop / "a.jsonl", rows)
    first = ingestor(store).ingest_path(drop)
    assert first[0].report.added == 40
    assert first[0].moved_to == drop / "processed" / "a.jsonl"
    assert not (drop / "a.jsonl").exists()

    # The same content dropped again (same or another name) is recognised and adds nothing.
    write_jsonl(drop / "a-again.jsonl", rows)
    again = ingestor(store).ingest_path(drop)
    assert again[0].skipped and again[0].report.added == 0
    # A file that overlaps an earlier one only adds its new rows; the rest are duplicates.
    write_jsonl(drop / "b.jsonl", [*rows, *good_rows(5, seed=2, prefix="q")])
    overlap = ingestor(store).ingest_path(drop)[0]
    assert (overlap.report.added, overlap.report.duplicates) == (5, 40)
    assert store.scalar("SELECT count(*) FROM posts") == 45


def test_duplicates_by_external_id_by_text_and_near_text(store: Store) -> None:
    ingest = PostIngestor(store, SALT)
    base = {"source": "weibo", "created_at": 1764300000}
    text = "清蒸鲈鱼的火候掌握得刚刚好，老师讲得特别细，新手也能学会，推荐给大家"
    report = ingest.ingest_records(
        [
            {**base, "external_id": "1", "text": text},
            {**base, "external_id": "1", "text": "完全不同的内容也算同一条帖子，因为编号相同"},
            {**base, "external_id": "2", "text": text + "！！"},  # same text after normalisation
            {
                **base,
                "external_id": "3",
                "text": text.replace("推荐给大家", "推荐给朋友们"),
            },  # near duplicate
        ]
    )
    assert (report.added, report.duplicates, report.near_duplicates) == (1, 2, 1)
    # A fresh ingestor (another process) rebuilds its near-duplicate index from the store.
    again = PostIngestor(store, SALT).ingest_records([{**base, "external_id": "4", "text": text + "，真的"}])
    assert again.near_duplicates == 1 and store.scalar("SELECT count(*) FROM posts") == 1


def test_near_duplicate_index_keeps_different_posts_apart() -> None:
    index = NearDuplicateIndex()
    index.add(1, "草莓很新鲜，甜度刚刚好，孩子特别喜欢吃，下次还会再买")
    assert index.find("草莓很新鲜，甜度刚刚好，孩子特别喜欢吃，下次还会再买的") is not None
    assert index.find("快递太慢了，三天才到，冷链箱里的冰袋全化了") is None
    assert index.find("好吃") is None  # too short to judge; exact hashes cover it


def test_spam_rules() -> None:
    assert spam_reasons("加微信 abc12345 免费领取试吃装")
    assert spam_reasons("低价代购进口车厘子 http://x.cn/abc 联系 微信: shop8888")
    assert spam_reasons("好" * 30)
    assert not spam_reasons("这家的车厘子很新鲜，包邮还送冰袋，下次还买")
    assert not spam_reasons("I love fresh vegetables, very tasty")


# -- crash safety ------------------------------------------------------------------

_WORKER = """
import sys, time
from pathlib import Path
from core.store import Store
from listening.ingest import FileIngestor, PostIngestor
store = Store(Path(sys.argv[1]))
FileIngestor(PostIngestor(store, b"test-salt"), batch_size=50).ingest_file(
    Path(sys.argv[2]), on_batch=lambda done, total: time.sleep(0.05))
"""


def test_sigkill_mid_file_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    db_path, drop = tmp_path / "x.db", tmp_path / "inbox"
    rows: list = good_rows(1500, seed=5)
    for i in range(0, 1500, 97):  # bad rows spread over the file, so some sit after the kill point
        rows[i] = {"source": "weibo", "external_id": f"bad{i}", "text": "", "created_at": "2026-11-20"}
    path = write_jsonl(drop / "big.jsonl", rows)
    good = {r["external_id"] for r in rows if r["text"]}
    Store(db_path).close()

    worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(db_path), str(path)], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and worker.poll() is None:
            with sqlite3.connect(db_path, timeout=5) as conn:
                row = conn.execute("SELECT rows_done FROM ingest_files").fetchone()
            done = row[0] if row else 0
            if done >= 300:
                break
            time.sleep(0.02)
        assert worker.poll() is None, "the worker finished before it could be killed; make the file bigger"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL

    store = Store(db_path)
    try:
        state = store.query("SELECT rows_done, status FROM ingest_files")[0]
        assert state["status"] == "running" and 300 <= state["rows_done"] < len(rows)
        assert store.scalar("SELECT count(*) FROM posts") < len(good)

        result = FileIngestor(PostIngestor(store, b"test-salt"), batch_size=50).ingest_file(path)
        assert result.resumed_from == state["rows_done"]
        stored = [r["external_id"] for r in store.query("SELECT external_id FROM posts")]
        assert sorted(stored) == sorted(good)  # every good row, exactly once
        rejects = [json.loads(line) for line in result.rejects_path.read_text(encoding="utf-8").splitlines()]
        assert sorted(r["line"] for r in rejects) == [i + 1 for i in range(0, 1500, 97)]
        assert (drop / "processed" / "big.jsonl").exists()
    finally:
        store.close()


# -- garbage ---------------------------------------------------------------------------


def test_garbage_is_rejected_with_reasons_while_good_rows_are_kept(store: Store, tmp_path: Path) -> None:
    drop = tmp_path / "inbox"
    good = good_rows(3)
    bad = [
        {**good[0], "external_id": "huge", "text": "长" * 1_000_000},
        {**good[0], "external_id": "empty", "text": "   "},
        {**good[0], "external_id": "int-text", "text": 12345},
        {**good[0], "external_id": True},
        {**good[0], "external_id": "no-date", "created_at": "yesterday"},
        {**good[0], "external_id": "list-date", "created_at": [2026, 11, 20]},
        {**good[0], "external_id": "ctrl", "text": "\x01\x02\x03\x04\x05\x06\x07\x08abc"},
        ["not", "an", "object"],
        {**good[0], "external_id": "spam", "text": "加微信 abc12345 点击领取免费车厘子"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in [good[0], *bad[:4]]]
    lines += ["{this is not json", *(json.dumps(r, ensure_ascii=False) for r in [*bad[4:], good[1], good[2]])]
    drop.mkdir()
    (drop / "mixed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (drop / "blob.jsonl").write_bytes(bytes(range(256)) * 40)
    gbk_rows = "source,external_id,text,created_at\nweibo,g1,榴莲很香，果肉饱满，下次还买,1764300000\n"
    (drop / "gbk.csv").write_bytes(gbk_rows.encode("gbk"))

    reports = {r.path.name: r for r in ingestor(store).ingest_path(drop)}

    blob = reports["blob.jsonl"]
    assert blob.file_rejected and "binary" in blob.file_rejected
    assert (drop / "quarantine" / "blob.jsonl").exists()
    assert "binary" in json.loads((drop / "quarantine" / "blob.jsonl.report.json").read_text())["reason"]

    gbk = reports["gbk.csv"]
    assert gbk.encoding == "gb18030" and gbk.report.added == 1
    assert store.scalar("SELECT text FROM posts WHERE external_id = 'g1'") == "榴莲很香，果肉饱满，下次还买"

    mixed = reports["mixed.jsonl"]
    assert mixed.report.added == 3
    rejects = {
        r["line"]: r
        for r in map(json.loads, (drop / "rejects" / "mixed.jsonl.rejects.jsonl").read_text().splitlines())
    }
    reasons = {line: " ".join(r["reasons"]) for line, r in rejects.items()}
    assert "longer than 10000" in reasons[2]
    assert "text is empty" in reasons[3]
    assert "text must be a string" in reasons[4]
    assert "external_id must be a string" in reasons[5]
    assert "not valid JSON" in reasons[6]
    assert "created_at is not a date" in reasons[7] and "created_at is not a date" in reasons[8]
    assert "binary" in reasons[9]
    assert "must be a JSON object" in reasons[10]
    assert "spam" in reasons[11]
    assert len(rejects) == 10
    assert (
        len(json.dumps(rejects[2]["row"], ensure_ascii=False)) < 1000
    )  # the 1 MB post is not copied into the rejects file
    assert mixed.moved_to == drop / "processed" / "mixed.jsonl"
    assert store.scalar("SELECT count(*) FROM posts") == 4


def test_decode_file_encodings() -> None:
    assert decode_file("红烧肉".encode())[0] == "红烧肉"
    assert decode_file("\ufeff红烧肉".encode())[0] == "红烧肉"
    assert decode_file("红烧肉".encode("gbk")) == ("红烧肉", "gb18030")
    assert decode_file("红烧肉".encode("utf-16")) == ("红烧肉", "utf-16")


def test_timestamps_are_stored_in_utc() -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    base = {"source": "s", "external_id": "1", "text": "好吃"}
    naive = validate_post({**base, "created_at": "2026-11-20 08:30:00"}, now=now)
    assert not isinstance(naive, list) and naive.created_at == "2026-11-20T00:30:00.000Z"  # Asia/Shanghai
    millis = validate_post({**base, "created_at": 1764300000000}, now=now)
    seconds = validate_post({**base, "created_at": "1764300000"}, now=now)
    assert not isinstance(millis, list) and not isinstance(seconds, list)
    assert millis.created_at == seconds.created_at == "2025-11-28T03:20:00.000Z"
    assert validate_post({**base, "created_at": "2030-01-01"}, now=now) == [
        "created_at is in the future / created_at 在未来"
    ]


# -- privacy ---------------------------------------------------------------------------


def test_authors_are_stored_only_as_salted_hashes(store: Store, tmp_path: Path) -> None:
    salt = load_author_salt(Settings(data_dir=tmp_path))
    assert salt == load_author_salt(Settings(data_dir=tmp_path))  # created once, then reused
    assert oct((tmp_path / "author_salt").stat().st_mode & 0o777) == "0o600"
    PostIngestor(store, salt).ingest_records(good_rows(3))
    dump = "\n".join(store.db.iterdump())
    assert "美食达人" not in dump
    assert store.scalar("SELECT author_hash FROM posts WHERE external_id = 'p1'") == hash_author(
        salt, "美食达人1"
    )
    assert hash_author(b"other salt", "美食达人1") != hash_author(salt, "美食达人1")


def test_telegram_message_becomes_a_post_record(store: Store) -> None:
    from aiogram.types import Message

    message = Message.model_validate(
        {
            "message_id": 42,
            "date": 1764300000,
            "chat": {"id": -100123, "type": "supergroup", "title": "吃货群", "username": "foodies"},
            "from": {"id": 777, "is_bot": False, "first_name": "小王"},
            "text": "这周的草莓特别甜 #水果#",
        }
    )
    record = message_to_record(message)
    assert record is not None
    assert record["source"] == "telegram:-100123" and record["external_id"] == "42"
    assert record["url"] == "https://t.me/foodies/42"
    report = PostIngestor(store, SALT).ingest_records([record])
    assert report.added == 1
    row = store.query("SELECT * FROM posts")[0]
    assert row["author_hash"] == hash_author(SALT, "tg:777") and "小王" not in json.dumps(row, default=str)
    assert json.loads(row["tags"]) == ["水果"]


@pytest.mark.parametrize("payload", [None, 5, "text", [1]])
def test_non_object_payloads_are_rejected(payload: object) -> None:
    reasons = validate_post(payload)
    assert isinstance(reasons, list) and "must be a JSON object" in reasons[0]


def test_rejects_do_not_leak_authors(store: Store, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "x.jsonl", [{**good_rows(1)[0], "text": ""}])
    result = ingestor(store).ingest_file(path)
    content = result.rejects_path.read_text(encoding="utf-8")
    assert "美食达人" not in content and "author_hash" in content
    assert os.path.exists(tmp_path / "in" / "processed" / "x.jsonl")
    # A new file with the same name: its rejects replace the old ones, which are kept under another name.
    write_jsonl(tmp_path / "in" / "x.jsonl", [{**good_rows(1)[0], "created_at": "soon"}])
    again = ingestor(store).ingest_file(tmp_path / "in" / "x.jsonl")
    assert "created_at" in again.rejects_path.read_text(encoding="utf-8")
    assert len(list((tmp_path / "in" / "rejects").glob("x.*.rejects.jsonl"))) == 2
    assert len(list((tmp_path / "in" / "processed").glob("x.*jsonl"))) == 2


@pytest.mark.parametrize(
    "content",
    [
        lambda rows: json.dumps(rows, ensure_ascii=False, indent=2),
        lambda rows: json.dumps({"posts": rows}, ensure_ascii=False, indent=2),
        lambda rows: "\n".join(json.dumps(r, ensure_ascii=False) for r in rows),
    ],
    ids=["array", "posts-object", "json-lines"],
)
def test_json_files_in_every_common_shape(store: Store, tmp_path: Path, content) -> None:
    rows = good_rows(4)
    rows[0]["source"], rows[1]["external_id"] = "微博", 1.764e12  # a Chinese source name; a float id
    path = tmp_path / "in" / "posts.json"
    path.parent.mkdir()
    path.write_text(content(rows), encoding="utf-8")
    result = ingestor(store).ingest_file(path)
    assert result.report.added == 4 and not result.report.rejected
    assert store.scalar("SELECT count(*) FROM posts WHERE external_id = '1764000000000'") == 1
