"""Updates/s through the real Dispatcher (long polling) against the in-process fake Bot API server.

Two workloads from one run, same bot, same users:
- recommendation messages: free Chinese text → classify → hybrid recommendation → one card message
  (ML-bound: a query embedding per message; every text is new, so the embedding cache never helps);
- button presses: 👍 on a card → event row + live personalisation update + answerCallbackQuery
  (non-ML: SQLite, aiogram routing, HTTP to the fake server).
Throttling is lifted for the run (it would otherwise be the thing measured).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from xianke.benchmarks import Row

if TYPE_CHECKING:
    from bot.dialogue import DialogueService

# Customer questions (each sent with a varying suffix, so no embedding is ever served from cache).
QUERIES = [
    "零基础想学几道家常川菜", "减脂期间适合吃什么", "周末给孩子烤个生日蛋糕", "牛腩怎么炖才软烂",
    "100块以内的烘焙课", "想买新鲜的三文鱼做刺身", "火锅食材包", "素食的家常菜课程",
    "广式早茶点心怎么做", "适合新手的西餐课", "想学做面条", "低糖甜品",
]

UNLIMITED = 10**9


def _fake_server() -> type:
    """The fake Bot API ships in the `tests` package; an editable install made before it existed
    does not map `tests`, so fall back to the checkout this module lives in."""
    try:
        from tests.fakebot import FakeBotAPI
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "tests" / "fakebot").is_dir():
            raise RuntimeError("the fake Bot API (tests/fakebot) is not installed; reinstall with pip install -e .") from None
        sys.path.insert(0, str(root))
        from tests.fakebot import FakeBotAPI
    return FakeBotAPI


async def _measure(dialogue: DialogueService, db_path: Path, presses: int, messages: int, users: int) -> list[Row]:
    from bot.middlewares import BotStats
    from bot.runners import build_dispatcher
    from core.store import Store

    FakeBotAPI = _fake_server()
    fsm_store = Store(db_path)
    async with FakeBotAPI() as api:
        bot = api.make_bot()
        stats = BotStats()
        dp = build_dispatcher(
            dialogue, fsm_store, stats=stats, throttle_rate=UNLIMITED, throttle_callback_rate=UNLIMITED
        )
        polling = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, polling_timeout=5, allowed_updates=dp.resolve_used_update_types())
        )
        try:
            await api.wait_for_poll(timeout=30)
            ids = [900_000_000 + n for n in range(users)]
            # warm-up (not timed): every user exists and holds one card message to press on
            for n, user in enumerate(ids):
                api.push_message(user, f"{QUERIES[n % len(QUERIES)]}（热身）")
            await stats.wait_processed(users, timeout=300)

            texts = [f"{QUERIES[n % len(QUERIES)]}{'，' * (n // len(QUERIES) + 1)}第{n}次" for n in range(messages)]
            done, sent = stats.processed, len(api.calls("sendMessage"))
            start = time.perf_counter()
            for n, text in enumerate(texts):
                api.push_message(ids[n % users], text)
            await stats.wait_processed(done + messages, timeout=600)
            text_s = time.perf_counter() - start
            assert len(api.calls("sendMessage")) - sent == messages, "some messages were not answered"

            likes: list[tuple[int, str, int]] = []
            for user in ids:
                card = next(m for m in reversed(api.sent_messages(user)) if (m.get("reply_markup") or {}))
                like = next(
                    b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row
                    if b.get("callback_data", "").startswith("c:like:")
                )
                likes.append((user, like, card["message_id"]))
            done = stats.processed
            answered = len(api.calls("answerCallbackQuery"))
            start = time.perf_counter()
            for n in range(presses):
                user, data, message_id = likes[n % users]
                api.push_callback(user, data, message_id)
            await stats.wait_processed(done + presses, timeout=600)
            press_s = time.perf_counter() - start
            assert len(api.calls("answerCallbackQuery")) - answered == presses, "some presses were not answered"
            assert not stats.errors, f"handler errors during the bench: {stats.errors[:5]}"
        finally:
            await dp.stop_polling()
            await polling
            fsm_store.close()
    press_rate, text_rate = presses / press_s, messages / text_s
    return [
        Row("bot.button_updates_per_s", press_rate, "updates/s", f"{presses} 👍 presses, {users} users (non-ML)"),
        Row("bot.recommend_updates_per_s", text_rate, "updates/s", f"{messages} free-text messages → card answers"),
        Row("bot.button_to_recommend_ratio", press_rate / text_rate, "×", "how much cheaper a press is"),
        Row("bot.recommend_ms_per_update", 1000 / text_rate, "ms", "wall time per message, serialised worker"),
    ]


def run(dialogue: DialogueService, db_path: Path, *, presses: int = 300, messages: int = 40, users: int = 10) -> list[Row]:
    """Both throughputs from one run of the real dispatcher + fake server; `db_path` is the dialogue's DB file."""
    return asyncio.run(_measure(dialogue, db_path, presses, messages, users))


def bench_bot(
    presses: int = typer.Option(300, min=10, help="How many 👍 button presses to push."),
    messages: int = typer.Option(40, min=5, help="How many free-text recommendation messages to push."),
    users: int = typer.Option(10, min=1, max=1000, help="Distinct customers the updates come from."),
) -> None:
    """Updates/s through the real dispatcher: button presses (non-ML) and recommendation messages."""
    from xianke.bot_wiring import build_dialogue
    from xianke.commands.bench import print_rows
    from xianke.context import get_app

    app = get_app()
    with tempfile.TemporaryDirectory(prefix="xianke-bench-bot-") as folder:
        path = Path(folder) / "bench.db"
        store = app.open_store(path)
        dialogue = build_dialogue(app, store)
        try:
            rows = run(dialogue, path, presses=presses, messages=messages, users=users)
        finally:
            dialogue.close()
            store.close()
    print_rows("bot (real dispatcher, fake Bot API)", rows)
