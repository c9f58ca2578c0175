"""Issue 17: poison inputs (lone surrogates, huge integers, deep nesting, random bytes) at every edge.

Each bad item is rejected alone with a reason; the good ones beside it are stored exactly once; a
poison file goes to quarantine/ and never blocks the files after it; HTTP never answers 500.
Example count: XIANKE_FUZZ_EXAMPLES or `pytest --full`, else a small CI run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.orders import import_orders
from core.repos.catalog import CatalogRepository
from core.settings import SettingsError, load_settings
from core.store import Store
from core.validation import HugeNumber, InputRejected, csv_dicts, loads_json
from listening.ingest import FileIngestor, PostIngestor
from recsys.catalog_io import CatalogImportError, import_catalog
from tests.hardening_helpers import fuzz_examples
from web.ingest import make_ingest_app
from web.orders import make_order_webhook_app

TOKEN = "poison-token-0123456789"
SALT = b"poison-salt"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
poison = st.one_of(
    st.just("\ud800"), st.just("x\udfffy"), st.just(HugeNumber("9" * 5000)), st.integers(2**64, 2**70),
    st.just(float("nan")), st.just(float("inf")), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    st.recursive(st.none(), lambda inner: st.lists(inner, max_size=2), max_leaves=8),
)


def good_post(n: int) -> dict[str, Any]:
    return {"source": "weibo", "external_id": f"ok-{n}", "text": f"第{n}次做红烧肉，老师讲得很细，配方{n * 7919}",
            "created_at": "2026-11-20T10:00:00+08:00"}


def dump(items: list[Any]) -> str:
    # Huge numbers go out as digits; surrogates as \\u escapes (ensure_ascii), the way an exporter writes them.
    return json.dumps(items, default=str).replace('"' + "9" * 5000 + '"', "9" * 5000)


def test_policy_units() -> None:
    with pytest.raises(InputRejected, match="nests"):
        loads_json("[" * 100_000)
    assert isinstance(loads_json("[" + "9" * 5000 + "]")[0], HugeNumber)
    header, rows = csv_dicts('a,b\n1,"open\n2,3\n')
    assert header == ["a", "b"]
    got = list(rows)
    assert got[0][0] == 2 and "引号" in got[0][1].reason and got[1] == (3, {"a": "2", "b": "3"})
    with pytest.raises(SettingsError, match="16"):
        load_settings(ingest_token="short")


def test_poison_file_is_quarantined_and_later_files_run(store: Store, tmp_path: Path) -> None:
    drop = tmp_path / "in"
    drop.mkdir()
    bad = [{**good_post(1), "text": "\ud800 好吃"}, {**good_post(2), "external_id": "\ud800"},
           {**good_post(3), "author": "\udfff"}, {**good_post(4), "external_id": HugeNumber("9" * 5000)}, good_post(5)]
    (drop / "a.jsonl").write_text("\n".join(dump([b])[1:-1] for b in bad) + "\n" + "[" * 100_000 + "\n")
    (drop / "b.json").write_text("[" * 100_000)
    (drop / "c.csv").write_bytes(b"source,external_id,text,created_at\nweibo,c1,\"unclosed,2026-11-20\n"
                                 b"weibo,c2,\xe7\xba\xa2\xe7\x83\xa7\xe8\x82\x89\xe5\xa5\xbd\xe5\x90\x83,1764300000\n")
    (drop / "d.jsonl").write_bytes(bytes(range(256)) * 20)
    (drop / "e.jsonl").write_text(json.dumps(good_post(6), ensure_ascii=False) + "\n")
    reports = {r.path.name: r for r in FileIngestor(PostIngestor(store, SALT)).ingest_path(drop)}
    assert reports["a.jsonl"].report.added == 2 and len(reports["a.jsonl"].report.rejected) == 4
    assert {r.line for r in reports["a.jsonl"].report.rejected} == {2, 3, 4, 6}
    assert reports["b.json"].file_rejected and (drop / "quarantine" / "b.json.report.json").exists()
    assert reports["c.csv"].report.added == 1 and reports["c.csv"].report.rejected[0].line == 2
    assert reports["d.jsonl"].file_rejected and (drop / "quarantine" / "d.jsonl").exists()
    assert reports["e.jsonl"].report.added == 1
    assert store.scalar("SELECT text FROM posts WHERE external_id = 'ok-1'") == "\ufffd 好吃"
    assert store.scalar("SELECT count(*) FROM posts") == 4


def test_order_import_and_catalog_survive_poison(store: Store, tmp_path: Path) -> None:
    store.db.execute("INSERT INTO users (id, first_name) VALUES (7, 'a')")
    line = {"slug": "kit/hotpot", "quantity": 1, "price_cents": 100}
    orders = [{"external_id": "o1", "user_id": "1" * 400, "created_at": "2026-11-20T10:00:00Z", "items": [line]},
              {"external_id": "\ud800", "user_id": 7, "created_at": "2026-11-20T10:00:00Z", "items": [line]},
              {"external_id": "o3", "user_id": 7, "created_at": "2026-11-20T10:00:00Z", "items": [line]}]
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(orders))
    report = import_orders(store, path)
    assert report.added == 1 and len(report.rejected) == 2
    assert "数字过长" in " ".join(report.rejected[0].reasons)
    blob = tmp_path / "catalog.json"
    blob.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CatalogImportError, match=r"binary|encoding"):
        import_catalog(CatalogRepository(store), blob)


@pytest.fixture
async def clients(tmp_path: Path) -> Any:
    db = tmp_path / "http.db"
    Store(db).close()
    posts = TestClient(TestServer(make_ingest_app(lambda: Store(db), TOKEN, salt=SALT)))
    orders = TestClient(TestServer(make_order_webhook_app(lambda: Store(db), TOKEN)))
    await posts.start_server()
    await orders.start_server()
    yield posts, orders, db
    await posts.close()
    await orders.close()


async def test_http_edges_never_500(clients: Any, request: pytest.FixtureRequest) -> None:
    posts, orders, db = clients
    assert (await posts.post("/v1/posts", data=b"[]", headers={**AUTH, "Content-Type": "text/plain"})).status == 415
    assert (await posts.post("/v1/posts", data=b"[" * 100_000, headers=AUTH)).status == 422
    bodies: list[bytes] = []  # generated first (hypothesis is synchronous), then posted on the test's loop
    stored: set[str] = set()
    examples = fuzz_examples(request.config, 15)
    counter = iter(range(10**9))

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.booleans(), st.sampled_from(["text", "external_id", "author", "source"]), poison),
                    min_size=1, max_size=6))
    def cases(items: list[tuple[bool, str, Any]]) -> None:
        batch = []
        for is_good, field, value in items:
            post = good_post(next(counter))
            if is_good:
                stored.add(post["external_id"])
            else:
                post[field] = value
            batch.append(post)
        bodies.append(dump(batch).encode())

    cases()
    for body in bodies:
        for client, url in ((posts, "/v1/posts"), (orders, "/v1/orders")):
            response = await client.post(url, data=body, headers=AUTH)
            assert response.status in (200, 422), (response.status, await response.text())
            answer = await response.json()
            assert all(r["reasons"] for r in answer["rejected"])
    store = Store(db)
    ids = {row["external_id"] for row in store.query("SELECT external_id FROM posts")}
    assert stored <= ids
    assert store.scalar("SELECT count(*) FROM posts") == len(ids)
    store.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from typer.testing import CliRunner

    import xianke.context
    from xianke.cli import app

    monkeypatch.setenv("XIANKE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XIANKE_DB_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setattr(xianke.context, "_app", None)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_cli_flags_and_exit_codes(cli: Any, tmp_path: Path) -> None:
    assert cli("recommend", "").exit_code == 2
    assert cli("recommend", "川菜", "--user", "99999999999999999999999").exit_code == 2
    for flags in (["--cost", "nan"], ["--cost", "inf"], ["--starts", "1970-01-01"], ["--ends", "9999-12-31"]):
        result = cli("campaign", "create", "--slug", "spring_qr", "--name", "春季", *flags)
        assert result.exit_code == 2, (flags, result.output)
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(json.dumps(good_post(1)) + "\n" + json.dumps({**good_post(2), "external_id": "\ud800"}) + "\n")
    bad.write_text("[" * 100_000 + "\n")
    mixed = cli("ingest", str(good), "--keep")
    assert mixed.exit_code == 1 and "lone surrogate" in mixed.output
    assert cli("ingest", str(bad), "--keep").exit_code == 2
