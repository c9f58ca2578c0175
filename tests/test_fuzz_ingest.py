"""Fuzzing ingest: generated post payloads through the validator, the ingestor and the HTTP endpoint.

Payloads mix well-formed posts with every kind of garbage a connector sends: wrong types (numbers,
booleans, lists, objects where strings belong), text over the limit, binary and control characters,
bad dates (impossible, ambiguous, NaN, far past and future, milliseconds), SQL and HTML, unknown
nested keys, and payloads that are not objects at all.

Properties: nothing raises; every payload is accounted for (added + duplicates + near duplicates +
spam + rejected = batch size); every rejection carries at least one readable reason; every valid,
non-spam payload is stored with its text verbatim unless it duplicates one already stored; the HTTP
endpoint answers 200/400/401/413/422 — never a 500 — with a JSON body; the store stays consistent.

Example count: XIANKE_FUZZ_EXAMPLES, or `pytest --full` (10,000 payloads), else a CI-sized run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from core.store import Store
from listening.ingest import PostIngestor
from nlp.dedupe import spam_reasons
from nlp.ingest_schema import PostRecord, validate_post
from tests.hardening_helpers import LoopThread, fuzz_examples
from web.ingest import make_ingest_app
from xianke.commands.doctor import check_invariants

pytestmark = pytest.mark.timeout(900)

CI_PAYLOADS = 600
TOKEN = "ingest-token-Zx81_qq"
SALT = b"fuzz-salt"
MAX_BYTES = 64 * 1024

chars = st.characters(exclude_categories=("Cs",))
printable = st.characters(exclude_categories=("Cs", "Cc", "Co", "Cn"))  # what a real post is made of
SENTENCES = [
    "红烧肉做法简单，孩子很爱吃", "鲜课的戚风蛋糕课老师讲得很细", "配送有点慢，牛腩倒是新鲜", "這家的酸菜魚太好吃了",
    "'); DROP TABLE posts; --", "<script>alert(1)</script> 好吃", "加微信 vx12345 返现 🧧🧧", "😂😂😂",
]
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(chars, max_size=30))
junk_json = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(chars, max_size=8), inner, max_size=4)), max_leaves=12)
texts = st.one_of(
    st.sampled_from(SENTENCES),
    st.tuples(st.sampled_from(SENTENCES), st.text(chars, min_size=1, max_size=60)).map("".join),
    st.text(chars, max_size=200),
    st.integers(9_990, 10_020).map(lambda n: ("好吃" * 6000)[:n]),  # around the 10,000-character limit
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.just(""), st.just("   \n\t "), st.just("\x00\x01\x02 binary"),
    junk_json,
)
dates = st.one_of(
    st.sampled_from(["2026-11-20T10:00:00+08:00", "2026-11-20 10:00:00", "2026/11/20 10:00", "2026-11-20T02:00:00Z",
                     "1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z", "2026-13-45", "yesterday", "", "0001-01-01T00:00:00+14:00",
                     "9999-12-31T23:59:59-14:00", "1790000000", "1790000000000", "1e10", "NaN", "-1"]),
    st.integers(-(2**63), 2**63), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    junk_json,
)
ids = st.one_of(st.integers(-(2**63), 2**63).map(str), st.integers(-(2**70), 2**70), st.text(chars, max_size=140),
                st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(), junk_json)
sources = st.one_of(st.sampled_from(["weibo", "xhs", "微博", "douyin:comments", "bad source", "", "x" * 65]), junk_json)


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:  # not an object at all
        return draw(junk_json)
    good = draw(st.integers(0, 2)) == 0  # a third are well-formed, so the "kept" property is exercised
    payload: dict[str, Any] = {
        "source": "weibo" if good else draw(sources),
        "external_id": f"g{draw(st.integers(0, 10**12))}" if good else draw(ids),
        "text": draw(st.sampled_from(SENTENCES)) + draw(st.text(printable, min_size=8, max_size=60)) if good else draw(texts),
        "created_at": "2026-11-20T10:00:00+08:00" if good else draw(dates),
    }
    optional = (
        ("author", st.text(chars, min_size=1, max_size=40), st.one_of(st.text(chars, max_size=300), st.integers(), junk_json)),
        ("url", st.just("https://weibo.com/1"), st.one_of(st.just("javascript:alert(1)"), junk_json)),
        ("lang", st.sampled_from(["zh", "en", "zh-CN"]), st.one_of(st.sampled_from(["xx_bad", "zh"]), junk_json)),
        ("tags", st.lists(st.text(chars, max_size=10), max_size=3), junk_json),
        ("xk_extra", junk_json, junk_json),  # unknown keys are ignored either way
    )
    for key, valid, anything in optional:
        if draw(st.booleans()):
            payload[key] = draw(valid if good else anything)
    for key in draw(st.lists(st.sampled_from(list(payload)), max_size=2)):
        if not good:
            payload.pop(key, None)  # missing fields
    return payload


@dataclass
class Totals:
    payloads: int = 0
    added: int = 0
    rejected: int = 0
    spam: int = 0
    duplicates: int = 0
    http_requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def ingest_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, PostIngestor, Totals, Path]]:
    path = tmp_path_factory.mktemp("fuzz-ingest") / "ingest.db"
    store = Store(path)
    yield store, PostIngestor(store, SALT), Totals(), path
    store.close()


def test_validator_never_raises_and_always_explains(request: pytest.FixtureRequest) -> None:
    n = fuzz_examples(request.config, CI_PAYLOADS)

    @settings(max_examples=n, deadline=None, database=None, derandomize=n <= CI_PAYLOADS,
              suppress_health_check=list(HealthCheck))
    @given(payload=payloads())
    def one(payload: Any) -> None:
        result = validate_post(payload)
        if isinstance(result, PostRecord):
            assert result.text and len(result.text) <= 10_000 and result.created_at.endswith("Z")
        else:
            assert result and all(isinstance(r, str) and r.strip() for r in result), result

    one()


def test_ingestor_keeps_good_rows_and_explains_the_rest(
    ingest_env: tuple[Store, PostIngestor, Totals, Path], request: pytest.FixtureRequest
) -> None:
    store, ingestor, totals, _ = ingest_env
    batches = max(10, fuzz_examples(request.config, CI_PAYLOADS) // 5)  # ~8 payloads a batch: ≥ n in all

    @settings(max_examples=batches, deadline=None, database=None, derandomize=batches <= CI_PAYLOADS // 5,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(payloads(), min_size=5, max_size=19))
    def one(batch: list[Any]) -> None:
        before = int(store.scalar("SELECT max(id) FROM posts") or 0)
        report = ingestor.ingest_records(batch)
        counted = report.added + report.duplicates + report.near_duplicates + len(report.spam) + len(report.rejected)
        assert counted == len(batch), report.counts()
        for rejection in [*report.rejected, *report.spam]:
            assert rejection.reasons and all(isinstance(r, str) and r.strip() for r in rejection.reasons)
            assert json.dumps(rejection.row, ensure_ascii=False, default=str)  # the rejects file can hold it
        new_rows = store.query("SELECT source, external_id, text, text_hash FROM posts WHERE id > ?", [before])
        assert len(new_rows) == report.added
        valid = [r for r in (validate_post(p) for p in batch) if isinstance(r, PostRecord)]
        texts_by_key: dict[tuple[str, str], set[str]] = {}
        for record in valid:
            texts_by_key.setdefault((record.source, record.external_id), set()).add(record.text)
        for row in new_rows:  # stored verbatim, exactly as validated (one of the payloads with its key)
            assert row["text"] in texts_by_key[(row["source"], row["external_id"])]
        missing = 0
        for record in valid:
            if spam_reasons(record.text):
                continue
            stored = store.scalar(
                "SELECT count(*) FROM posts WHERE (source = ? AND external_id = ?) OR text_hash = ?",
                [record.source, record.external_id, record.text_hash],
            )
            missing += stored == 0
        assert missing <= report.near_duplicates, "a valid, non-spam, non-duplicate post was dropped"
        totals.payloads += len(batch)
        totals.added += report.added
        totals.rejected += len(report.rejected)
        totals.spam += len(report.spam)
        totals.duplicates += report.duplicates + report.near_duplicates

    one()
    print(f"\ningest fuzz: {totals.payloads} payloads → {totals.added} added, {totals.duplicates} duplicates, "
          f"{totals.spam} spam, {totals.rejected} rejected with reasons")
    assert totals.added > 0 and totals.rejected > 0


@st.composite
def http_bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(body, Authorization header) pairs: good batches, junk JSON, non-JSON, oversized, bad tokens."""
    header = draw(st.sampled_from([f"Bearer {TOKEN}"] * 6 + [None, "Bearer", f"Bearer {TOKEN}x", "Basic abc",
                                                             f"bearer  {TOKEN} ", "Bearer " + "A" * 500]))
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        items = draw(st.lists(payloads(), max_size=8))
        body: Any = {"posts": items} if kind % 2 else items
        return json.dumps(body, ensure_ascii=False, default=str, allow_nan=True).encode("utf-8"), header
    if kind == 5:
        return json.dumps(draw(junk_json), allow_nan=True).encode("utf-8"), header
    if kind == 6:
        return draw(st.binary(max_size=300)), header
    if kind == 7:
        return b"[" * draw(st.integers(1, 50_000)) + b"]" * draw(st.integers(0, 3)), header
    if kind == 8:
        return b'[{"source":"weibo","text":"' + b"x" * (MAX_BYTES + 10) + b'"}]', header
    return "[{\"text\": \"半个 UTF-8 \xe5\"}]".encode("latin-1", "replace") + b"\xff\xfe", header


def test_http_endpoint_answers_every_request_without_a_500(
    ingest_env: tuple[Store, PostIngestor, Totals, Path], request: pytest.FixtureRequest
) -> None:
    _, _, totals, path = ingest_env
    requests = max(20, fuzz_examples(request.config, CI_PAYLOADS) // 10)
    loop = LoopThread()

    async def start() -> tuple[TestServer, ClientSession]:
        app = make_ingest_app(lambda: Store(path), TOKEN, MAX_BYTES, salt=SALT, max_items=50)
        server = TestServer(app)
        await server.start_server()
        return server, ClientSession(timeout=ClientTimeout(total=30))

    server, client = loop.run(start())
    url = str(server.make_url("/v1/posts"))
    try:

        @settings(max_examples=requests, deadline=None, database=None, derandomize=requests <= CI_PAYLOADS // 10,
                  phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
        @given(case=http_bodies())
        def one(case: tuple[bytes, str | None]) -> None:
            body, header = case

            async def post() -> tuple[int, Any]:
                headers = {"Content-Type": "application/json"}
                if header is not None:
                    headers["Authorization"] = header
                async with client.post(url, data=body, headers=headers) as resp:
                    return resp.status, await resp.json(content_type=None)

            status, answer = loop.run(post())
            assert status in (200, 400, 401, 413, 422), (status, answer)
            assert isinstance(answer, dict)
            if status in (200, 422) and "rejected" in answer:
                assert all(r["reasons"] for r in answer["rejected"])
            totals.http_requests += 1
            totals.statuses[status] = totals.statuses.get(status, 0) + 1

        one()
    finally:

        async def stop() -> None:
            await client.close()
            await server.close()

        loop.run(stop())
        loop.close()
    print(f"\nhttp ingest fuzz: {totals.http_requests} requests, statuses {dict(sorted(totals.statuses.items()))}")
    assert totals.statuses.get(200, 0) + totals.statuses.get(422, 0) > 0


def test_store_is_consistent_after_ingest_fuzz(ingest_env: tuple[Store, PostIngestor, Totals, Path]) -> None:
    store = ingest_env[0]
    assert store.integrity_problems() == []
    assert [f for f in check_invariants(store) if f.level == "problem"] == []
    for text, created in store.db.execute("SELECT text, created_at FROM posts"):
        assert text.strip() and len(text) <= 10_000 and created.endswith("Z")
    assert not any(math.isnan(v) for (v,) in store.db.execute("SELECT sentiment_score FROM posts WHERE sentiment_score IS NOT NULL"))
