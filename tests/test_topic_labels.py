"""Topic labels are words: food vocabulary in the tokenizer, no HMM fragments, collocations, labels that
name what a group of posts discusses (a hand-labelled topic → expected keyword set)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nlp.topic_labels import Collocations, CTfidf, TopicLabeler, TopicTokenizer, topic_stopwords
from nlp.vocabulary import PACKAGED_CATALOG, catalog_food_words, food_vocabulary

CAMPAIGN = "秋季食材包"

# Written for this test: each group is what one cluster of posts would hold; every post carries the
# campaign keyword, as campaign mentions do. expected: words one of which must be in the label.
LABELLED_TOPICS: list[tuple[set[str], list[str]]] = [
    (
        {"宫保鸡丁"},
        [
            "用秋季食材包做宫保鸡丁，调料少了一包",
            "秋季食材包里的宫保鸡丁，花生米炸糊了",
            "第三次做宫保鸡丁了，秋季食材包真方便",
            "宫保鸡丁的鸡肉很嫩，秋季食材包推荐",
            "秋季食材包的宫保鸡丁调料少，味道淡",
            "跟着视频做宫保鸡丁，秋季食材包配料齐",
        ],
    ),
    (
        {"快递", "冰袋", "物流"},
        [
            "秋季食材包的快递三天才到，冰袋都化了",
            "快递太慢了，秋季食材包里的青菜蔫了",
            "秋季食材包物流慢，冰袋化成水",
            "快递员把秋季食材包扔在门口",
            "秋季食材包快递延误，冰袋没冷气了",
            "又是快递慢，秋季食材包到手不新鲜",
        ],
    ),
    (
        {"老师", "火候"},
        [
            "秋季食材包配的课，王老师讲火候讲得很细",
            "老师示范火候，秋季食材包跟着做",
            "秋季食材包的直播课老师很耐心",
            "老师说火候是关键，秋季食材包照做成功",
            "秋季食材包课程里老师讲了三遍火候",
            "喜欢这位老师，秋季食材包下次还买",
        ],
    ),
    (
        {"月饼", "冰皮月饼", "莲蓉"},
        [
            "秋季食材包里有月饼模具，做了冰皮月饼",
            "冰皮月饼一次成功，秋季食材包好评",
            "秋季食材包的莲蓉月饼馅太甜",
            "用秋季食材包做月饼，家里人都说好吃",
            "月饼皮裂开了，秋季食材包的面粉不对",
            "秋季食材包做的莲蓉月饼送人了",
        ],
    ),
    (
        {"价格", "优惠券", "贵"},
        [
            "秋季食材包价格偏贵，优惠券用不了",
            "优惠券抵扣后秋季食材包价格还行",
            "秋季食材包涨价了，价格不划算",
            "价格比超市贵，秋季食材包不会再买",
            "秋季食材包的优惠券过期了",
            "领了优惠券买秋季食材包，价格实惠",
        ],
    ),
]


def _is_word_or_collocation(tokenizer: TopicTokenizer, term: str) -> bool:
    if tokenizer.is_word(term):
        return True
    return any(tokenizer.is_word(term[:i]) and tokenizer.is_word(term[i:]) for i in range(2, len(term) - 1))


def test_vocabulary_comes_from_the_catalog_json() -> None:
    words = catalog_food_words(PACKAGED_CATALOG)
    recipes = json.loads((PACKAGED_CATALOG / "recipes.json").read_text(encoding="utf-8"))
    ingredients = json.loads((PACKAGED_CATALOG / "ingredients.json").read_text(encoding="utf-8"))
    chinese = re.compile(r"^[\u4e00-\u9fff]{2,12}$")  # Latin and digits need no jieba help
    assert {r["title"] for r in recipes if chinese.match(r["title"])} <= words
    assert {i["name"] for i in ingredients if chinese.match(i["name"])} <= words
    assert {"宫保鸡丁", "麻婆豆腐", "西兰花", "西红柿"} <= words  # an alias too
    assert "厨房小白的第一门课" not in words  # slogans in course titles are no food names
    assert {"食材包", "冷链"} <= food_vocabulary()
    assert catalog_food_words(Path("/nonexistent")) == set()


def test_tokenizer_keeps_dishes_whole_and_never_invents_words() -> None:
    tokenizer = TopicTokenizer()
    tokens = tokenizer.tokens("宫保鸡丁要少放糖，蒜蓉西兰花也成功了")
    assert "宫保鸡丁" in tokens and "丁要" not in tokens and "宫保鸡" not in tokens
    assert all(tokenizer.is_word(t) for t in tokens)
    stop = topic_stopwords()
    assert {"的", "了", "一个", "觉得", "今天", "成功"} <= stop and not stop & set(tokens)
    # Without the food vocabulary jieba alone splits the dish.
    assert "宫保鸡丁" not in TopicTokenizer(food=()).tokens("宫保鸡丁要少放糖")


def test_collocations_merge_frequent_adjacent_words_only() -> None:
    runs = [[["番茄", "牛腩", "好吃"]]] * 5 + [[["番茄", "鸡蛋"]], [["牛腩", "土豆"]], [["好吃", "下饭"]]]
    colloc = Collocations(min_count=3, min_pmi=0.1).fit(runs)
    assert colloc.merge(["番茄", "牛腩", "好吃"]) == ["番茄牛腩", "好吃"]
    assert colloc.is_collocation("番茄牛腩") and not colloc.is_collocation("番茄鸡蛋")
    assert colloc.merge(["番茄", "鸡蛋"]) == ["番茄", "鸡蛋"]


def test_labelled_topics_get_their_expected_keyword_and_never_the_campaign() -> None:
    keywords = CTfidf(ignore=[CAMPAIGN])
    described = keywords.keywords([docs for _, docs in LABELLED_TOPICS])
    labeler = TopicLabeler()
    for (expected, _), words in zip(LABELLED_TOPICS, described, strict=True):
        label = labeler([w for w, _ in words])
        parts = label.split("·")
        assert expected & set(parts), (expected, label)
        assert not any(CAMPAIGN in p or p in CAMPAIGN for p in parts), label
        assert all(keywords.is_label_term(p) for p in parts), label


def test_a_word_in_most_posts_is_dropped_without_being_told() -> None:
    # 30 posts or more: the campaign keyword sits in all of them, above max_df, so it labels nothing.
    described = CTfidf().keywords([docs for _, docs in LABELLED_TOPICS])
    assert not any(w in ("秋季", "食材包") for words in described for w, _ in words)


@pytest.mark.parametrize(
    ("keywords", "label"),
    [
        (["调料", "宫保鸡丁", "客服"], "宫保鸡丁·调料·客服"),  # the dish first
        (["快递", "冰袋", "快递员"], "快递·冰袋"),  # no repeats (快递 ⊂ 快递员)
        ([], "（未命名）"),
    ],
)
def test_labeler(keywords: list[str], label: str) -> None:
    assert TopicLabeler()(keywords) == label
