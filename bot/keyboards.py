"""Button layouts (framework-free rows of `Button`) and their conversion to Telegram markup."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CardCB, CartCB, HandoffCB, InviteCB, LangCB, MoreCB, OnbCB, ProfileCB, QuickCB
from bot.replies import Button
from bot.texts import Texts

Rows = list[list[Button]]
SKIP, DONE = -1, -2


def to_markup(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    """The one conversion of Button rows to Telegram markup (bot replies and jobs' Outgoing alike)."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=b.action, url=b.url) for b in row] for row in rows
        ]
    )


def welcome(t: Texts, lang: str) -> Rows:
    other = LangCB(lang="zh" if lang == "en" else "en").pack()
    return [
        [Button(t(lang, "btn_onboard"), ProfileCB(field="all").pack())],
        [
            Button(t(lang, "btn_browse"), QuickCB(topic="popular").pack()),
            Button(t(lang, "btn_lang_zh" if lang == "en" else "btn_lang_en"), other),
        ],
        [Button(t(lang, "btn_invite"), InviteCB().pack())],
    ]


def card_buttons(t: Texts, lang: str, items: Sequence[int], *, qid: int | None, has_more: bool) -> Rows:
    """Per card: 👍 👎 不感兴趣 / 看食材包 领券, numbered when the message holds several cards."""
    rows: Rows = []
    numbered = len(items) > 1
    for n, item in enumerate(items, 1):
        tag = f"{n} " if numbered else ""
        rows.append(
            [
                Button(f"{tag}{t(lang, 'btn_like')}", CardCB(action="like", item=item).pack()),
                Button(f"{tag}{t(lang, 'btn_dislike')}", CardCB(action="dis", item=item).pack()),
                Button(f"{tag}{t(lang, 'btn_not_interested')}", CardCB(action="ni", item=item).pack()),
            ]
        )
        rows.append(
            [
                Button(f"{tag}{t(lang, 'btn_kit')}", CardCB(action="kit", item=item).pack()),
                Button(f"{tag}{t(lang, 'btn_coupon')}", CardCB(action="cpn", item=item).pack()),
                Button(f"{tag}{t(lang, 'btn_add_cart')}", CartCB(action="add", item=item).pack()),
            ]
        )
    if has_more and qid is not None:
        rows.append([Button(t(lang, "btn_more"), MoreCB(qid=qid).pack())])
    return rows


def buy_kit(t: Texts, lang: str, kit_item: int, price: str) -> Rows:
    """Under a pairing answer: look at the kit, or put all of it in the cart at once (一次买齐)."""
    return [[
        Button(t(lang, "btn_buy_kit", price=price), CardCB(action="buy", item=kit_item).pack()),
        Button(t(lang, "btn_buy_all", price=price), CartCB(action="add", item=kit_item).pack()),
    ]]


def coupon_and_handoff(t: Texts, lang: str, item: int) -> Rows:
    return [
        [
            Button(t(lang, "btn_add_cart"), CartCB(action="add", item=item).pack()),
            Button(t(lang, "btn_coupon"), CardCB(action="cpn", item=item).pack()),
            Button(t(lang, "btn_handoff"), HandoffCB(reason="order").pack()),
        ]
    ]


def handoff(t: Texts, lang: str, reason: str) -> Rows:
    return [[Button(t(lang, "btn_handoff"), HandoffCB(reason=reason).pack())]]  # type: ignore[arg-type]


def quick_replies(t: Texts, lang: str) -> Rows:
    return [
        [
            Button(t(lang, "btn_q_course"), QuickCB(topic="course").pack()),
            Button(t(lang, "btn_q_ingredient"), QuickCB(topic="ingredient").pack()),
        ],
        [
            Button(t(lang, "btn_q_kit"), QuickCB(topic="kit").pack()),
            Button(t(lang, "btn_q_human"), HandoffCB(reason="unclear").pack()),
        ],
    ]


def single_choice(step: str, labels: Sequence[str], skip_label: str, per_row: int = 2) -> Rows:
    buttons = [Button(label, OnbCB(step=step, value=i).pack()) for i, label in enumerate(labels)]  # type: ignore[arg-type]
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    rows.append([Button(skip_label, OnbCB(step=step, value=SKIP).pack())])  # type: ignore[arg-type]
    return rows


def multi_choice(step: str, labels: Sequence[str], chosen: set[int], done_label: str, per_row: int = 3) -> Rows:
    buttons = [
        Button(f"✅ {label}" if i in chosen else label, OnbCB(step=step, value=i).pack())  # type: ignore[arg-type]
        for i, label in enumerate(labels)
    ]
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    rows.append([Button(done_label, OnbCB(step=step, value=DONE).pack())])  # type: ignore[arg-type]
    return rows


def profile_menu(t: Texts, lang: str) -> Rows:
    fields = ("diet", "taste", "level", "allergens", "budget")
    edit = [Button(t(lang, f"btn_edit_{f}"), ProfileCB(field=f).pack()) for f in fields]  # type: ignore[arg-type]
    return [edit[:3], edit[3:], [Button(t(lang, "btn_edit_all"), ProfileCB(field="all").pack())]]
