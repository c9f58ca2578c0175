"""The HTTP ingest endpoint on a real socket: 401, 413, 400, 422 (good items kept) and 200."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.store import Store
from web.ingest import make_ingest_app

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


TEXTS = [
    "牛腩炖了两个小时，软烂入味",
    "草莓颗颗饱满很甜",
    "快递三天才到，冰袋都化了",
    "老师讲的红烧肉火候很清楚",
    "榴莲很香，果肉饱满",
    "烘焙课的戚风蛋糕一次就成功了",
    "车厘子个头大，价格也实惠",
    "酸菜鱼的酸菜很正宗，下饭",
    "客服回复很及时，态度也好",
    "冰皮月饼甜度刚好，不腻",
    "手擀面筋道，孩子吃了两碗",
    "蓝莓有几颗软了，希望改进包装",
]


def post(i: int, **extra: object) -> dict:
    return {
        "source": "xiaohongshu",
        "external_id": f"x{i}",
        "text": TEXTS[i % len(TEXTS)],
        "created_at": "2026-11-27T20:00:00+08:00",
        **extra,
    }


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    db = tmp_path / "http.db"
    Store(db).close()
    app = make_ingest_app(lambda: Store(db), TOKEN, max_bytes=64 * 1024, salt=b"salt", max_items=50)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        test_client.db_path = db  # type: ignore[attr-defined]
        yield test_client


def count_posts(client: TestClient) -> int:
    store = Store(client.db_path)  # type: ignore[attr-defined]
    try:
        return store.scalar("SELECT count(*) FROM posts")
    finally:
        store.close()


async def test_healthz(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json()) == {"ok": True}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}]
)
async def test_missing_or_wrong_token_is_401(client: TestClient, headers: dict) -> None:
    response = await client.post("/v1/posts", json=[post(1)], headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert count_posts(client) == 0


async def test_oversized_body_is_413(client: TestClient) -> None:
    big = [post(i, text="很好吃，" * 2000) for i in range(10)]  # ~180 KB > 64 KB
    response = await client.post("/v1/posts", json=big, headers=AUTH)
    assert response.status == 413
    too_many = [post(i) for i in range(51)]
    assert (await client.post("/v1/posts", json=too_many, headers=AUTH)).status == 413
    assert count_posts(client) == 0


async def test_not_json_is_400(client: TestClient) -> None:
    json_type = {**AUTH, "Content-Type": "application/json"}
    response = await client.post("/v1/posts", data=b"\xff\xfe not json", headers=json_type)
    assert response.status == 400


async def test_wrong_content_type_is_415_and_stores_nothing(client: TestClient) -> None:
    body = json.dumps([post(1)]).encode()
    response = await client.post("/v1/posts", data=body, headers={**AUTH, "Content-Type": "text/plain"})
    assert response.status == 415 and "application/json" in (await response.json())["error"]
    assert count_posts(client) == 0


async def test_bad_items_get_422_with_reasons_and_good_items_are_kept(client: TestClient) -> None:
    batch = [post(1), {"source": "xiaohongshu", "external_id": "x2", "text": ""}, post(3), "junk", post(5)]
    response = await client.post("/v1/posts", json={"posts": batch}, headers=AUTH)
    assert response.status == 422
    body = await response.json()
    assert body["added"] == 3
    by_index = {item["index"]: " ".join(item["reasons"]) for item in body["rejected"]}
    assert set(by_index) == {1, 3}
    assert "text is empty" in by_index[1] and "created_at is missing" in by_index[1]
    assert "must be a JSON object" in by_index[3]
    assert count_posts(client) == 3


async def test_good_batch_is_200_and_a_replay_adds_nothing(client: TestClient) -> None:
    batch = [post(i) for i in range(1, 11)]
    first = await client.post("/v1/posts", json=batch, headers=AUTH)
    assert first.status == 200
    assert (await first.json())["added"] == 10
    replay = await client.post("/v1/posts", json=batch, headers=AUTH)
    assert replay.status == 200
    body = await replay.json()
    assert (body["added"], body["duplicates"]) == (0, 10)
    assert count_posts(client) == 10


def test_token_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="XIANKE_INGEST_TOKEN"):
        make_ingest_app(lambda: Store(tmp_path / "x.db"), "", salt=b"s")
