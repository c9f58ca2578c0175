"""判断有误 (marketers correct sentiment): corrections are stored, kept out of evaluation data, and
retrain the model — a correction flips the retrained model's answer on its post, and a retrain that
lowers validation accuracy is rejected while the previous model stays in place. Plus the button flow
through the real bot against the fake Bot API, and the buttons under digests and alerts.

Retraining runs on a seeded 800-row subset of the shared train.csv; e5 vectors are cached per text
(var/cache-tests), so after the first run only the trainings themselves take time.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from core.repos.corrections import (
    CorrectionError,
    CorrectionRepository,
    correction_buttons,
    fix_callback,
    parse_fix_callback,
)
from core.store import Store, dumps
from jobs.tasks import sentiment_retrain_job
from listening.sentiment_retrain import (
    PREVIOUS_DIR,
    RETRAIN_FILE,
    VectorCache,
    retrain_sentiment,
    validation_rows,
)
from nlp.sentiment import EmbeddedSentiment
from nlp.sentiment_train import (
    LabelledText,
    evaluate_sentiment,
    read_labelled_csv,
    split_rows,
    train_sentiment,
)
from nlp.text import normalize, text_hash
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv, buttons, running_bot
from tests.conftest import MODELS_DIR, REPO_ROOT
from tests.fakes import RecordingNotifier

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "sentiment" / "train.csv"
SUBSET = 800
SEED = 13
VECTOR_CACHE = MODELS_DIR.parent / "cache-tests" / "sentiment-vectors.npz"
needs_data = pytest.mark.skipif(
    not TRAIN_CSV.is_file(), reason=f"shared sentiment data not found at {TRAIN_CSV} (../shared/data relative to the repo)"
)
pytestmark = pytest.mark.timeout(300)


def _insert_post(store: Store, text: str, sentiment: str = "negative", score: float = 0.1,
                 when: datetime | None = None) -> int:
    n = int(store.scalar("SELECT count(*) FROM posts") or 0) + 1
    return int(store.db["posts"].insert({
        "source": "weibo", "external_id": f"t{n}-{text_hash(text)[:8]}", "text": text, "text_norm": normalize(text),
        "text_hash": text_hash(text), "created_at": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "sentiment": sentiment, "sentiment_score": score, "aspects": dumps([]),
    }).last_pk)


def _write_csv(path: Path, rows: list[LabelledText]) -> Path:
    lines = ["domain,label,text"] + [f'{r.domain},{r.label},"{r.text.replace(chr(34), chr(34) * 2)}"' for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- pure parts ---------------------------------------------------------------------------------


def test_callback_data_round_trips_within_telegram_limits() -> None:
    for label in (None, "positive", "neutral", "negative", "cancel"):
        data = fix_callback(123456789012, label)
        assert len(data.encode()) <= 64 and parse_fix_callback(data) == (123456789012, label)
    for forged in ("sfix:", "sfix:abc", "sfix:1:q", "sfix:1:p:x", "c:like:1", None, "sfix:" + "9" * 30):
        assert parse_fix_callback(forged) is None
    rows = correction_buttons([11, 12, 13, 14], label="最负面{n} 判断有误")
    assert [[b.label for b in row] for row in rows] == [["最负面1 判断有误", "最负面2 判断有误", "最负面3 判断有误"],
                                                        ["最负面4 判断有误"]]
    assert rows[0][0].action == "sfix:11"


def test_repository_keeps_one_label_per_marketer_and_the_latest_per_post(store: Store) -> None:
    repo = CorrectionRepository(store)
    post = _insert_post(store, "  送餐超快，味道也好  ")
    t = datetime(2026, 11, 20, tzinfo=UTC)
    repo.add(post, "neutral", 1, now=t)
    repo.add(post, "positive", 1, now=t + timedelta(minutes=1))  # the same marketer changes their mind
    repo.add(post, "negative", 2, now=t + timedelta(minutes=2))  # another marketer disagrees, later
    assert [(r["marketer_id"], r["label"]) for r in repo.for_post(post)] == [(1, "positive"), (2, "negative")]
    assert repo.training_pairs() == [(normalize("  送餐超快，味道也好  "), "negative")]
    repo.add(post, "neutral", 3, now=t + timedelta(minutes=3))
    assert repo.training_pairs() == []  # a two-class model cannot learn "neutral"…
    assert repo.corrected_texts() == [normalize("  送餐超快，味道也好  ")]  # …but the post stays out of evaluation
    with pytest.raises(CorrectionError, match="label"):
        repo.add(post, "great", 1)
    with pytest.raises(CorrectionError, match="does not exist"):
        repo.add(999, "positive", 1)


async def test_alert_and_digest_messages_carry_the_buttons(store: Store) -> None:
    from listening.alerts import Alert, send_alerts
    from listening.digest import build_digest, digest_messages, most_negative_section

    notifier = RecordingNotifier()
    sent = notifier.sent

    alert = Alert("negative_spike", "negative_volume", "k", datetime(2026, 11, 20), "day", 9, 5, 2, "⚠️",
                  {"post_ids": [7, 8]})
    await send_alerts(notifier, [42], [alert])
    assert [b.action for row in sent[0].buttons for b in row] == ["sfix:7", "sfix:8"]
    now = datetime.now(UTC)
    first = _insert_post(store, "难吃到想哭", "negative", 0.05, now - timedelta(hours=2))
    second = _insert_post(store, "配送太慢了", "negative", 0.2, now - timedelta(hours=3))
    digest = build_digest(store, "adhoc", now, UTC, sections=[most_negative_section])
    [text] = digest_messages(42, digest)
    assert [b.action for row in text.buttons for b in row] == [f"sfix:{first}", f"sfix:{second}"]


# -- retraining on a subset of the shared data ----------------------------------------------------


@dataclass
class Lab:
    csv: Path
    embedder: VectorCache
    models_dir: Path
    baseline: Path
    post_text: str
    post_label: int  # the right label, which the baseline gets wrong (or is least sure of)
    baseline_p: float


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Lab:
    if not TRAIN_CSV.is_file():
        pytest.skip(f"shared sentiment data not found at {TRAIN_CSV}")
    folder = tmp_path_factory.mktemp("corrections")
    rows = read_labelled_csv(TRAIN_CSV)
    picked = sorted(random.Random(SEED).sample(range(len(rows)), SUBSET))
    csv = _write_csv(folder / "subset.csv", [rows[i] for i in picked])
    cached = VectorCache(embedder, VECTOR_CACHE)
    models_dir = folder / "models"
    baseline = models_dir / "sentiment"
    train_sentiment(csv, cached, baseline, seed=SEED, progress=False)
    model = EmbeddedSentiment.load(baseline, cached)
    val = validation_rows(csv, SEED)
    vectors = cached.embed_queries([normalize(r.text) for r in val])
    p = np.array([r.score for r in model.predict([r.text for r in val], embeddings=vectors)])
    wrong = [i for i, r in enumerate(val) if (p[i] >= 0.5) != bool(r.label)]
    # A post the model gets wrong, the least confidently so; if it gets none wrong, the least sure one.
    pool = wrong or list(range(len(val)))
    i = min(pool, key=lambda k: abs(p[k] - 0.5))
    label = val[i].label if wrong else int(p[i] < 0.5)
    return Lab(csv, cached, models_dir, baseline, val[i].text, label, float(p[i]))


def _score(model_dir: Path, lab: Lab, text: str) -> float:
    return EmbeddedSentiment.load(model_dir, lab.embedder).predict([text])[0].score


@needs_data
def test_cli_retrain_with_corrections_flips_the_answer_on_the_post(
    lab: Lab, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xianke.context
    from core.settings import Settings
    from xianke.app import App
    from xianke.commands.sentiment import eval_sentiment_cmd, train_sentiment_cmd

    post = _insert_post(store, lab.post_text, "positive" if lab.baseline_p >= 0.5 else "negative", lab.baseline_p)
    right = "positive" if lab.post_label else "negative"
    CorrectionRepository(store).add(post, right, 7001)
    app = App(Settings(data_dir=tmp_path / "var", db_path=store.path))
    app.__dict__["embedder"] = lab.embedder  # the session's encoder behind the per-text vector cache
    monkeypatch.setattr(xianke.context, "_app", app)
    cli = typer.Typer()
    cli.command("train")(train_sentiment_cmd)
    cli.command("eval")(eval_sentiment_cmd)
    out = tmp_path / "retrained"
    result = CliRunner().invoke(cli, ["train", "--data", str(lab.csv), "--out", str(out), "--with-corrections"])
    assert result.exit_code == 0, result.output
    assert "corrections: 1 used" in result.output
    before, after = lab.baseline_p, _score(out, lab, lab.post_text)
    assert (before >= 0.5) != (after >= 0.5), (before, after)  # the answer on the corrected post flipped
    assert (after >= 0.5) == bool(lab.post_label)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    baseline_metrics = json.loads((lab.baseline / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["split"]["corrections"] == 1 and metrics["split"]["correction_weight"] == 5
    # The corrected post was a validation row: it left validation (and train got it, ×5).
    assert metrics["split"]["validation"] == baseline_metrics["split"]["validation"] - 1
    assert metrics["split"]["train"] == baseline_metrics["split"]["train"] + 5

    # `xianke eval sentiment` leaves corrected posts out of the scored rows unless asked not to.
    model = EmbeddedSentiment.load(lab.baseline, lab.embedder)
    scored = evaluate_sentiment(model, lab.csv, lab.embedder, exclude_texts=[lab.post_text])
    assert scored["n"] == SUBSET - 1 and scored["excluded_corrections"] == 1
    app.settings.sentiment_model = str(lab.baseline)
    cli_eval = CliRunner().invoke(cli, ["eval", "--data", str(lab.csv), "--limit", "100000"])
    assert cli_eval.exit_code == 0, cli_eval.output
    assert json.loads(cli_eval.stdout.strip().splitlines()[-1])["excluded_corrections"] == 1


@needs_data
def test_retrain_that_lowers_validation_accuracy_is_rejected(lab: Lab) -> None:
    # Marketers "correct" a quarter of the training posts to the wrong label (each counts ×5).
    train = split_rows(read_labelled_csv(lab.csv), SEED).train
    wrong = [(r.text, "negative" if r.label else "positive") for r in train[:160]]
    before = {p.name: p.read_bytes() for p in lab.baseline.iterdir()}
    result = retrain_sentiment(lab.csv, lab.embedder, lab.baseline, corrections=wrong, seed=SEED)
    assert not result.promoted and result.reason == "accuracy_dropped"
    assert result.current_accuracy is not None and result.candidate_accuracy < result.current_accuracy
    assert {p.name: p.read_bytes() for p in lab.baseline.iterdir()} == before  # the previous model is kept
    assert not (lab.models_dir / PREVIOUS_DIR).exists()
    assert [p.name for p in lab.models_dir.iterdir()] == ["sentiment"]  # no candidate left behind


@needs_data
def test_weekly_job_promotes_a_better_model_and_records_the_numbers(lab: Lab, store: Store, tmp_path: Path) -> None:
    from core.settings import Settings
    from jobs.registry import JOBS
    from jobs.scheduler import JobRunner

    assert "sentiment_retrain" in JOBS
    settings = Settings(data_dir=tmp_path / "var", db_path=store.path, sentiment_train_csv=lab.csv)
    current = settings.models_dir / "sentiment"
    # The model in use is a broken one (the baseline with its weights negated): any honest retrain beats it.
    base = EmbeddedSentiment.load(lab.baseline, lab.embedder)
    EmbeddedSentiment(base.features, -base.term_weights, -base.vector_weights, -base.intercept, lab.embedder,
                      band=base.band, encoder=base.encoder).save(current)
    post = _insert_post(store, lab.post_text, "negative", lab.baseline_p)
    CorrectionRepository(store).add(post, "positive" if lab.post_label else "negative", 7001)
    cache = settings.data_dir / "cache" / "sentiment-vectors.npz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(VECTOR_CACHE, cache)  # the job's own cache, pre-filled so the test does not re-embed

    runner = JobRunner(settings, lambda: Store(store.path), get_embedder=lambda: lab.embedder)
    run = runner.run("sentiment_retrain")
    assert run.status == "ok", run.error
    counts = run.counts
    assert counts["promoted"] == 1 and counts["val_acc_candidate"] > counts["val_acc_current"]
    assert counts["corrections"] == 1 and counts["validation_n"] > 0
    assert json.loads(store.scalar("SELECT counts FROM job_runs WHERE id = ?", [run.run_id]))["promoted"] == 1
    assert (current / RETRAIN_FILE).is_file() and (settings.models_dir / PREVIOUS_DIR).is_dir()
    assert (_score(current, lab, lab.post_text) >= 0.5) == bool(lab.post_label)
    # Nothing new since: the next weekly run does not retrain.
    again = runner.run("sentiment_retrain")
    assert again.counts["skipped"] == 1 and "no new corrections" in again.counts["reason"]


def test_job_skips_without_training_data(store: Store, tmp_path: Path) -> None:
    from core.settings import Settings
    from jobs.registry import JobContext

    settings = Settings(data_dir=tmp_path / "var", db_path=store.path)
    ctx = JobContext(settings, store, lambda: None, lambda: None)
    assert sentiment_retrain_job(ctx)["reason"].startswith("no training CSV")
    settings = Settings(data_dir=tmp_path / "var", db_path=store.path, sentiment_train_csv=Path(__file__))
    ctx = JobContext(settings, store, lambda: None, lambda: None)
    assert sentiment_retrain_job(ctx) == {"skipped": 1, "reason": "no positive/negative corrections", "corrections": 0}


# -- the 判断有误 flow through the bot -----------------------------------------------------------------

MARKETER, CUSTOMER = 7001, 7002


@pytest.mark.asyncio
async def test_marketer_corrects_a_post_from_the_digest(bot_env: BotEnv) -> None:
    from bot.marketer.access import MarketerConfig
    from listening.digest import build_digest, most_negative_section, send_digest
    from xianke.notifier import AiogramNotifier

    env = bot_env
    post = _insert_post(env.store, "这家的酸奶居然不酸，口感绵密，强烈推荐！", "negative", 0.12,
                        datetime.now(UTC) - timedelta(hours=1))
    config = MarketerConfig.from_ids([MARKETER])
    async with running_bot(env, marketer_config=config) as rb:
        await rb.say(MARKETER, "/help")  # the marketer's private chat with the bot
        digest = build_digest(env.store, "adhoc", datetime.now(UTC), UTC, sections=[most_negative_section])
        [delivery] = await send_digest(AiogramNotifier(rb.bot), [MARKETER], digest, store=env.store)
        assert delivery.status == "sent"
        message = rb.api.last_message(MARKETER)
        fix = [b for b in buttons(message) if "判断有误" in b["text"]]
        assert fix and fix[0]["callback_data"] == f"sfix:{post}"

        await rb.press(MARKETER, "判断有误")
        ask = rb.api.last_message(MARKETER)
        assert "纠正情感判断" in ask["text"] and "酸奶居然不酸" in ask["text"] and "负面" in ask["text"]
        assert [b["text"] for b in buttons(ask)] == ["😊 正面", "😐 中性", "😠 负面", "取消"]
        toast = await rb.press(MARKETER, "正面")
        assert toast["text"] == "已记录，谢谢！"
        assert "应为「😊 正面」" in rb.api.last_message(MARKETER)["text"]
        [stored] = CorrectionRepository(env.store).for_post(post)
        assert (stored["label"], stored["marketer_id"]) == ("positive", MARKETER)

        # a customer forging the same button is refused and nothing is stored
        await rb.say(CUSTOMER, "/help")
        since = rb.api.call_count
        await rb.callback(CUSTOMER, fix_callback(post, "negative"))
        answer = await rb.api.wait_for("answerCallbackQuery", since=since)
        assert "市场部" in answer.params.get("text", "")
        assert [r["label"] for r in CorrectionRepository(env.store).for_post(post)] == ["positive"]
        assert rb.stats.errors == []
