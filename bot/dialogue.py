"""The customer conversation, independent of Telegram: aiogram handlers and `xianke chat` both call it.

Every public method is async and returns `Reply` objects (or an `Answer` for a button press).
Database and model work runs on one worker thread (SQLite connection + torch), so the event loop
never blocks on a ~60 ms recommendation and writes stay serialised.
Conversation state (onboarding step, the last query for 更多) goes through a `Conversation` —
aiogram's FSMContext fits it as is; the console uses the same FSMContext over SQLiteStorage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, partial
from html import escape
from typing import Any, Protocol, TypeVar

from aiogram.filters.callback_data import CallbackData

from bot import keyboards, onboarding
from bot.answers import ShopAnswer, answer_message, catalog_words
from bot.callbacks import CardCB, HandoffCB, LangCB, MoreCB, OnbCB, ProfileCB, QuickCB, SaveCB, parse
from bot.cards import card_text
from bot.reasons import constraint_label, exclusion_line, note, render_reasons
from bot.replies import TELEGRAM_TEXT_LIMIT, Answer, Button, Reply
from bot.texts import Html, Texts, language_from_telegram
from commerce.campaigns import CampaignEntry, record_entry
from commerce.referrals import JoinOutcome, ReferralProgram
from core.domain import ALLERGENS, CAMPAIGN_SLUG_RE, EventKind, ItemKind, Profile, format_price
from core.logging import log_event
from core.repos import CouponRepository, EventRepository, UserRepository
from nlp.dialogue import MessageClassifier, MessageKind
from nlp.text import normalize
from recsys.constraints import DIET_LABEL
from recsys.pairing import PairingAnswer
from recsys.query import ParsedQuery
from recsys.recommender import RecommendResult
from recsys.service import RecsysService

__all__ = ["Answer", "Button", "Conversation", "Customer", "DialogueService", "Reply", "looks_like_shopping"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_INPUT_CHARS = 500  # a 4,096-char message is answered from its first 500 characters
PAGE_SIZE = 3
HANDOFF_REQUESTED = EventKind.HANDOFF_REQUESTED
# Cross-sell coupons for the 领券 button: a course card earns a kit coupon and vice versa.
KIT_COUPON = {"target_type": "kit", "discount_cents": 1_000, "min_spend_cents": 5_000}
COURSE_COUPON = {"target_type": "course", "discount_cents": 2_000, "min_spend_cents": 10_000}
QUICK_QUERIES: dict[str, tuple[str, frozenset[ItemKind] | None]] = {
    "course": ("零基础入门 热门课程", frozenset({ItemKind.COURSE})),
    "ingredient": ("新鲜当季食材", frozenset({ItemKind.INGREDIENT})),
    "kit": ("食材包 套餐", frozenset({ItemKind.KIT})),
    "popular": ("热门推荐 家常菜", None),
}


@dataclass(frozen=True)
class _SaveOffer:
    rows: list[list[Button]]
    update: dict[str, Any]


class Conversation(Protocol):
    """Per-user state; aiogram's FSMContext satisfies this protocol."""

    async def get_state(self) -> str | None: ...

    async def set_state(self, state: Any = None) -> None: ...

    async def get_data(self) -> dict[str, Any]: ...

    async def update_data(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    lang: str
    is_new: bool = False
    banned: bool = False


def looks_like_shopping(parsed: ParsedQuery, food_words: Collection[str] = ()) -> bool:
    """The query names a kind, diet, constraint, level, budget, pairing or a catalog word."""
    return parsed.looks_like_shopping or any(word in parsed.text for word in food_words)


def clip(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DialogueService:
    def __init__(
        self,
        recsys: RecsysService,
        users: UserRepository,
        events: EventRepository,
        coupons: CouponRepository,
        classifier: MessageClassifier,
        texts: Texts | None = None,
        *,
        page_size: int = PAGE_SIZE,
        executor: ThreadPoolExecutor | None = None,
    ):
        self.recsys = recsys
        self.users = users
        self.events = events
        self.coupons = coupons
        self.classifier = classifier
        self.t = texts or Texts()
        self.page_size = page_size
        self.live_support = False  # set by the composition root when bot.support relays to staff
        self._own_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="xianke-dialogue")
        self.food_words = catalog_words(recsys)
        self.tastes = self._tastes()

    # -- plumbing ---------------------------------------------------------------------------
    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking store/model work on the dialogue's single worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args, **kwargs))

    def close(self) -> None:
        if self._own_executor:
            self.executor.shutdown(wait=True)

    def _tastes(self) -> list[str]:
        """Onboarding's taste choices: the curated cuisines the catalog actually teaches."""
        cuisines = {doc.cuisine for doc in self.recsys.docs if doc.cuisine}
        found = [c for c in onboarding.DEFAULT_TASTES if c in cuisines]
        return found if len(found) >= 3 else list(onboarding.DEFAULT_TASTES)

    def _record(self, user_id: int, kind: str, item_slug: str | None = None, **kwargs: Any) -> None:
        self.events.record(user_id, kind, item_slug, **kwargs)

    def _doc(self, item: int) -> Any:
        return self.recsys.recommender.docs.get(item)

    def _ref(self, slug: str) -> int | None:
        doc = self.recsys.recommender.by_slug.get(slug)
        return doc.id if doc else None

    # -- who is talking -----------------------------------------------------------------------
    async def customer(
        self, user_id: int, *, first_name: str = "", username: str | None = None, language_code: str | None = None
    ) -> Customer:
        return await self.run(self._customer, user_id, first_name, username, language_code)

    def _customer(self, user_id: int, first_name: str, username: str | None, language_code: str | None) -> Customer:
        existed = self.users.get(user_id) is not None
        row = self.users.ensure(
            user_id, first_name=first_name or "", username=username, language=language_from_telegram(language_code)
        )
        if row["blocked_bot"]:
            self.users.set_flag(user_id, "blocked_bot", False)  # writing to us again means unblocked
        lang = row["language"] if row["language"] in ("zh", "en") else "zh"
        return Customer(user_id, row["first_name"], lang, is_new=not existed, banned=bool(row["banned"]))

    async def mark_blocked(self, user_id: int) -> None:
        await self.run(self.users.set_flag, user_id, "blocked_bot", True)

    # -- commands -----------------------------------------------------------------------------
    async def start(self, c: Customer, payload: str | None, conv: Conversation) -> list[Reply]:
        if onboarding.step_of(await conv.get_state()):
            await conv.set_state(None)  # /start always gets you out of a half-done setup
        profile, entry = await self.run(self._start, c, payload)
        name = c.first_name or ("朋友" if c.lang == "zh" else "there")
        if onboarding.is_empty(profile):
            replies = [Reply(self.t(c.lang, "welcome", name=name), keyboards.welcome(self.t, c.lang))]
        else:
            replies = [Reply(self.t(c.lang, "welcome_back", name=name), keyboards.quick_replies(self.t, c.lang))]
        if isinstance(entry, JoinOutcome):
            note = self._referral_note(c, entry)
            if note:
                replies.append(Reply(note))
        elif entry is not None and entry.coupon_is_new and entry.coupon is not None:
            replies.append(Reply(self.t(c.lang, "coupon_new", coupon=Html(self._coupon_line(c.lang, entry.coupon)))))
        return replies

    def _start(self, c: Customer, payload: str | None) -> tuple[Profile, CampaignEntry | JoinOutcome | None]:
        payload = (payload or "").strip()
        entry = self._deep_link(c, payload) if payload else None
        return self.users.profile(c.id), entry

    def _deep_link(self, c: Customer, payload: str) -> CampaignEntry | JoinOutcome | None:
        if not CAMPAIGN_SLUG_RE.match(payload):
            log_event(log, "malformed deep link", logging.WARNING, user_id=c.id, payload=payload[:80], length=len(payload))
            return None
        if payload.startswith("ref_"):
            return self._on_referral(c, payload.removeprefix("ref_"))
        entry = record_entry(self.users.store, c.id, payload)  # writes the start_deeplink event itself
        if entry is None:
            log_event(log, "unknown campaign deep link", user_id=c.id, payload=payload)
        return entry

    @cached_property
    def referrals(self) -> ReferralProgram:
        """The referral programme on the dialogue's store (rules from XIANKE_REFERRAL_*; assign to override)."""
        return ReferralProgram(self.users.store, self.coupons, events=self.events)

    def _on_referral(self, c: Customer, code: str) -> JoinOutcome:
        """`ref_<code>`: record the entry, then let the referral programme link (or politely refuse) it."""
        self._record(c.id, EventKind.START_DEEPLINK, payload={"referral": code})
        return self.referrals.on_join(c.id, code)

    def _referral_note(self, c: Customer, outcome: JoinOutcome) -> str | None:
        status = outcome.status
        if status == "unknown_code":
            return None  # a mistyped or made-up link just opens the bot; the refusal is logged as an event
        if status == "joined" and outcome.onboarded:
            status = "joined_ready"  # nothing to set up: only the first order is left
        name = outcome.referrer_name.strip()[:40] or self.t(c.lang, "ref_someone")
        return self.t(c.lang, f"ref_{status}", name=name, welcome=format_price(outcome.rules.welcome_cents))

    def help(self, c: Customer) -> list[Reply]:
        return [Reply(self.t(c.lang, "help"))]

    def privacy(self, c: Customer) -> list[Reply]:
        return [Reply(self.t(c.lang, "privacy"))]

    async def set_language(self, c: Customer, lang: str | None = None) -> tuple[Customer, list[Reply]]:
        """/lang toggles zh ↔ en (or sets `lang`) and persists it in users.language."""
        new = lang if lang in ("zh", "en") else ("en" if c.lang == "zh" else "zh")
        await self.run(self.users.set_language, c.id, new)
        c = Customer(c.id, c.first_name, new, c.is_new, c.banned)
        return c, [Reply(self.t(new, "lang_set") + "\n\n" + self.t(new, "help"))]

    async def coupons_list(self, c: Customer) -> list[Reply]:
        rows = await self.run(self.coupons.list_for, c.id)
        if not rows:
            return [Reply(self.t(c.lang, "coupons_none"))]
        lines = "\n".join(self._coupon_line(c.lang, row) for row in rows[:20])
        return [Reply(self.t(c.lang, "coupons", lines=Html(lines)))]

    def _coupon_line(self, lang: str, row: Mapping[str, Any]) -> str:
        status = row["status"]
        return self.t(
            lang,
            "coupon_line",
            code=row["code"],
            what=self.t(lang, f"coupon_target_{row['target_type']}"),
            min=format_price(row["min_spend_cents"]),
            discount=format_price(row["discount_cents"]),
            until=(row["expires_at"] or "")[:10],
            status=Html(self.t(lang, f"coupon_status_{status}")) if status != "issued" else "",
        )

    async def consult(self, c: Customer, reason: str = "handoff") -> list[Reply]:
        """/consult and the 人工客服 button when no live consultation is wired (bot.support handles them
        when a staff chat is configured): the request is recorded; /consult says so honestly."""
        await self.run(self._record, c.id, HANDOFF_REQUESTED, payload={"reason": reason})
        return [Reply(self.t(c.lang, "consult_unavailable" if reason == "command" else "handoff_done"))]

    def unknown_command(self, c: Customer) -> list[Reply]:
        return [Reply(self.t(c.lang, "unknown_command"))]

    def non_text(self, c: Customer, kind: str) -> list[Reply]:
        key = kind if kind in ("sticker", "voice", "photo", "empty") else "non_text"
        return [Reply(self.t(c.lang, key))]

    # -- profile / onboarding -------------------------------------------------------------
    async def profile(self, c: Customer) -> list[Reply]:
        profile = await self.run(self.users.profile, c.id)
        head = self.t(c.lang, "profile_empty") + "\n\n" if onboarding.is_empty(profile) else ""
        text = head + self.t(c.lang, "profile", summary=Html(onboarding.summary(profile, c.lang, self.t)))
        return [Reply(text, keyboards.profile_menu(self.t, c.lang))]

    async def begin_onboarding(self, c: Customer, conv: Conversation, field: str = "all") -> Reply:
        profile = await self.run(self.users.profile, c.id)
        step = onboarding.STEPS[0] if field == "all" else field
        await conv.update_data(onb=profile.to_dict(), onb_single=field != "all")
        await conv.set_state(onboarding.state_of(step))
        return self._step_reply(c.lang, step, profile.to_dict())

    def _step_reply(self, lang: str, step: str, draft: Mapping[str, Any]) -> Reply:
        opts = onboarding.options(step, lang, self.t, self.tastes)
        if step in onboarding.MULTI_STEPS:
            chosen = {i for i, v in enumerate(opts.values) if v in (draft.get(step) or [])}
            rows = keyboards.multi_choice(step, opts.labels, chosen, self.t(lang, "btn_done"))
        else:
            rows = keyboards.single_choice(step, opts.labels, self.t(lang, "btn_skip"))
        return Reply(self.t(lang, f"onb_{step}"), rows)

    async def onboarding_answer(self, c: Customer, cb: OnbCB, conv: Conversation) -> Answer:
        if onboarding.step_of(await conv.get_state()) != cb.step:
            return Answer(toast=self.t(c.lang, "onb_stale"))
        data = await conv.get_data()
        draft = dict(data.get("onb") or {})
        opts = onboarding.options(cb.step, c.lang, self.t, self.tastes)
        if cb.step in onboarding.MULTI_STEPS:
            if cb.value == keyboards.DONE:
                return await self._advance(c, cb.step, draft, bool(data.get("onb_single")), conv)
            if not 0 <= cb.value < len(opts.values):
                return Answer(toast=self.t(c.lang, "stale_button"))
            value = opts.values[cb.value]
            chosen = list(draft.get(cb.step) or [])
            chosen = [x for x in chosen if x != value] if value in chosen else [*chosen, value]
            draft[cb.step] = chosen
            await conv.update_data(onb=draft)
            return Answer(edit=self._step_reply(c.lang, cb.step, draft))
        if cb.value != keyboards.SKIP:
            if not 0 <= cb.value < len(opts.values):
                return Answer(toast=self.t(c.lang, "stale_button"))
            onboarding.apply_single(draft, cb.step, opts.values[cb.value])
        return await self._advance(c, cb.step, draft, bool(data.get("onb_single")), conv)

    async def _advance(self, c: Customer, step: str, draft: dict[str, Any], single: bool, conv: Conversation) -> Answer:
        following = None if single else onboarding.next_step(step)
        if following is not None:
            await conv.update_data(onb=draft)
            await conv.set_state(onboarding.state_of(following))
            return Answer(edit=self._step_reply(c.lang, following, draft))
        profile = Profile.from_dict(draft)
        await self.run(self.users.save_profile, c.id, profile)
        if not single:  # a referred friend finished onboarding: one step closer to both coupons
            await self.run(self.referrals.on_onboarded, c.id)
        await conv.set_state(None)
        await conv.update_data(onb=None, onb_single=None)
        summary = Html(onboarding.summary(profile, c.lang, self.t))
        text = self.t(c.lang, "onb_saved" if single else "onb_done", summary=summary)
        return Answer(edit=Reply(text))

    async def profile_edit(self, c: Customer, cb: ProfileCB, conv: Conversation) -> Answer:
        return Answer(replies=[await self.begin_onboarding(c, conv, cb.field)])

    async def _typed_budget(self, c: Customer, text: str, conv: Conversation) -> list[Reply] | None:
        """In the budget step a typed number answers it; other text is a normal message."""
        if len(text) > onboarding.MAX_BUDGET_REPLY_CHARS:
            return None  # "200块以内的烘焙课" is a question, not an answer to the budget step
        parsed = onboarding.parse_budget(text)
        if parsed is False:
            return [Reply(self.t(c.lang, "onb_budget_bad"))] if onboarding.looks_numeric(text) else None
        data = await conv.get_data()
        draft = dict(data.get("onb") or {})
        draft["budget_cents"] = parsed
        answer = await self._advance(c, "budget", draft, bool(data.get("onb_single")), conv)
        return [answer.edit] if answer.edit else []

    # -- free text ------------------------------------------------------------------------
    async def message(self, c: Customer, text: str | None, conv: Conversation) -> list[Reply]:
        text = normalize(text or "")[:MAX_INPUT_CHARS]
        if not text:
            return [Reply(self.t(c.lang, "empty"))]
        step = onboarding.step_of(await conv.get_state())
        if step == "budget":
            answered = await self._typed_budget(c, text, conv)
            if answered is not None:
                return answered
        data = await conv.get_data()
        replies, update = await self.run(self._answer_text, c, text, int(data.get("qid") or 0))
        if update:
            await conv.update_data(**update)
        if step is not None and replies:
            last = replies[-1]
            replies[-1] = Reply(clip(f"{last.text}\n\n{self.t(c.lang, 'onb_pending')}"), last.buttons, last.parse_mode)
        return replies

    def _answer_text(self, c: Customer, text: str, qid: int) -> tuple[list[Reply], dict[str, Any]]:
        profile = self.users.profile(c.id)
        answer = answer_message(
            self.recsys, self.classifier, text, food_words=self.food_words, profile=profile, user_id=c.id, k=self.page_size
        )
        kind = answer.message_kind
        payload = {"text": text[:200], "kind": answer.kind, "by": answer.by}
        if kind.is_support:
            self._record(c.id, EventKind.QUERY, payload=payload)
            return self._support(c, kind), {}
        if answer.result is not None:
            return self._cards(c, answer.result, qid + 1, kinds=None, exclude=(), first=True, payload=payload, answer=answer)
        if answer.parsed.pairing and kind is not MessageKind.SHOPPING:
            self._record(c.id, EventKind.QUERY, payload={**payload, "kind": "pairing_unknown"})
            return [Reply(self.t(c.lang, "pair_unknown"))], {}
        self._record(c.id, EventKind.QUERY, payload=payload)
        if kind is MessageKind.GREETING:
            return [Reply(self.t(c.lang, "greeting"))], {}
        if kind is MessageKind.THANKS:
            return [Reply(self.t(c.lang, "thanks"))], {}
        if kind is MessageKind.SMALL_TALK:
            return [Reply(self.t(c.lang, "small_talk"))], {}
        return [Reply(self.t(c.lang, "unclear"), keyboards.quick_replies(self.t, c.lang))], {}

    def _support(self, c: Customer, kind: MessageKind) -> list[Reply]:
        if kind is MessageKind.HANDOFF and self.live_support:
            # A real consultation opens on the button (which records handoff_requested with the ticket).
            return [Reply(self.t(c.lang, "handoff_offer"), keyboards.handoff(self.t, c.lang, "handoff"))]
        if kind is MessageKind.HANDOFF:
            self._record(c.id, HANDOFF_REQUESTED, payload={"reason": "asked"})
            return [Reply(self.t(c.lang, "handoff_done"))]
        key = {MessageKind.COMPLAINT: "complaint", MessageKind.REFUND: "refund", MessageKind.DELIVERY: "delivery"}
        reason = key.get(kind, "handoff")
        return [Reply(self.t(c.lang, reason if reason != "handoff" else "handoff_offer"), keyboards.handoff(self.t, c.lang, reason))]

    def _recommend(
        self,
        c: Customer,
        query: str,
        qid: int,
        *,
        kinds: Collection[ItemKind] | None,
        exclude: Sequence[str],
        first: bool,
        payload: dict[str, Any] | None = None,
    ) -> tuple[list[Reply], dict[str, Any]]:
        result = self.recsys.recommend(query, user_id=c.id, k=self.page_size, exclude=exclude, kinds=kinds)
        return self._cards(c, result, qid, kinds=kinds, exclude=exclude, first=first, payload=payload)

    def _cards(
        self,
        c: Customer,
        result: RecommendResult,
        qid: int,
        *,
        kinds: Collection[ItemKind] | None,
        exclude: Sequence[str],
        first: bool,
        payload: dict[str, Any] | None = None,
        answer: ShopAnswer | None = None,
    ) -> tuple[list[Reply], dict[str, Any]]:
        shown = [item.slug for item in result.items]
        excluded = [e.slug for e in result.excluded]
        self._record(c.id, EventKind.QUERY, payload={**(payload or {"text": result.query[:200]}), "shown": shown, "qid": qid, "excluded": excluded})
        constraints = result.constraints
        left_out = exclusion_line(result.excluded, constraints, c.lang) if first else None
        save = self._save_offer(c, result)
        if not result.items:
            if result.message == "nothing_fits":
                text = "\n".join(p for p in (note("nothing_fits", {}, constraints, c.lang), left_out) if p)
                return [Reply(escape(text), save.rows if save else keyboards.handoff(self.t, c.lang, "unclear"))], save.update if save else {}
            key = "rec_none" if first else "rec_no_more"
            return [Reply(self.t(c.lang, key), [] if first else keyboards.quick_replies(self.t, c.lang))], {}
        if answer is not None and answer.kind == "pairing" and answer.pairing is not None:
            return [self._pairing_reply(c, answer.pairing, result, left_out, save)], save.update if save else {}
        header = note(result.message, result.message_params, constraints, c.lang) or self.t(c.lang, "rec_header" if first else "rec_more_header")
        lines = [escape(header) if header != self.t(c.lang, "rec_header" if first else "rec_more_header") else header]
        if left_out:
            lines.append(escape(left_out))
        cards = [
            card_text(n, item.kind, item.title, item.price_cents, render_reasons(item.reasons, c.lang), item.summary, c.lang)
            for n, item in enumerate(result.items, 1)
        ]
        refs = [ref for ref in (self._ref(s) for s in shown) if ref is not None]
        rows = keyboards.card_buttons(self.t, c.lang, refs, qid=qid, has_more=result.has_more)
        if save:
            rows = save.rows + rows
        text = clip("\n".join(lines) + "\n\n" + "\n\n".join(cards))
        update = {
            "q": result.query,
            "qid": qid,
            "kinds": sorted(k.value for k in kinds) if kinds else None,
            "shown": [*exclude, *shown][-60:],
            **(save.update if save else {}),
        }
        return [Reply(text, rows)], update

    def _pairing_reply(self, c: Customer, answer: PairingAnswer, result: RecommendResult, left_out: str | None, save: _SaveOffer | None) -> Reply:
        """Partners, recipes and the kit — only what passed the customer's constraints."""
        t, lang = self.t, c.lang
        lines = [t(lang, "pair_header", name=answer.ingredient_name)]
        if left_out:
            lines.append(escape(left_out))
        partners = [i for i in result.items if i.kind == ItemKind.INGREDIENT.value]
        by_slug = {p.slug: p for p in answer.pairings}
        for n, item in enumerate(partners[:6], 1):
            p = by_slug.get(item.slug)
            flag = "" if p is None or p.in_season else t(lang, "pair_out_of_season")
            lines.append(t(lang, "pair_line", n=n, name=item.title, flag=flag, reason=render_reasons(item.reasons[:2], lang)))
        allowed = {i.slug for i in result.items}
        recipes = [r for r in answer.recipes if not r.course or r.course in allowed or not result.constraints]
        if recipes:
            lines.append("")
            lines.append(t(lang, "pair_recipes"))
            lines.extend(f"• {escape(str(r))}" for r in recipes[:4])
        rows: list[list[Button]] = []
        kit = next((i for i in result.items if i.kind == ItemKind.KIT.value), None)
        if kit and (ref := self._ref(kit.slug)) is not None:
            price = format_price(kit.price_cents)
            lines.append("")
            lines.append(t(lang, "pair_kit", title=kit.title, price=price))
            rows = keyboards.buy_kit(t, lang, ref, price)
        if save:
            rows = save.rows + rows
        return Reply(clip("\n".join(lines)), rows)

    def _save_offer(self, c: Customer, result: RecommendResult) -> _SaveOffer | None:
        """One button that saves the message's allergens/diets to the profile, when it lacks them."""
        savable = [x for x in result.constraints if x.savable]
        if not savable:
            return None
        labels = "、".join(dict.fromkeys(constraint_label(x, c.lang) for x in savable)) if c.lang == "zh" else ", ".join(
            dict.fromkeys(constraint_label(x, c.lang) for x in savable))
        button = Button(self.t(c.lang, "btn_save_constraints", labels=labels[:30]), SaveCB(qid=0).pack())
        return _SaveOffer([[button]], {"save": [x.to_json() for x in savable]})

    async def save_constraints(self, c: Customer, cb: SaveCB, conv: Conversation) -> Answer:
        data = await conv.get_data()
        pending = list(data.get("save") or [])
        if not pending:
            return Answer(toast=self.t(c.lang, "stale_button"))
        saved = await self.run(self._save_constraints, c, pending)
        await conv.update_data(save=None)
        return Answer(toast=self.t(c.lang, "constraints_saved", labels=saved))

    def _save_constraints(self, c: Customer, pending: Sequence[Mapping[str, Any]]) -> str:
        profile = self.users.profile(c.id)
        for item in pending:
            if item.get("kind") == "allergen" and item.get("value") in ALLERGENS and item["value"] not in profile.allergens:
                profile.allergens.append(str(item["value"]))
            elif item.get("kind") == "diet" and (label := DIET_LABEL.get(str(item.get("value")))) and label not in profile.diet:
                profile.diet.append(label)
        self.users.save_profile(c.id, profile)
        self._record(c.id, EventKind.CLICK, payload={"button": "save_constraints", "n": len(pending)})
        return "、".join(str(i.get("label")) for i in pending)[:60]

    # -- buttons ---------------------------------------------------------------------------
    async def press(self, c: Customer, data: str | None, conv: Conversation) -> Answer:
        """Any button, by its packed callback data (the console's way in; Telegram uses filters)."""
        cb = parse(data)
        return await self.dispatch(c, cb, conv)

    async def dispatch(self, c: Customer, cb: CallbackData | None, conv: Conversation) -> Answer:
        if isinstance(cb, CardCB):
            return await self.card_action(c, cb, conv)
        if isinstance(cb, MoreCB):
            return await self.more(c, cb, conv)
        if isinstance(cb, OnbCB):
            return await self.onboarding_answer(c, cb, conv)
        if isinstance(cb, ProfileCB):
            return await self.profile_edit(c, cb, conv)
        if isinstance(cb, QuickCB):
            return await self.quick(c, cb, conv)
        if isinstance(cb, HandoffCB):
            return Answer(replies=await self.consult(c, cb.reason))
        if isinstance(cb, SaveCB):
            return await self.save_constraints(c, cb, conv)
        if isinstance(cb, LangCB):
            _, replies = await self.set_language(c, cb.lang)
            return Answer(replies=replies)
        return self.stale(c)

    def stale(self, c: Customer) -> Answer:
        return Answer(toast=self.t(c.lang, "stale_button"))

    async def more(self, c: Customer, cb: MoreCB, conv: Conversation) -> Answer:
        data = await conv.get_data()
        if not data.get("q") or int(data.get("qid") or 0) != cb.qid:
            return Answer(toast=self.t(c.lang, "stale_page"))
        kinds = frozenset(ItemKind(k) for k in data.get("kinds") or []) or None
        shown = list(data.get("shown") or [])
        replies, update = await self.run(self._more, c, data["q"], cb.qid, kinds, shown)
        if update:
            await conv.update_data(**update)
        return Answer(replies=replies)

    def _more(
        self, c: Customer, query: str, qid: int, kinds: Collection[ItemKind] | None, shown: Sequence[str]
    ) -> tuple[list[Reply], dict[str, Any]]:
        self._record(c.id, EventKind.CLICK, payload={"button": "more", "qid": qid})
        return self._recommend(c, query, qid, kinds=kinds, exclude=shown, first=False, payload={"text": query[:200], "kind": "more"})

    async def quick(self, c: Customer, cb: QuickCB, conv: Conversation) -> Answer:
        query, kinds = QUICK_QUERIES[cb.topic]
        data = await conv.get_data()
        replies, update = await self.run(
            self._recommend, c, query, int(data.get("qid") or 0) + 1, kinds=kinds, exclude=(), first=True,
            payload={"text": query, "kind": f"quick:{cb.topic}"},
        )
        if update:
            await conv.update_data(**update)
        return Answer(replies=replies)

    async def card_action(self, c: Customer, cb: CardCB, conv: Conversation) -> Answer:
        return await self.run(self._card_action, c, cb)

    def _card_action(self, c: Customer, cb: CardCB) -> Answer:
        doc = self._doc(cb.item)
        if doc is None:
            return Answer(toast=self.t(c.lang, "item_gone"), alert=True)
        feedback = {"like": EventKind.LIKE, "dis": EventKind.DISLIKE, "ni": EventKind.NOT_INTERESTED}
        if cb.action in feedback:
            kind = feedback[cb.action]
            self._record(c.id, kind, doc.slug)
            self.recsys.personal.update_event(c.id, doc.slug, kind)
            toast = {"like": "toast_like", "dis": "toast_dislike", "ni": "toast_not_interested"}[cb.action]
            return Answer(toast=self.t(c.lang, toast))
        if cb.action == "kit":
            self._record(c.id, EventKind.CLICK, doc.slug, payload={"button": "kit"})
            return Answer(replies=[self._kits_for(c, doc)])
        if cb.action == "cpn":
            return Answer(replies=[self._cross_sell_coupon(c, doc)])
        if cb.action == "buy":
            self._record(c.id, EventKind.CLICK, doc.slug, payload={"button": "buy"})
            names = "、".join(doc.ingredient_names[:12])
            items = Html(self.t(c.lang, "kit_items", items=names)) if names else ""
            text = self.t(c.lang, "buy_kit", title=doc.title, price=format_price(doc.price_cents), items=items)
            return Answer(replies=[Reply(text, keyboards.coupon_and_handoff(self.t, c.lang, doc.id))])
        return self.stale(c)

    def _kits_for(self, c: Customer, doc: Any) -> Reply:
        docs = self.recsys.recommender.by_slug
        if doc.kind == ItemKind.KIT:
            kits = [doc]
        elif doc.kind == ItemKind.COURSE:
            kits = [d for d in docs.values() if d.kind == ItemKind.KIT and d.course_slug == doc.slug]
        else:
            lines = self.recsys.pairing.kit_lines
            kits = [docs[s] for s, items in lines.items() if doc.slug in items and s in docs]
        kits = kits[:3]
        if not kits:
            return Reply(self.t(c.lang, "kit_none_plain"), keyboards.quick_replies(self.t, c.lang))
        head = self.t(c.lang, "kit_for", title=doc.title) if doc.kind != ItemKind.KIT else ""
        cards = []
        for n, kit in enumerate(kits, 1):
            summary = self.t(c.lang, "kit_items", items="、".join(kit.ingredient_names[:12]))
            card = card_text(n, "kit", kit.title, kit.price_cents, kit.summary or kit.title, "", c.lang)
            cards.append(f"{card}\n{summary}")
        rows = keyboards.card_buttons(self.t, c.lang, [k.id for k in kits], qid=None, has_more=False)
        return Reply(clip((head + "\n\n" if head else "") + "\n\n".join(cards)), rows)

    def _cross_sell_coupon(self, c: Customer, doc: Any) -> Reply:
        terms = KIT_COUPON if doc.kind == ItemKind.COURSE else COURSE_COUPON
        rule = f"xsell:{terms['target_type']}:{doc.slug}"
        coupon, created = self.coupons.issue_once(c.id, rule=rule, item_slug=doc.slug, **terms)
        if not created:
            self._record(c.id, EventKind.CLICK, doc.slug, payload={"button": "coupon", "repeat": True})
        key = "coupon_new" if created else "coupon_again"
        return Reply(self.t(c.lang, key, coupon=Html(self._coupon_line(c.lang, coupon))))
