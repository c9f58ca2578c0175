"""Pure parts of the recommender: fusion, intent, metrics, catalog import validation, index sync."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from core.domain import ItemKind
from core.repos import CatalogRepository
from core.store import Store
from recsys.catalog_io import CatalogImportError, export_csv, export_json, import_catalog
from recsys.evaluate import ndcg_at, recall_at, reciprocal_rank
from recsys.fusion import reciprocal_rank_fusion
from recsys.intent import chinese_number
from recsys.query import QueryParser

MINI = {
    "courses": [
        {"slug": "course/mapo", "title": "川味家常菜", "cuisine": "川菜", "level": "beginner", "price_cents": 9900,
         "outline": ["第1课：麻婆豆腐", "第2课：回锅肉"], "diet_tags": ["辣"]},
    ],
    "ingredients": [
        {"slug": "ingredient/tofu", "name": "嫩豆腐", "category": "豆制品", "price_cents": 450, "stock": 20,
         "allergens": ["大豆"], "aliases": ["豆腐"]},
        {"slug": "ingredient/pork-belly", "name": "五花肉", "category": "肉类", "price_cents": 2800, "stock": 5},
    ],
    "recipes": [
        {"slug": "recipe/mapo-tofu", "title": "麻婆豆腐", "course": "course/mapo",
         "ingredients": [{"ingredient": "ingredient/tofu", "quantity": "1盒"}]},
    ],
    "kits": [
        {"slug": "kit/mapo", "title": "麻婆豆腐食材包", "course": "course/mapo", "price_cents": 3900,
         "items": [{"ingredient": "ingredient/tofu", "quantity": "1盒"}, {"ingredient": "ingredient/pork-belly"}]},
    ],
}


def test_rrf_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]], k=60)
    assert max(fused, key=fused.get) == 1
    assert fused[3] > fused[2] and fused[4] == pytest.approx(1 / 63)


@pytest.mark.parametrize(
    ("query", "labels", "budget", "tastes", "level", "target"),
    [
        ("牛腩配什么", ["pairing", "ingredient"], None, [], None, "ingredient/beef-brisket"),
        ("100块以内的烘焙课", ["course", "budget"], 10000, [], None, None),
        ("有沒有適合減脂的課", ["course", "diet"], None, ["低脂"], None, None),
        ("零基础能学的川菜", ["course", "level"], None, [], "beginner", None),
        ("想买个做火锅的食材包", ["kit", "ingredient"], None, [], None, None),
        ("预算两百块，想给宝宝做辅食", ["budget", "diet"], 20000, ["儿童"], None, None),
    ],
)
def test_parsed_query(query, labels, budget, tastes, level, target) -> None:
    q = QueryParser({"牛腩": "ingredient/beef-brisket"}).parse(query)
    assert q.labels == labels
    assert q.budget_cents == budget
    assert q.tastes == tastes
    assert q.level == level
    assert q.pairing_target == target


def test_parsed_constraints_with_negation_and_family() -> None:
    parser = QueryParser({"香菜": "ingredient/cilantro", "鸡翅": "ingredient/chicken-wings"})
    kid = parser.parse("孩子花生过敏 想学几道他能吃的菜").constraints
    assert [(c.key, c.who) for c in kid] == [("allergen:花生", "孩子")]
    assert {c.key for c in parser.parse("花生芝麻都过敏").constraints} == {"allergen:花生", "allergen:芝麻"}
    assert {c.key for c in parser.parse("allergic to shellfish, seafood course").constraints} == {"allergen:贝类"}
    assert any(c.key == "avoid:ingredient/cilantro" for c in parser.parse("不要香菜").constraints)
    assert parser.parse("鸡翅除了可乐鸡翅还能怎么做").constraints == []  # "besides", not a constraint
    assert parser.parse("吃辣").constraints == [] and parser.parse("不吃辣").constraints[0].value == "no_spicy"
    assert parser.parse("预算300以内 想学年夜饭 课加食材一起").budget_scope == "bundle"


def test_chinese_numbers() -> None:
    assert [chinese_number(t) for t in ("两百", "一百五", "三十", "一千二", "五")] == [200, 150, 30, 1200, 5]


def test_metrics_on_known_answers() -> None:
    relevant = frozenset({"a", "c"})
    ranked = ["b", "a", "d", "c"]
    assert recall_at(ranked, relevant, 2) == 0.5
    assert reciprocal_rank(ranked, relevant) == 0.5
    ideal = 1 + 1 / np.log2(3)
    assert ndcg_at(ranked, relevant, 10) == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / ideal)


def _write(tmp_path: Path, payload: object, name: str = "cat.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def test_import_roundtrip_json_and_csv(store: Store, tmp_path: Path) -> None:
    repo = CatalogRepository(store)
    assert import_catalog(repo, _write(tmp_path, MINI)) == {"courses": 1, "ingredients": 2, "recipes": 1, "kits": 1}
    assert store.scalar("SELECT count(*) FROM lessons") == 2
    export_json(repo, tmp_path / "out.json")
    export_csv(repo, tmp_path / "csv")
    for source in (tmp_path / "out.json", tmp_path / "csv"):
        other = Store(tmp_path / f"{source.name}.db")
        counts = import_catalog(CatalogRepository(other), source)
        assert counts == {"courses": 1, "ingredients": 2, "recipes": 1, "kits": 1}
        kit = CatalogRepository(other).lines("kit_items")
        assert {row["ingredient"] for row in kit} == {"ingredient/tofu", "ingredient/pork-belly"}
        other.close()


def test_bad_row_reports_line_and_field_and_imports_nothing(store: Store, tmp_path: Path) -> None:
    bad = json.loads(json.dumps(MINI))
    bad["ingredients"][1]["price_cents"] = -5
    bad["kits"][0]["items"].append({"ingredient": "ingredient/unicorn"})
    with pytest.raises(CatalogImportError) as info:
        import_catalog(CatalogRepository(store), _write(tmp_path, bad))
    problems = {(p.field, p.line > 1) for p in info.value.problems}
    assert ("price_cents", True) in problems
    assert ("items.2", True) in problems
    assert store.scalar("SELECT count(*) FROM courses") == 0


def test_csv_errors_name_the_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "ingredients.csv"
    path.write_text(
        "slug,name,price_cents,allergens\ningredient/egg,鸡蛋,120,鸡蛋\ningredient/bad,坏行,abc,\nnot-a-slug,x,1,\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogImportError) as info:
        import_catalog(CatalogRepository(store), path)
    lines = sorted((p.line, p.field) for p in info.value.problems)
    assert lines == [(3, "price_cents"), (4, "slug")]
    assert store.scalar("SELECT count(*) FROM ingredients") == 0


def test_unreadable_files_are_rejected_politely(store: Store, tmp_path: Path) -> None:
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path in (binary, _write(tmp_path, "just a string"), tmp_path / "missing.json"):
        with pytest.raises(CatalogImportError):
            import_catalog(CatalogRepository(store), path)


def test_index_syncs_incrementally_and_persists(store: Store, tmp_path: Path, embedder) -> None:
    from recsys.documents import build_documents
    from recsys.index import CatalogIndex, open_index

    repo = CatalogRepository(store)
    import_catalog(repo, _write(tmp_path, MINI))
    docs = build_documents(repo)
    index, report = open_index(tmp_path / "idx", docs, embedder)
    assert report.rebuilt and len(index) == 4
    _, report = open_index(tmp_path / "idx", docs, embedder)
    assert (report.added, report.updated, report.removed, report.rebuilt) == (0, 0, 0, False)
    changed = json.loads(json.dumps(MINI))
    changed["ingredients"][0]["description"] = "当天现做的卤水嫩豆腐"
    import_catalog(repo, _write(tmp_path, changed))
    store.db.execute("UPDATE kits SET active = 0")
    docs = build_documents(repo)
    index, report = open_index(tmp_path / "idx", docs, embedder)
    assert (report.added, report.updated, report.removed) == (0, 1, 1)
    vector = embedder.embed_query("嫩豆腐")
    ids, _ = index.search(vector, 3)
    tofu = next(d for d in docs if d.slug == "ingredient/tofu")
    assert ids[0] == tofu.id and tofu.kind == ItemKind.INGREDIENT
    reloaded = CatalogIndex.load(tmp_path / "idx")
    assert reloaded is not None and len(reloaded) == 3 and reloaded.fingerprint == index.fingerprint


def test_model_change_forces_rebuild(store: Store, tmp_path: Path, embedder) -> None:
    from recsys.documents import build_documents
    from recsys.index import CatalogIndex, open_index

    repo = CatalogRepository(store)
    import_catalog(repo, _write(tmp_path, MINI))
    docs = build_documents(repo)
    open_index(tmp_path / "idx", docs, embedder)
    stale = CatalogIndex.load(tmp_path / "idx")
    assert stale is not None
    stale.model = "some-other-model"
    stale.save(tmp_path / "idx")
    _, report = open_index(tmp_path / "idx", docs, embedder)
    assert report.rebuilt


def test_hnsw_option_supports_removal() -> None:
    from recsys.index import CatalogIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = CatalogIndex.from_vectors(np.arange(50), vectors, kind="hnsw")
    index.hashes = {i: "h" for i in range(50)}
    index._remove([0, 1])
    ids, _ = index.search(vectors[0], 5)
    assert 0 not in ids and len(index) == 48


def test_side_by_side_evaluation_scores_each_ranker() -> None:
    from recsys.evaluate import LabelledQuery, evaluate_side_by_side

    queries = [LabelledQuery("a", frozenset({"x"})), LabelledQuery("b", frozenset({"y", "z"}))]
    def slow(query: str) -> list[str]:  # a ranker that takes 20 ms: its latency must show it
        time.sleep(0.02)
        return ["w"]

    results = evaluate_side_by_side(
        queries, {"perfect": lambda q: ["x"] if q == "a" else ["y", "z"], "none": lambda q: ["w"], "slow": slow}
    )
    assert results["perfect"]["recall@5"] == 1.0 and results["perfect"]["mrr"] == 1.0
    assert results["none"]["recall@10"] == 0.0 and results["none"]["ndcg@10"] == 0.0
    assert 20 <= results["slow"]["latency_p50_ms"] < 2_000
    assert results["perfect"]["latency_p50_ms"] < results["slow"]["latency_p50_ms"]
