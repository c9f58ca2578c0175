"""What a customer's message gets, before any Telegram formatting: one parse, one route.

Shared by the dialogue (Telegram and `xianke chat`), `xianke recommend --batch` and
`xianke eval recsys`, so the numbers measure exactly what a customer would see.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from bot.reasons import exclusion_line, note, render_exclusion, render_reasons
from core.domain import ItemKind, Profile
from nlp.dialogue import MessageClassifier, MessageKind
from nlp.text import normalize
from recsys.pairing import PairingAnswer
from recsys.query import ParsedQuery
from recsys.recommender import RecommendResult
from recsys.service import RecsysService


@dataclass
class ShopAnswer:
    kind: str  # shopping / pairing / fridge / pairing_unknown / a MessageKind value
    message_kind: MessageKind
    parsed: ParsedQuery
    by: str
    result: RecommendResult | None = None
    pairing: PairingAnswer | None = None

    @property
    def items(self) -> list:
        return self.result.items if self.result else []


def catalog_words(recsys: RecsysService) -> set[str]:
    """Dish and ingredient names: a message naming one is a shopping question."""
    words: set[str] = {normalize(str(r["title"])) for r in recsys.pairing.recipes.values()}
    for doc in recsys.docs:
        words.add(normalize(doc.title))
        words.update(normalize(n) for n in doc.ingredient_names)
    return {w for w in words if 2 <= len(w) <= 12}


def answer_message(
    recsys: RecsysService,
    classifier: MessageClassifier,
    text: str,
    *,
    food_words: Collection[str] = (),
    profile: Profile | None = None,
    user_id: int | None = None,
    k: int = 3,
    exclude: Sequence[str] = (),
    kinds: Collection[ItemKind] | None = None,
) -> ShopAnswer:
    parsed = recsys.parse(text, profile)
    core = parsed.text.strip(" ，,。.!！?？")
    hint = parsed.looks_like_shopping or any(w in parsed.text for w in food_words) or (
        2 <= len(core) <= 8 and any(core in w for w in food_words)  # 手抓饭 → 羊肉手抓饭
    )
    classified = classifier.classify(parsed.text, looks_like_shopping=hint)
    kind = classified.kind
    answer = ShopAnswer(kind.value, kind, parsed, classified.by)
    if kind.is_support:
        return answer
    asks_pairing = parsed.pairing or bool(parsed.fridge)
    if asks_pairing and kind in (MessageKind.SHOPPING, MessageKind.UNCLEAR, MessageKind.SMALL_TALK):
        kind = answer.message_kind = MessageKind.SHOPPING
    if kind is not MessageKind.SHOPPING:
        return answer
    answer.result = recsys.recommend(parsed, user_id=user_id, profile=profile, k=k, exclude=exclude, kinds=kinds)
    if answer.result.message == "pairing" and parsed.pairing_target:
        answer.kind = "pairing"
        answer.pairing = recsys.pair(parsed.pairing_target)
    elif answer.result.message == "fridge":
        answer.kind = "fridge"
    return answer


def batch_record(record_id: Any, answer: ShopAnswer, lang: str = "zh") -> dict[str, Any]:
    """The `xianke recommend --batch` line: what the customer sees, as data."""
    result = answer.result
    constraints = answer.parsed.constraints
    message = None
    if result is not None:
        parts = [note(result.message, result.message_params, constraints, lang), exclusion_line(result.excluded, constraints, lang)]
        message = " ".join(p for p in parts if p) or None
    return {
        "id": record_id,
        "kind": answer.kind,
        "items": [
            {"slug": i.slug, "title": i.title, "kind": i.kind, "reason": render_reasons(i.reasons, lang)} for i in (result.items if result else [])
        ],
        "message": message,
        "excluded": [{"slug": e.slug, "why": render_exclusion(e, lang)} for e in (result.excluded if result else [])],
        "constraints": [c.to_json() for c in constraints],
    }
