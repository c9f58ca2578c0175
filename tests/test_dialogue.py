"""The dialogue layer without Telegram: message classification (measured) and DialogueService behaviour."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage

from bot.callbacks import FACTORIES, CardCB, MoreCB, OnbCB, parse
from bot.dialogue import Customer, DialogueService, looks_like_shopping
from bot.replies import Reply
from bot.texts import EN, ZH, check_catalogs
from core.domain import ItemKind
from nlp.dialogue import MessageClassifier, MessageKind
from nlp.text import normalize
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv

LABELLED = Path(__file__).parent / "data" / "dialogue_labelled.jsonl"
MIN_ACCURACY = 0.85


def conversation(user: int) -> FSMContext:
    return FSMContext(MemoryStorage(), StorageKey(bot_id=0, chat_id=user, user_id=user))


async def customer(dialogue: DialogueService, user: int, lang: str = "zh") -> Customer:
    """The user as the middleware would see them (created on first contact)."""
    return await dialogue.customer(user, first_name="测试", language_code=lang)


def callbacks(reply: Reply) -> list[str]:
    return [b.action for row in reply.buttons for b in row]


def card_items(reply: Reply) -> list[int]:
    return [CardCB.unpack(a).item for a in callbacks(reply) if a.startswith("c:dis:")]


# -- classification, measured -------------------------------------------------------------------
def test_labelled_set_is_realistic() -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 120
    assert set(Counter(r["label"] for r in rows)) == {k.value for k in MessageKind}
    texts = " ".join(r["text"] for r in rows)
    assert any(ch in texts for ch in "嗎麼國們點課") and "😭" in texts and "refund" in texts  # Traditional, emoji, English
    assert sum(len(r["text"]) > 40 for r in rows) >= 5  # long rambling mixes


@pytest.mark.slow
def test_classifier_accuracy_on_labelled_set(bot_env: BotEnv, embedder: object) -> None:
    classifier = MessageClassifier(embedder)  # type: ignore[arg-type]
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    hits: dict[str, list[bool]] = {"all": [], "holdout": []}
    misses = []
    for row in rows:
        text = normalize(row["text"])
        hint = looks_like_shopping(bot_env.dialogue.recsys.parse(text), bot_env.dialogue.food_words)
        got = classifier.classify(row["text"], looks_like_shopping=hint).kind.value
        hits["all"].append(got == row["label"])
        if row.get("split") == "holdout":
            hits["holdout"].append(got == row["label"])
        if got != row["label"]:
            misses.append(f"{row['label']} → {got}: {row['text']}")
    accuracy = sum(hits["all"]) / len(hits["all"])
    holdout = sum(hits["holdout"]) / len(hits["holdout"])
    print(f"dialogue accuracy {accuracy:.3f} on {len(rows)}; holdout {holdout:.3f} on {len(hits['holdout'])}")
    assert accuracy >= MIN_ACCURACY, misses
    assert holdout >= 0.8, misses


def test_classifier_rules_without_a_model() -> None:
    classify = MessageClassifier(None).classify
    assert classify("转人工").kind is MessageKind.HANDOFF
    assert classify("快遞三天了還沒到").kind is MessageKind.DELIVERY
    assert classify("谢谢，但是快递还没到").kind is MessageKind.DELIVERY
    assert classify("退款怎么弄").kind is MessageKind.REFUND
    assert classify("😂😂").kind is MessageKind.UNCLEAR
    assert classify("a" * 4096).kind is MessageKind.UNCLEAR
    assert classify("Hello!!").kind is MessageKind.GREETING
    assert classify("老师讲得乱七八糟", looks_like_shopping=True).kind is MessageKind.COMPLAINT
    assert MessageKind.REFUND.is_support and not MessageKind.SHOPPING.is_support


# -- texts and callbacks ------------------------------------------------------------------------
def test_texts_exist_in_both_languages() -> None:
    assert check_catalogs({"zh": ZH, "en": EN}) == []


def test_callback_data_is_short_and_round_trips() -> None:
    packed = CardCB(action="like", item=3_000_000_999).pack()
    assert len(packed.encode()) <= 64 and parse(packed) == CardCB(action="like", item=3_000_000_999)
    assert parse("m:12") == MoreCB(qid=12) and parse("o:taste:-2") == OnbCB(step="taste", value=-2)
    for bad in (None, "", "zz:1", "c:like:x", "c:like", "c:boom:1", "x" * 65):
        assert parse(bad) is None
    assert len({f.__prefix__ for f in FACTORIES}) == len(FACTORIES)


# -- DialogueService ----------------------------------------------------------------------------
async def test_support_messages_never_get_cards(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(101)
    for text, key in (("收到的虾全都臭了，太失望了", "complaint"), ("怎么申请退款", "refund"), ("快递到哪了", "delivery")):
        [reply] = await dialogue.message(await customer(dialogue, 101), text, conv)
        assert reply.text == ZH[key]
        assert callbacks(reply) == [f"h:{key}"]
    [human] = await dialogue.message(await customer(dialogue, 101), "转人工", conv)
    assert human.text == ZH["handoff_done"] and not human.buttons


async def test_small_talk_and_unclear(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(102)
    [thanks] = await dialogue.message(await customer(dialogue, 102), "谢谢！", conv)
    assert thanks.text == ZH["thanks"] and not thanks.buttons
    [chat] = await dialogue.message(await customer(dialogue, 102), "你是机器人吗", conv)
    assert chat.text == ZH["small_talk"] and "番茄配什么" in chat.text  # a hint of what the bot can do
    [unclear] = await dialogue.message(await customer(dialogue, 102), "嗯", conv)
    assert unclear.text == ZH["unclear"] and callbacks(unclear) == ["q:course", "q:ingredient", "q:kit", "h:unclear"]
    [english] = await dialogue.message(await customer(dialogue, 110, "en"), "thanks a lot", conv)
    assert english.text == EN["thanks"]


async def test_recommendations_paging_and_dislikes(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(103)
    me = await customer(dialogue, 103)
    [first] = await dialogue.message(me, "想学做烘焙甜点", conv)
    shown = card_items(first)
    assert len(shown) == 3 and len(first.text) <= 4096
    assert all(len(a.encode()) <= 64 for a in callbacks(first))
    data = await conv.get_data()
    assert data["q"] == "想学做烘焙甜点" and data["qid"] == 1
    more = next(a for a in callbacks(first) if a.startswith("m:"))
    page = await dialogue.press(me, more, conv)
    [second] = page.replies
    assert set(card_items(second)).isdisjoint(shown)
    answer = await dialogue.press(me, CardCB(action="dis", item=shown[0]).pack(), conv)
    assert answer.toast == ZH["toast_dislike"] and not answer.replies
    [again] = await dialogue.message(me, "想学做烘焙甜点", conv)
    assert shown[0] not in card_items(again)
    stale = await dialogue.press(me, more, conv)  # the 更多 of an older answer
    assert stale.toast == ZH["stale_page"]


async def test_cards_and_buttons_in_english(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(104)
    [reply] = await dialogue.message(await customer(dialogue, 104, "en"), "I want to learn Sichuan cooking", conv)
    assert reply.text.startswith(EN["rec_header"]) and "Course" in reply.text
    labels = [b.label for row in reply.buttons for b in row]
    assert "1 Coupon" in labels and "1 Kit" in labels


async def test_kit_and_cross_sell_coupons(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(105)
    me = await customer(dialogue, 105)
    docs = bot_env.recsys.recommender.by_slug
    course = next(d for d in docs.values() if d.kind == ItemKind.COURSE and any(
        k.course_slug == d.slug for k in docs.values() if k.kind == ItemKind.KIT))
    kit_view = await dialogue.press(me, CardCB(action="kit", item=course.id).pack(), conv)
    [kits] = kit_view.replies
    assert course.title in kits.text and "包含" in kits.text
    first = await dialogue.press(me, CardCB(action="cpn", item=course.id).pack(), conv)
    second = await dialogue.press(me, CardCB(action="cpn", item=course.id).pack(), conv)
    assert "XK-" in first.replies[0].text and "已经领过" in second.replies[0].text
    rows = bot_env.dialogue.coupons.list_for(105)
    assert len(rows) == 1 and rows[0]["target_type"] == "kit"  # a course earns a kit coupon
    [listing] = await dialogue.coupons_list(me)
    assert rows[0]["code"] in listing.text
    gone = await dialogue.press(me, CardCB(action="cpn", item=123).pack(), conv)
    assert gone.toast == ZH["item_gone"]


async def test_pairing_answer_has_a_kit_button(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(106)
    [reply] = await dialogue.message(await customer(dialogue, 106), "三文魚配什麼好", conv)
    assert "三文鱼" in reply.text and "配什么" in reply.text
    assert any(a.startswith("c:buy:") for a in callbacks(reply))
    [unknown] = await dialogue.message(await customer(dialogue, 106), "龙肝凤髓配什么", conv)
    assert unknown.text in (ZH["pair_unknown"], ZH["rec_header"]) or card_items(unknown)


async def test_deep_links(bot_env: BotEnv) -> None:
    dialogue, store = bot_env.dialogue, bot_env.store
    store.db.execute("INSERT OR IGNORE INTO campaigns (slug, name) VALUES ('wechat-autumn', '秋季公众号')")
    me = await dialogue.customer(107, first_name="阿明", language_code="zh-hans")
    assert me.is_new and me.lang == "zh"
    for payload in ("wechat-autumn", "nobody_knows", "bad payload!", "x" * 65, "ref_FRIEND1", None):
        [welcome] = await dialogue.start(me, payload, conversation(107))
        assert "阿明" in welcome.text
    rows = store.query("SELECT campaign_id, payload FROM events WHERE user_id = 107 AND kind = 'start_deeplink'")
    assert len(rows) == 3
    assert rows[0]["campaign_id"] is not None and "unknown_campaign" in rows[1]["payload"]
    assert "FRIEND1" in rows[2]["payload"]


async def test_onboarding_with_typed_budget_and_profile_edit(bot_env: BotEnv) -> None:
    dialogue, conv = bot_env.dialogue, conversation(108)
    me = await customer(dialogue, 108)
    step = await dialogue.begin_onboarding(me, conv)
    assert step.text == ZH["onb_diet"]
    for value, step_name in ((1, "diet"), (-2, "taste"), (0, "level"), (-2, "allergens")):
        await dialogue.onboarding_answer(me, OnbCB(step=step_name, value=value), conv)
    assert await conv.get_state() == "onboarding:budget"
    [bad] = await dialogue.message(me, "0元", conv)
    assert bad.text == ZH["onb_budget_bad"]
    [done] = await dialogue.message(me, "两百块", conv)
    assert "设置好了" in done.text and await conv.get_state() is None
    profile = dialogue.users.profile(108)
    assert profile.diet == ["低脂"] and profile.level == "beginner" and profile.budget_cents == 20_000
    [menu] = await dialogue.profile(me)
    assert "¥200" in menu.text and "p:allergens" in callbacks(menu)
    edit = await dialogue.press(me, "p:allergens", conv)
    await dialogue.onboarding_answer(me, OnbCB(step="allergens", value=0), conv)
    saved = await dialogue.onboarding_answer(me, OnbCB(step="allergens", value=-2), conv)
    assert edit.replies[0].text == ZH["onb_allergens"] and saved.edit and "已更新" in saved.edit.text
    assert dialogue.users.profile(108).allergens == ["花生"]


async def test_language_toggle_persists(bot_env: BotEnv) -> None:
    dialogue = bot_env.dialogue
    me = await dialogue.customer(109, first_name="Ann", language_code="en-US")
    assert me.lang == "en"
    me, [reply] = await dialogue.set_language(me)
    assert me.lang == "zh" and reply.text.startswith(ZH["lang_set"])
    assert (await dialogue.customer(109, language_code="en")).lang == "zh"  # stored choice wins
