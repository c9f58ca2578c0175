"""The /campaign wizard: name → slug → channel → start → end → cost → holdout → coupon (+ amount) →
keywords → confirm, then the campaign is created and its deep link and QR code are sent.

Each answer is checked as soon as it is typed, by building a draft `Campaign` with that one field
(so the rules and the Chinese messages are exactly those of commerce.campaigns and `xianke campaign
create`); the slug is also checked against the store. The draft lives in FSM data under one key, so
it survives a restart (SQLite FSM storage) and never touches the customer conversation's data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Chat, Message, User

from bot.dialogue import Customer, DialogueService
from bot.marketer import forms
from bot.marketer.access import MarketerConfig
from bot.marketer.callbacks import WizCB
from bot.marketer.desk import Turn, create, slug_taken, taken_slugs
from bot.marketer.qr import qr_png
from bot.replies import Button
from bot.texts import Texts
from commerce.campaigns import CHANNELS, Campaign, CampaignError, deep_link

DRAFT = "mk_draft"  # the FSM data key of the wizard's answers
PLACEHOLDER = {"slug": "draft", "name": "draft"}  # stands in for fields not asked yet when checking one
HOLDOUT_CHOICES = ("0", "10", "20", "30")
# Coupon choices offered as buttons: (trigger, what the coupon discounts), None for no coupon.
COUPON_OPTIONS: dict[str, tuple[str, str] | None] = {
    "entry_course": ("entry", "course"),
    "kit_course": ("purchase_kit", "course"),
    "course_kit": ("purchase_course", "kit"),
    "none": None,
}
CANCEL_WORDS = {"取消", "cancel", "退出"}


class CampaignWizard(StatesGroup):
    name = State()
    slug = State()
    channel = State()
    starts = State()
    ends = State()
    cost = State()
    holdout = State()
    coupon = State()
    coupon_amount = State()
    keywords = State()
    confirm = State()


class Invalid(Exception):
    """An answer that cannot be used; the message (Chinese, names the field) is shown as is."""


# -- asking ---------------------------------------------------------------------------------------


def _buttons(step: str, choices: list[tuple[str, str]], per_row: int = 2) -> list[list[Button]]:
    packed = [Button(label, WizCB(step=step, value=value).pack()) for label, value in choices]  # type: ignore[arg-type]
    return [packed[i : i + per_row] for i in range(0, len(packed), per_row)]


async def ask(turn: Turn, state: FSMContext, step: State) -> None:
    """Move to `step` and send its question (with buttons where there are choices)."""
    await state.set_state(step)
    draft = await _draft(state)
    label = turn.text
    if step == CampaignWizard.name:
        await turn.say("mk_wiz_name", prompt=True)
    elif step == CampaignWizard.slug:
        suggestion = draft.get("suggestion", "")
        rows = _buttons("slug", [(label("mk_btn_use_slug", suggestion=suggestion), "suggested")]) if suggestion else []
        await turn.say("mk_wiz_slug", rows, prompt=True, suggestion=suggestion)
    elif step == CampaignWizard.channel:
        await turn.say("mk_wiz_channel", _buttons("channel", [(v, k) for k, v in CHANNELS.items()]), prompt=True)
    elif step == CampaignWizard.starts:
        choices = [(label("mk_btn_today"), "today"), (label("mk_btn_tomorrow"), "tomorrow")]
        await turn.say("mk_wiz_starts", _buttons("starts", choices), prompt=True)
    elif step == CampaignWizard.ends:
        choices = [(label("mk_btn_7d"), "7"), (label("mk_btn_30d"), "30"), (label("mk_btn_open_end"), "open")]
        await turn.say("mk_wiz_ends", _buttons("ends", choices, per_row=3), prompt=True)
    elif step == CampaignWizard.cost:
        await turn.say("mk_wiz_cost", prompt=True)
    elif step == CampaignWizard.holdout:
        await turn.say("mk_wiz_holdout", _buttons("holdout", [(f"{v}%", v) for v in HOLDOUT_CHOICES], 4), prompt=True)
    elif step == CampaignWizard.coupon:
        choices = [(label(f"mk_btn_coupon_{key}"), key) for key in COUPON_OPTIONS]
        await turn.say("mk_wiz_coupon", _buttons("coupon", choices), prompt=True)
    elif step == CampaignWizard.coupon_amount:
        await turn.say("mk_wiz_coupon_amount", prompt=True, rule=label(f"mk_btn_coupon_{draft.get('coupon')}"))
    elif step == CampaignWizard.keywords:
        await turn.say("mk_wiz_keywords", _buttons("keywords", [(label("mk_btn_skip"), "skip")]), prompt=True)
    elif step == CampaignWizard.confirm:
        choices = [(label("mk_btn_create"), "yes"), (label("mk_btn_restart"), "restart"), (label("mk_btn_cancel"), "no")]
        summary = build(draft, turn.user.id).describe_zh()
        await turn.say("mk_wiz_confirm", _buttons("confirm", choices, per_row=3), summary=summary)


async def start(turn: Turn, state: FSMContext) -> None:
    """/campaign without an argument: a fresh draft (an unfinished one is dropped)."""
    await _set_draft(state, {})
    await ask(turn, state, CampaignWizard.name)


async def finish(state: FSMContext) -> None:
    """Leave the wizard and drop the draft, keeping any other FSM data (the customer conversation's)."""
    data = await state.get_data()
    data.pop(DRAFT, None)
    await state.set_data(data)
    await state.set_state(None)


# -- building and checking -------------------------------------------------------------------------


def check(**fields: Any) -> None:
    """Validate some fields the way a full campaign would (CampaignError carries the Chinese reason)."""
    try:
        Campaign.build(**(PLACEHOLDER | fields))
    except CampaignError as exc:
        raise Invalid(str(exc)) from None


def coupon_rule(draft: dict[str, Any]) -> dict[str, Any] | None:
    option = COUPON_OPTIONS.get(str(draft.get("coupon")))
    if option is None or "discount_cents" not in draft:
        return None
    trigger, target = option
    return {
        "trigger": trigger, "target_type": target,
        "discount_cents": draft["discount_cents"], "min_spend_cents": draft.get("min_spend_cents", 0),
    }


def build(draft: dict[str, Any], created_by: int) -> Campaign:
    """The campaign the draft describes (raises CampaignError)."""
    return Campaign.build(
        slug=draft["slug"], name=draft["name"], channel=draft["channel"],
        starts_at=_time(draft.get("starts_at")), ends_at=_time(draft.get("ends_at")),
        cost_cents=draft.get("cost_cents", 0), holdout_pct=draft.get("holdout_pct", 0.0),
        coupon_rule=coupon_rule(draft), keywords=draft.get("keywords", []), created_by=created_by,
    )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# -- one function per step: (turn, state, draft, answer) → the next step ----------------------------

Step = Callable[[Turn, FSMContext, dict[str, Any], str], Awaitable[State]]


async def _name(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    check(name=answer)
    taken = await turn.on_store(taken_slugs)
    draft.update(name=answer.strip(), suggestion=forms.suggest_slug(answer, turn.now().date(), taken))
    return CampaignWizard.slug


async def _slug(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    slug = draft.get("suggestion", "") if answer == "suggested" else answer.strip()
    check(slug=slug)
    if await turn.on_store(slug_taken, slug):
        raise Invalid(turn.text("mk_wiz_slug_taken", slug=slug))
    draft["slug"] = slug
    return CampaignWizard.channel


async def _channel(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    value = answer.strip()
    by_label = {label: key for key, label in CHANNELS.items()}
    channel = value if value in CHANNELS else by_label.get(value, value)
    check(channel=channel)
    draft["channel"] = channel
    return CampaignWizard.starts


async def _starts(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    now = turn.now()
    day = forms.parse_day(answer, now.date())
    if day is None:
        raise Invalid(turn.text("mk_wiz_bad_date"))
    moment = forms.start_moment(day, turn.config.zone)
    check(starts_at=moment)
    draft["starts_at"] = moment.isoformat()
    return CampaignWizard.ends


async def _ends(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    now = turn.now()
    if answer == "open" or forms.is_open_end(answer):
        draft["ends_at"] = None
        return CampaignWizard.cost
    starts = _time(draft.get("starts_at"))
    # "in 7 / 30 days" counts from the start when the campaign starts later than today.
    first = max(now.date(), starts.astimezone(turn.config.zone).date()) if starts else now.date()
    day = first + timedelta(days=int(answer)) if answer in ("7", "30") else forms.parse_day(answer, now.date())
    if day is None:
        raise Invalid(turn.text("mk_wiz_bad_date"))
    moment = forms.end_moment(day, turn.config.zone)
    check(starts_at=starts, ends_at=moment)
    if moment < now:
        raise Invalid(turn.text("mk_wiz_end_past"))
    draft["ends_at"] = moment.isoformat()
    return CampaignWizard.cost


async def _cost(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    cents = forms.parse_yuan(answer)
    if cents is None:
        raise Invalid(turn.text("mk_wiz_bad_money"))
    check(cost_cents=cents)
    draft["cost_cents"] = cents
    return CampaignWizard.holdout


async def _holdout(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    pct = forms.parse_percent(answer)
    if pct is None:
        raise Invalid(turn.text("mk_wiz_bad_percent"))
    check(holdout_pct=pct)
    draft["holdout_pct"] = pct
    return CampaignWizard.coupon


async def _coupon(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    by_label = {turn.text(f"mk_btn_coupon_{key}"): key for key in COUPON_OPTIONS}
    option = answer if answer in COUPON_OPTIONS else by_label.get(answer.strip())
    if option is None:
        raise Invalid(turn.text("mk_wiz_pick_button"))
    draft["coupon"] = option
    for key in ("discount_cents", "min_spend_cents"):
        draft.pop(key, None)
    return CampaignWizard.keywords if option == "none" else CampaignWizard.coupon_amount


async def _coupon_amount(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    amount = forms.parse_coupon_amount(answer)
    if amount is None:
        raise Invalid(turn.text("mk_wiz_bad_amount"))
    draft["discount_cents"], draft["min_spend_cents"] = amount
    check(coupon_rule=coupon_rule(draft))
    return CampaignWizard.keywords


async def _keywords(turn: Turn, state: FSMContext, draft: dict[str, Any], answer: str) -> State:
    words = [] if answer == "skip" or answer.strip() in ("跳过", "无", "没有", "skip") else forms.parse_keywords(answer)
    check(keywords=words)
    draft["keywords"] = words
    try:
        build(draft, turn.user.id)  # every field together, e.g. a start moved after the end by a restart
    except CampaignError as exc:
        raise Invalid(str(exc)) from None
    return CampaignWizard.confirm


STEPS: dict[str, Step] = {
    CampaignWizard.name.state: _name,
    CampaignWizard.slug.state: _slug,
    CampaignWizard.channel.state: _channel,
    CampaignWizard.starts.state: _starts,
    CampaignWizard.ends.state: _ends,
    CampaignWizard.cost.state: _cost,
    CampaignWizard.holdout.state: _holdout,
    CampaignWizard.coupon.state: _coupon,
    CampaignWizard.coupon_amount.state: _coupon_amount,
    CampaignWizard.keywords.state: _keywords,
}


async def answer(turn: Turn, state: FSMContext, value: str) -> None:
    """Apply a typed or pressed answer to the current step; re-ask with the reason when it is unusable."""
    current = await state.get_state()
    if current == CampaignWizard.confirm.state:
        await confirm(turn, state, value)
        return
    step = STEPS.get(current or "")
    if step is None:
        await turn.say("mk_wiz_stale")
        return
    draft = await _draft(state)
    try:
        next_step = await step(turn, state, draft, value)
    except Invalid as exc:
        await turn.say("mk_wiz_invalid", prompt=True, error=str(exc))
        return
    await _set_draft(state, draft)
    await ask(turn, state, next_step)


async def confirm(turn: Turn, state: FSMContext, value: str) -> None:
    if value == "no":
        await finish(state)
        await turn.say("mk_wiz_cancelled")
        return
    if value == "restart":
        await start(turn, state)
        return
    if value != "yes":
        await turn.say("mk_wiz_pick_button")
        return
    draft = await _draft(state)
    try:
        saved = await turn.on_store(create, build(draft, turn.user.id))
    except CampaignError as exc:
        await turn.say("mk_wiz_failed", error=str(exc))
        if exc.field == "slug":  # taken meanwhile (another marketer, the CLI): pick a new code
            draft["suggestion"] = forms.suggest_slug(draft["name"], turn.now().date(), await turn.on_store(taken_slugs))
            await _set_draft(state, draft)
            await ask(turn, state, CampaignWizard.slug)
        return
    await finish(state)
    await announce(turn, saved)


async def announce(turn: Turn, campaign: Campaign) -> None:
    """The deep link in text, then its QR code as a photo to print on packaging or posters."""
    username = await turn.bot_username()
    try:
        link = deep_link(username or "", campaign.slug)
    except CampaignError:
        await turn.say("mk_wiz_created_no_link", name=campaign.name, slug=campaign.slug)
        return
    await turn.say(
        "mk_wiz_created", name=campaign.name, slug=campaign.slug, link=link, holdout=f"{campaign.holdout_pct:g}"
    )
    await turn.photo(qr_png(link), f"{campaign.slug}.png", turn.text("mk_qr_caption", name=campaign.name, link=link))


async def _draft(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get(DRAFT) or {})


async def _set_draft(state: FSMContext, draft: dict[str, Any]) -> None:
    await state.update_data({DRAFT: draft})


# -- handlers -----------------------------------------------------------------------------------------


async def on_text(
    message: Message, state: FSMContext, bot: Bot, event_chat: Chat, event_from_user: User, texts: Texts,
    dialogue: DialogueService, marketer_config: MarketerConfig, customer: Customer | None = None,
) -> None:
    turn = Turn.of(bot, event_chat, event_from_user, texts, dialogue, marketer_config, customer)
    text = (message.text or "").strip()
    if text.lower() in CANCEL_WORDS:
        await finish(state)
        await turn.say("mk_wiz_cancelled")
        return
    await answer(turn, state, text[:200])


async def on_cancel(
    message: Message, state: FSMContext, bot: Bot, event_chat: Chat, event_from_user: User, texts: Texts,
    dialogue: DialogueService, marketer_config: MarketerConfig, customer: Customer | None = None,
) -> None:
    turn = Turn.of(bot, event_chat, event_from_user, texts, dialogue, marketer_config, customer)
    await finish(state)
    await turn.say("mk_wiz_cancelled")


async def on_button(
    query: CallbackQuery, callback_data: WizCB, state: FSMContext, bot: Bot, event_chat: Chat,
    event_from_user: User, texts: Texts, dialogue: DialogueService, marketer_config: MarketerConfig,
    customer: Customer | None = None,
) -> None:
    turn = Turn.of(bot, event_chat, event_from_user, texts, dialogue, marketer_config, customer)
    current = await state.get_state()
    if current != getattr(CampaignWizard, callback_data.step).state:  # step names are state names
        await query.answer(turn.text("mk_wiz_stale"))
        return
    await query.answer()
    await answer(turn, state, callback_data.value)


def get_router() -> Router:
    router = Router(name="marketer.wizard")
    router.message.register(on_cancel, StateFilter(CampaignWizard), Command("cancel"))
    router.message.register(on_text, StateFilter(CampaignWizard), F.text, ~F.text.startswith("/"))
    router.callback_query.register(on_button, WizCB.filter())
    return router
