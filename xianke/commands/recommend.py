"""`xianke recommend` and `xianke pair`: the engine behind the bot, from the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from bot.answers import answer_message, batch_record, catalog_words
from bot.reasons import exclusion_line, note, render_reasons
from core.domain import format_price
from core.validation import TELEGRAM_ID_MAX, free_text
from nlp.dialogue import MessageClassifier
from xianke.context import console, fail, get_app


def _batch(path: Path, user: int | None) -> None:
    """One JSON line per {"id", "query"} line: what the customer would see through the dialogue."""
    app = get_app()
    service = app.recsys
    classifier = MessageClassifier(app.embedder)
    words = catalog_words(service)
    profile = service.users.profile(user) if user is not None else None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            query = str(record["query"])
        except (json.JSONDecodeError, KeyError, TypeError):
            print(json.dumps({"id": None, "line": number, "error": "expected {\"id\": …, \"query\": \"…\"}"}, ensure_ascii=False))
            continue
        got = answer_message(service, classifier, query, food_words=words, profile=profile, user_id=user, k=5)
        print(json.dumps(batch_record(record.get("id"), got), ensure_ascii=False))


def recommend(
    text: str = typer.Argument("", help="The customer's question in free Chinese, e.g. 零基础学川菜."),
    batch: Path | None = typer.Option(None, "--batch", help="JSONL of {\"id\", \"query\"}: one JSON answer line each."),
    user: int | None = typer.Option(
        None, "--user", min=1, max=TELEGRAM_ID_MAX, help="Telegram user id: applies their profile and history."
    ),
    k: int = typer.Option(5, "--k", min=1, max=50, help="How many items."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (slug, title, type, score, reason)."),
) -> None:
    """Recommend courses, ingredients and kits for a question (or a whole --batch file)."""
    if batch is not None:
        if not batch.is_file():
            raise fail(f"no such file: {batch}")
        _batch(batch, user)
        return
    if not text.strip():
        raise fail("请输入顾客的问题，例如：xianke recommend \"零基础学川菜\" / the question is empty")
    result = get_app().recsys.recommend(free_text(text), user_id=user, k=k)
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
        return
    header = note(result.message, result.message_params, result.constraints, "zh")
    if header:
        console.print(header)
    left_out = exclusion_line(result.excluded, result.constraints, "zh")
    if left_out:
        console.print(left_out)
    table = Table(title=f"推荐：{text[:40]}")
    for column in ("#", "type", "title", "price", "score", "为什么推荐"):
        table.add_column(column)
    for rank, item in enumerate(result.items, 1):
        table.add_row(str(rank), item.kind, item.title, item.price, f"{item.score:.3f}", render_reasons(item.reasons, "zh"))
    console.print(table)


def pair(
    ingredient: str = typer.Argument(..., help="An ingredient or a question like 牛腩配什么."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """What goes with an ingredient: pairings, recipes/courses that use them, and a kit to buy."""
    answer = get_app().recsys.pair(ingredient)
    if answer is None:
        raise fail(f"没有找到食材「{ingredient[:20]}」，试试常见叫法，比如 牛腩、番茄、三文鱼", code=1)
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    table = Table(title=f"{answer.ingredient_name} 配什么")
    for column in ("#", "食材", "score", "lift", "confidence", "理由"):
        table.add_column(column)
    for rank, p in enumerate(answer.pairings, 1):
        table.add_row(str(rank), p.name, f"{p.score:.3f}", f"{p.lift:.2f}", f"{p.confidence:.2f}", "；".join(p.reasons))
    console.print(table)
    for recipe in answer.recipes[:5]:
        console.print(f"• 菜谱/课程：{recipe}")
    if answer.kit:
        console.print(f"🛒 食材包：{answer.kit['title']} {format_price(answer.kit['price_cents'])}")
