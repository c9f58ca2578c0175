"""The engine on the shipped demo catalog: hard filters, feedback, odd queries, pairing, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.domain import EventKind, Profile
from core.repos import EventRepository, UserRepository
from core.settings import load_settings
from recsys.service import RecsysService
from tests.conftest import MODELS_DIR


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> RecsysService:
    from xianke.app import App

    root = tmp_path_factory.mktemp("recsys")
    app = App(load_settings(data_dir=root, _env_file=None))
    app.settings.__dict__["models_dir"] = MODELS_DIR  # reuse the session's built encoder
    app.__dict__["embedder"] = __import__("nlp.embedder", fromlist=["Embedder"]).Embedder(models_dir=MODELS_DIR)
    return app.open_recsys(app.open_store(root / "x.db"))


ODD_QUERIES = ["", "   ", "😀🍜🔥", "？？？", "想学" * 5000, "想學做麵包，臺灣口味", "I want to learn how to make dumplings", "<script>alert(1)</script>", "'; DROP TABLE courses; --"]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_queries_answer_or_explain_never_raise(service: RecsysService, query: str) -> None:
    result = service.recommend(query)
    assert result.items or result.message
    if not query.strip() or query in ("😀🍜🔥", "？？？"):
        assert not result.items and "想" in (result.message or "")


def test_traditional_and_english_queries_find_the_right_things(service: RecsysService) -> None:
    bread = service.recommend("想學做麵包", k=5)
    assert any("面包" in i.title or "吐司" in i.title for i in bread.items)
    dumplings = service.recommend("I want to learn how to make Chinese dumplings", k=5)
    assert any("饺" in i.title or "包子" in i.title for i in dumplings.items)


def test_allergens_from_profile_are_never_recommended(service: RecsysService) -> None:
    allergic = Profile(allergens=["花生", "甲壳类", "大豆"])
    for query in ("麻婆豆腐怎么做", "小龙虾", "宫保鸡丁", "想学川菜", "豆腐配什么"):
        for item in service.recommend(query, profile=allergic, k=10).items:
            doc = service.recommender.by_slug[item.slug]
            assert not doc.allergens & {"花生", "甲壳类", "大豆"}, (query, item.slug, doc.allergens)


def test_budget_vegetarian_and_level_filters(service: RecsysService) -> None:
    cheap = service.recommend("100块以内的烘焙课", k=5)
    assert cheap.items and all(i.price_cents <= 10_000 for i in cheap.items)
    veggie = service.recommend("想学几道家常菜", profile=Profile(diet=["素食"]), k=8)
    for item in veggie.items:
        doc = service.recommender.by_slug[item.slug]
        assert (item.kind == "ingredient" and doc.category not in ("肉类", "水产海鲜")) or {"素食", "纯素"} & set(doc.diet_tags)
    beginner = service.recommend("零基础能学的课", k=8)
    assert all(service.recommender.by_slug[i.slug].level != "advanced" for i in beginner.items)


def test_impossible_budget_relaxes_with_a_message(service: RecsysService) -> None:
    result = service.recommend("预算10块钱学法式甜点", k=3)
    assert result.items and result.relaxed == ["budget"] and "预算" in (result.message or "")


def test_dislike_never_returns_and_like_is_reflected(service: RecsysService) -> None:
    users, events = UserRepository(service.store), EventRepository(service.store)
    users.ensure(4242, first_name="测试")
    first = service.recommend("想学做川菜", user_id=4242, k=5)
    disliked = first.items[0].slug
    events.record(4242, EventKind.DISLIKE, disliked)
    for _ in range(2):
        again = service.recommend("想学做川菜", user_id=4242, k=10)
        assert disliked not in [i.slug for i in again.items]


def test_pagination_returns_new_items(service: RecsysService) -> None:
    page1 = service.recommend("家常菜", k=3)
    page2 = service.recommend("家常菜", k=3, offset=3)
    assert page1.has_more and not {i.slug for i in page1.items} & {i.slug for i in page2.items}


def test_pairing_question_gets_partners_and_a_kit(service: RecsysService) -> None:
    answer = service.pair("牛腩配什么")
    assert answer is not None and answer.ingredient_name == "牛腩"
    assert answer.pairings and answer.kit is not None
    result = service.recommend("牛腩配什么")
    assert result.items and result.items[0].kind == "ingredient" and "牛腩" in (result.message or "")
    assert service.pair("月球石头配什么") is None


def test_every_item_has_a_reason(service: RecsysService) -> None:
    for query in ("想学做蛋糕给孩子过生日", "火锅食材包", "新鲜三文鱼"):
        result = service.recommend(query)
        assert result.items and all(i.reason and len(i.reason) < 80 for i in result.items)
        payload = result.to_json()
        assert set(payload["items"][0]) >= {"slug", "title", "type", "score", "reason"}


def test_cli_recommend_and_pair_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import xianke.context as context
    from xianke.cli import app

    monkeypatch.setenv("XIANKE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(context, "_app", None)
    models = tmp_path / "models"
    models.symlink_to(MODELS_DIR, target_is_directory=True)
    runner = CliRunner()
    out = runner.invoke(app, ["recommend", "零基础学川菜", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["items"] and payload["items"][0]["type"] in {"course", "kit", "ingredient"}
    out = runner.invoke(app, ["pair", "番茄", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout.strip().splitlines()[-1])["pairings"]
    out = runner.invoke(app, ["pair", "不存在的东西"])
    assert out.exit_code == 1
