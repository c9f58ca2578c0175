"""Sentiment: the committed artifact, the neutral band, garbage input, the Hugging Face backend on a
tiny locally built model, training/split helpers and the eval CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from nlp.sentiment import (
    MANIFEST,
    PACKAGED_DIR,
    WEIGHTS,
    EmbeddedSentiment,
    LexicalFeatures,
    NeutralBand,
    SentimentArtifactError,
    SentimentModelError,
    SentimentResult,
    TransformersSentiment,
    artifact_dir,
    label_polarities,
    lexical_terms,
    load_sentiment,
    map_label,
)
from nlp.sentiment_train import (
    LabelledText,
    SentimentDataError,
    binary_metrics,
    read_labelled_csv,
    split_rows,
    train_sentiment,
    tune_band,
)

# Written for these tests; none of them occurs in the shared train.csv.
POSITIVE_REVIEWS = [
    "这家的红烧牛肉面汤头浓郁，牛肉给得很足，下次还点",
    "草莓个个饱满香甜，包装也很用心，非常满意",
    "酸奶口感顺滑，孩子特别爱喝，回购第三次了",
    "骑手送得超快，饭菜还是热乎的，好评",
    "橙子水分足又甜，性价比很高",
]
NEGATIVE_REVIEWS = [
    "等了两个小时才送到，菜全凉了，再也不点了",
    "苹果一半都是烂的，客服还不处理，太失望了",
    "牛奶喝起来有股怪味，感觉已经变质了",
    "米饭夹生，菜咸得发苦，难吃到想吐",
    "分量少得可怜，价格还贵，差评",
]
GARBAGE = [
    "",
    "   ",
    "😀😀😀",
    "🍓🍓👍",
    "好" * 5000 + "差" * 5000,
    "The strawberries were fresh and sweet!",
    "這家店的牛肉麵真的很好吃",
    "？？？。。。",
    "\u200b\ufeff",
    "1234567890",
]


@pytest.fixture(scope="module")
def model(embedder) -> EmbeddedSentiment:
    return EmbeddedSentiment.load(PACKAGED_DIR, embedder)


# -- the committed artifact ------------------------------------------------------------------


def test_artifact_is_small_and_self_describing():
    files = {p.name: p.stat().st_size for p in PACKAGED_DIR.iterdir() if p.is_file()}
    assert {MANIFEST, WEIGHTS, "vocab.txt", "metrics.json", "MODEL_CARD.md"} <= set(files)
    assert sum(files.values()) < 5_000_000
    manifest = json.loads((PACKAGED_DIR / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["encoder"] == "embedded:multilingual-e5-small"
    assert 0.0 <= manifest["neutral_band"]["low"] <= 0.5 <= manifest["neutral_band"]["high"] <= 1.0
    metrics = json.loads((PACKAGED_DIR / "metrics.json").read_text(encoding="utf-8"))
    shipped = metrics["methods"][metrics["chosen"]]["test"]["accuracy"]
    assert shipped > metrics["methods"]["embedding_lr"]["test"]["accuracy"]  # beats the frozen baseline


def test_clear_reviews_are_classified(model):
    results = model.predict(POSITIVE_REVIEWS + NEGATIVE_REVIEWS)
    expected = ["positive"] * len(POSITIVE_REVIEWS) + ["negative"] * len(NEGATIVE_REVIEWS)
    right = sum(r.label == e for r, e in zip(results, expected, strict=True))
    assert right >= 9, [(r.label, round(r.score, 2)) for r in results]
    for result in results:
        assert 0.0 <= result.score <= 1.0 and 0.0 <= result.confidence <= 1.0


def test_reuses_pipeline_embeddings(model, embedder):
    texts = [POSITIVE_REVIEWS[0], NEGATIVE_REVIEWS[0], ""]
    vectors = embedder.embed_queries(texts, cache=False)
    given = model.predict(texts, embeddings=vectors)
    computed = model.predict(texts)
    assert [r.label for r in given] == [r.label for r in computed]
    assert np.allclose([r.score for r in given], [r.score for r in computed], atol=1e-4)
    with pytest.raises(ValueError):
        model.predict(texts, embeddings=vectors[:2])


def test_garbage_never_raises(model):
    results = model.predict(GARBAGE)
    assert len(results) == len(GARBAGE)
    assert results[0] == results[1] == SentimentResult("neutral", 0.5, 1.0)
    assert results[8].label == "neutral"  # only invisible characters
    assert all(r.label in {"positive", "neutral", "negative"} for r in results)
    assert model.predict([]) == []


def test_neutral_band():
    band = NeutralBand(0.4, 0.6)
    assert band.result(0.5).label == "neutral" and band.result(0.5).confidence == pytest.approx(1.0)
    assert band.result(0.59).label == "neutral"
    assert band.result(0.6).label == "positive" and band.result(0.95).confidence == pytest.approx(0.95)
    assert band.result(0.4).label == "negative" and band.result(0.1).confidence == pytest.approx(0.9)
    with pytest.raises(ValueError):
        NeutralBand(0.6, 0.4)


def test_neutral_band_applies_to_the_model(embedder):
    wide = EmbeddedSentiment.load(PACKAGED_DIR, embedder, band=NeutralBand(0.0, 1.0))
    assert {r.label for r in wide.predict(POSITIVE_REVIEWS[:2] + NEGATIVE_REVIEWS[:2])} == {"neutral"}


def test_tune_band_prefers_no_band_for_a_perfect_model():
    p = np.array([0.9, 0.8, 0.1, 0.2])
    band, stats = tune_band(p, np.array([1, 1, 0, 0]))
    assert (band.low, band.high) == (0.5, 0.5) and stats["neutral_rate"] == 0.0
    band, _ = tune_band(np.array([0.55, 0.45, 0.52, 0.48]), np.array([0, 1, 0, 1]))
    assert band.low < 0.45 and band.high > 0.55  # coin flips become neutral


# -- loading and corruption ------------------------------------------------------------------


def test_factory_and_local_override(tmp_path, embedder):
    assert isinstance(load_sentiment("embedded", embedder, tmp_path), EmbeddedSentiment)
    assert artifact_dir(tmp_path) == PACKAGED_DIR
    shutil.copytree(PACKAGED_DIR, tmp_path / "sentiment")
    assert artifact_dir(tmp_path) == tmp_path / "sentiment"
    assert isinstance(load_sentiment(str(tmp_path / "sentiment"), embedder, None), EmbeddedSentiment)


def test_missing_or_corrupt_artifact_names_the_fix(tmp_path, embedder):
    with pytest.raises(SentimentArtifactError, match="xianke train sentiment"):
        EmbeddedSentiment.load(tmp_path / "nowhere", embedder)
    broken = tmp_path / "broken"
    shutil.copytree(PACKAGED_DIR, broken)
    data = bytearray((broken / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(SentimentArtifactError, match="xianke train sentiment"):
        EmbeddedSentiment.load(broken, embedder)


def test_refuses_another_encoder():
    from nlp.embedder import Embedder

    other = Embedder("BAAI/bge-small-zh-v1.5")  # never loaded: the check only reads the name
    with pytest.raises(SentimentArtifactError, match="XIANKE_SENTIMENT_MODEL"):
        EmbeddedSentiment.load(PACKAGED_DIR, other)


# -- lexical features ------------------------------------------------------------------------


def test_lexical_terms_keep_negation_and_normalise():
    terms = lexical_terms("不新鲜，很難吃")
    assert "c:不" in terms and "c:难吃" in terms  # Traditional → Simplified, negation kept
    assert any(t.startswith("w:") for t in terms) and any(t.startswith("b:") for t in terms)


def test_lexical_features_match_sklearn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [lexical_terms(t) for t in POSITIVE_REVIEWS + NEGATIVE_REVIEWS]
    ours = LexicalFeatures.fit(docs, min_df=1, max_terms=10**6)
    theirs = TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True, vocabulary=ours.vocabulary).fit(docs)
    assert np.allclose(ours.transform_terms(docs).toarray(), theirs.transform(docs).toarray(), atol=1e-6)


# -- Hugging Face backend on a tiny local model ----------------------------------------------


def _tiny_model(folder: Path, id2label: dict[int, str]) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"好吃难慢快的很太了新鲜差", "good", "bad"]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    ("id2label", "polarities"),
    [
        ({0: "LABEL_0", 1: "LABEL_1"}, ["negative", "positive"]),
        ({0: "negative", 1: "neutral", 2: "positive"}, ["negative", "neutral", "positive"]),
        (
            {i: f"{i + 1} stars" for i in range(5)},
            ["negative", "negative", "neutral", "positive", "positive"],
        ),
    ],
)
def test_transformers_backend_maps_labels(tmp_path, id2label, polarities):
    folder = _tiny_model(tmp_path / "tiny", id2label)
    model = load_sentiment(str(folder), None, tmp_path)
    assert isinstance(model, TransformersSentiment) and model.polarities == polarities
    texts = ["很好吃", "太慢了，差", "", "good " * 200, "😀"]
    results = model.predict(texts, embeddings=np.zeros((len(texts), 4)))  # vectors are ignored
    assert len(results) == len(texts) and results[2] == SentimentResult("neutral", 0.5, 1.0)
    for result in results:
        assert result.label in {"positive", "neutral", "negative"}
        assert 0.0 <= result.score <= 1.0 and 0.0 <= result.confidence <= 1.0
    if "neutral" not in polarities:  # two-way heads: the band decides
        assert all(model.band.result(r.score).label == r.label for r in results)


def test_label_names_and_errors():
    assert map_label("POSITIVE", 0, 2) == "positive" and map_label("Negative", 1, 2) == "negative"
    assert map_label("正面", 0, 2) == "positive" and map_label("消极", 1, 2) == "negative"
    assert map_label("very negative", 0, 5) == "negative" and map_label("neutral", 2, 5) == "neutral"
    assert map_label("LABEL_2", 2, 3) == "positive" and map_label("4 stars", 3, 5) == "positive"
    assert label_polarities({0: "1", 1: "2", 2: "3", 3: "4", 4: "5"})[2] == "neutral"
    with pytest.raises(SentimentModelError):
        map_label("joy", 0, 6)
    with pytest.raises(SentimentModelError):
        load_sentiment("/no/such/model-folder", None, None)


# -- data, split and training ----------------------------------------------------------------


def _rows(n: int) -> list[LabelledText]:
    pos = ["味道很好，送餐很快", "水果新鲜，很甜", "牛奶好喝，包装完好", "性价比高，推荐", "老板热情，分量足"]
    neg = ["太难吃了，送得慢", "水果烂了好几个", "牛奶过期了，很失望", "价格贵，分量少", "客服态度差，不处理"]
    rows = []
    for i in range(n):
        label = i % 2
        base = (pos if label else neg)[i // 2 % 5]
        rows.append(
            LabelledText(f"{base}{'！' * (i // 10)}第{i}单", label, ("takeaway", "fruit", "dairy")[i % 3])
        )
    return rows


def _write_csv(path: Path, rows: list[LabelledText]) -> Path:
    lines = ["domain,label,text"] + [f"{r.domain},{r.label},{r.text}" for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_split_is_seeded_stratified_and_keeps_duplicates_together():
    rows = _rows(300) + [LabelledText("完全相同的评论", 1, "fruit")] * 4
    split = split_rows(rows, seed=13)
    assert split == split_rows(rows, seed=13) and split != split_rows(rows, seed=14)
    assert sum(map(len, split)) == len(rows)
    assert len(split.train) == pytest.approx(0.8 * len(rows), abs=8)
    assert sum(r.text == "完全相同的评论" for r in split.train) in (0, 4)
    for part in split:
        assert {r.label for r in part} == {0, 1}


def test_bad_csv_files_raise_clear_errors(tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text("domain,text\nfruit,好吃\n", encoding="utf-8")
    with pytest.raises(SentimentDataError, match="label"):
        read_labelled_csv(missing)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("domain,label,text\nfruit,1,很好吃\n".encode("gbk"))
    with pytest.raises(SentimentDataError, match="UTF-8"):
        read_labelled_csv(gbk)
    bad = tmp_path / "bad.csv"
    bad.write_text("domain,label,text\nfruit,1,好吃\nfruit,maybe,一般\n", encoding="utf-8")
    with pytest.raises(SentimentDataError, match="line 3"):
        read_labelled_csv(bad)
    assert read_labelled_csv(_write_csv(tmp_path / "ok.csv", _rows(4)))[1].label == 1


def test_binary_metrics():
    m = binary_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.3, 0.6]), ["a", "a", "b", "b"])
    assert m["accuracy"] == 0.5 and m["macro_f1"] == 0.5 and m["per_domain_accuracy"] == {"a": 1.0, "b": 0.0}


def test_train_writes_a_loadable_artifact(tmp_path, embedder):
    csv_path = _write_csv(tmp_path / "small.csv", _rows(120))
    out = tmp_path / "model"
    metrics = train_sentiment(
        csv_path, embedder, out, corrections=[("送餐神速，赞", "positive")], progress=False
    )
    assert metrics["split"]["corrections"] == 1 and metrics["split"]["test"] > 0
    assert {"snownlp_style_nb", "embedding_lr", "lexical_lr", "blend", "joint_lr"} <= set(metrics["methods"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model-")]  # staging cleaned up
    model = EmbeddedSentiment.load(out, embedder)
    assert [r.label for r in model.predict(["水果新鲜，很甜", "牛奶过期了，很失望"])] == [
        "positive",
        "negative",
    ]


# -- the eval CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, tmp_path, embedder) -> typer.Typer:
    import xianke.context
    from core.settings import Settings
    from xianke.app import App
    from xianke.commands.sentiment import eval_sentiment_cmd

    app = App(Settings(data_dir=tmp_path / "var"))
    app.__dict__["embedder"] = embedder  # reuse the session's encoder instead of loading another
    monkeypatch.setattr(xianke.context, "_app", app)
    cli = typer.Typer()
    cli.command("sentiment")(eval_sentiment_cmd)
    cli.command("noop")(lambda: None)  # two commands, so typer keeps the subcommand name
    return cli


def test_eval_cli_prints_json_last(cli, tmp_path):
    rows = [LabelledText(t, 1, "fruit") for t in POSITIVE_REVIEWS] + [
        LabelledText(t, 0, "takeaway") for t in NEGATIVE_REVIEWS
    ]
    csv_path = _write_csv(tmp_path / "sixty.csv", rows * 6)
    result = CliRunner().invoke(cli, ["sentiment", "--data", str(csv_path)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["n"] == 60 and metrics["accuracy"] >= 0.8 and 0.0 <= metrics["macro_f1"] <= 1.0
    assert set(metrics["per_domain_accuracy"]) == {"fruit", "takeaway"} and metrics["posts_per_s"] > 0
    limited = CliRunner().invoke(cli, ["sentiment", "--data", str(csv_path), "--limit", "7"])
    assert json.loads(limited.stdout.strip().splitlines()[-1])["n"] == 7


def test_eval_cli_bad_csv_exits_2_without_traceback(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("domain,label,text\nfruit,yes,好吃\n", encoding="utf-8")
    for path in (bad, tmp_path / "absent.csv"):
        result = CliRunner().invoke(cli, ["sentiment", "--data", str(path)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "error" in result.output
