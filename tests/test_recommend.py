"""The engine on the shipped demo catalog: hard filters, feedback, odd queries, pairing, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.reasons import render_reasons
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
        assert not result.items and result.message == "unusable"


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
        assert doc.facts.compatible("vegetarian"), item.slug  # derived from ingredients, not hand tags
    beginner = service.recommend("零基础能学的课", k=8)
    assert all(service.recommender.by_slug[i.slug].level != "advanced" for i in beginner.items)


def test_a_stated_budget_never_relaxes(service: RecsysService) -> None:
    result = service.recommend("预算10块钱学法式甜点", k=3)
    assert all(i.price_cents <= 1_000 for i in result.items) and result.relaxed == []
    assert result.items or result.message == "nothing_fits"


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
    assert result.items and result.items[0].kind == "ingredient" and result.message == "pairing"
    assert result.message_params["name"] == "牛腩"
    assert service.pair("月球石头配什么") is None


def test_every_item_has_a_reason(service: RecsysService) -> None:
    for query in ("想学做蛋糕给孩子过生日", "火锅食材包", "新鲜三文鱼"):
        result = service.recommend(query)
        for lang in ("zh", "en"):
            assert result.items and all(0 < len(render_reasons(i.reasons, lang)) < 120 for i in result.items)
        payload = result.to_json()
        assert set(payload["items"][0]) >= {"slug", "title", "type", "score", "reasons"}


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


# -- hard constraints typed in the message (issue 12) ------------------------------------
PORK = {"ingredient/pork-belly", "ingredient/pork-tenderloin", "ingredient/pork-ribs", "ingredient/ground-pork",
        "ingredient/pork-leg", "ingredient/bacon", "ingredient/cantonese-sausage", "ingredient/hunan-cured-pork"}
CONSTRAINT_QUERIES = [
    ("孩子花生过敏 想学几道他能吃的菜", lambda d: "花生" in d.allergens),
    ("I'm allergic to peanuts, any Sichuan dishes?", lambda d: "花生" in d.allergens),
    ("我虾蟹过敏 想学粤菜", lambda d: "甲壳类" in d.allergens),
    ("allergic to shellfish, seafood course?", lambda d: "贝类" in d.allergens),
    ("乳糖不耐 还能学烘焙吗", lambda d: "乳制品" in d.allergens),
    ("dairy free baking", lambda d: "乳制品" in d.allergens),
    ("老人对鸡蛋过敏 做点软烂的菜", lambda d: "鸡蛋" in d.allergens),
    ("my son has egg allergy, baking class?", lambda d: "鸡蛋" in d.allergens),
    ("大豆过敏 想学日料", lambda d: "大豆" in d.allergens),
    ("麸质过敏 食材包", lambda d: "小麦/麸质" in d.allergens),
    ("gluten free recipes", lambda d: "小麦/麸质" in d.allergens),
    ("对鱼过敏 想学川菜", lambda d: "鱼类" in d.allergens),
    ("我老婆海鲜过敏 想做年夜饭", lambda d: bool({"鱼类", "甲壳类", "贝类"} & d.allergens)),
    ("孩子对芝麻过敏 儿童餐", lambda d: "芝麻" in d.allergens),
    ("我对坚果过敏 想学烘焙", lambda d: bool({"坚果", "花生"} & d.allergens)),
    ("家里信伊斯兰教 想做一桌清真菜", lambda d: bool(PORK & d.ingredient_slugs) or "ingredient/shaoxing-wine" in d.ingredient_slugs),
    ("halal dishes for a family dinner", lambda d: bool(PORK & d.ingredient_slugs)),
    ("纯素 蛋奶都不吃 想学做菜", lambda d: bool({"鸡蛋", "乳制品"} & d.allergens) or not d.facts.compatible("vegetarian")),
    ("vegan cooking class", lambda d: bool({"鸡蛋", "乳制品"} & d.allergens)),
    ("想做一桌素的年夜饭", lambda d: not d.facts.compatible("vegetarian")),
    ("不吃辣 想学川菜", lambda d: "辣" in d.diet_tags or not d.facts.compatible("no_spicy")),
    ("no spicy food please, a beginner course", lambda d: "辣" in d.diet_tags),
    ("不吃猪肉 想包饺子", lambda d: bool(PORK & d.ingredient_slugs)),
    ("不要香菜 想学越南菜", lambda d: "ingredient/cilantro" in d.ingredient_slugs),
    ("痛风 想学家常菜", lambda d: not d.facts.compatible("low_purine")),
    ("孕期能吃的菜", lambda d: not d.facts.compatible("pregnancy")),
    ("生酮饮食 有课吗", lambda d: not d.facts.compatible("keto")),
    ("预算300以内 想学年夜饭 课加食材一起", lambda d: d.price_cents > 30_000),
    ("不超过一百五的食材包", lambda d: d.price_cents > 15_000),
]


@pytest.mark.parametrize(("query", "breaks"), CONSTRAINT_QUERIES)
def test_message_constraints_remove_every_violating_item(service: RecsysService, query: str, breaks) -> None:
    result = service.recommend(query, k=10)
    assert result.constraints or result.parsed.budget_cents is not None, query
    for item in result.items:
        assert not breaks(service.recommender.by_slug[item.slug]), (query, item.slug)
    assert result.items or result.message == "nothing_fits"


def test_exclusions_are_named_in_one_line(service: RecsysService) -> None:
    from bot.reasons import exclusion_line

    result = service.recommend("孩子花生过敏 想学川菜", k=5)
    line = exclusion_line(result.excluded, result.constraints, "zh")
    assert result.excluded and line and "花生" in line and "孩子" in line
    assert "peanut" in (exclusion_line(result.excluded, result.constraints, "en") or "")


def test_message_and_profile_constraints_combine(service: RecsysService) -> None:
    result = service.recommend("不吃辣 想学家常菜", profile=Profile(allergens=["花生"]), k=10)
    assert {c.key for c in result.constraints} >= {"diet:no_spicy", "allergen:花生"}
    for item in result.items:
        doc = service.recommender.by_slug[item.slug]
        assert "花生" not in doc.allergens and doc.facts.compatible("no_spicy"), item.slug


def test_impossible_combination_is_explained_never_violated(service: RecsysService) -> None:
    from bot.reasons import note

    result = service.recommend("纯素 清真 生酮 孕期 预算20块 想学川菜课加食材一起", k=5)
    for item in result.items:
        doc = service.recommender.by_slug[item.slug]
        assert doc.facts.compatible("vegan") and doc.facts.compatible("keto") and service.recommender.price_for_budget(doc, result.parsed) <= 2_000
    if not result.items:
        assert result.message == "nothing_fits"
        assert "抱歉" in (note(result.message, {}, result.constraints, "zh") or "")


def test_pairing_asked_every_way_reaches_the_pairing_answer(service: RecsysService) -> None:
    for query in ("排骨和什么一起炖好吃", "鸡蛋跟啥炒比较搭", "土豆配点啥", "买了块五花肉 配菜弄点啥", "what goes with tofu"):
        result = service.recommend(query)
        assert result.message == "pairing" and result.items, query
    fridge = service.recommend("家里有番茄和鸡蛋 做什么")
    assert fridge.message == "fridge" and fridge.items


def test_no_liked_similar_reason_without_history(service: RecsysService) -> None:
    UserRepository(service.store).ensure(777, first_name="新")
    result = service.recommend("想学做川菜", user_id=777, k=5)
    assert all(r.code != "liked_similar" for i in result.items for r in i.reasons)
