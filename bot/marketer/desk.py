"""What every marketer handler needs: who is talking, in which language, how to answer, and the store
work (run on the dialogue's single worker thread, which owns the SQLite connection and serialises
writes with the customer conversations)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.types import BufferedInputFile, Chat, ForceReply, User

from bot.dialogue import Customer, DialogueService
from bot.keyboards import to_markup
from bot.marketer.access import GROUP_TYPES, MarketerConfig
from bot.replies import Button
from bot.texts import Texts
from commerce.campaigns import Campaign, CampaignRepository
from core.store import Store

T = TypeVar("T")
CampaignReport = Callable[[int], str | None]  # campaign id → the latest estimates in Chinese, or None


@dataclass
class Turn:
    """One marketer update: chat, person, language, and the services to answer with."""

    bot: Bot
    chat: Chat
    user: User
    lang: str
    t: Texts
    dialogue: DialogueService
    config: MarketerConfig

    @classmethod
    def of(
        cls, bot: Bot, event_chat: Chat, event_from_user: User, texts: Texts, dialogue: DialogueService,
        marketer_config: MarketerConfig, customer: Customer | None,
    ) -> Turn:
        lang = customer.lang if customer is not None else "zh"
        return cls(bot, event_chat, event_from_user, lang, texts, dialogue, marketer_config)

    @property
    def in_group(self) -> bool:
        return self.chat.type in GROUP_TYPES

    def now(self) -> datetime:
        return datetime.now(UTC).astimezone(self.config.zone)

    def text(self, key: str, /, **values: object) -> str:
        return self.t(self.lang, key, **values)

    async def say(self, key: str, /, rows: Sequence[Sequence[Button]] = (), *, prompt: bool = False,
                  **values: object) -> None:
        """Send one message. A wizard prompt in a group asks for a reply: with privacy mode on (the
        default for bots), Telegram only delivers group messages that reply to the bot."""
        text = self.text(key, **values)
        markup: Any = to_markup(rows) if rows else None
        if prompt and self.in_group:
            text += "\n" + self.text("mk_wiz_group_hint")
            markup = markup or ForceReply()
        await self.bot.send_message(self.chat.id, text, reply_markup=markup)

    async def photo(self, png: bytes, filename: str, caption: str) -> None:
        await self.bot.send_photo(self.chat.id, BufferedInputFile(png, filename=filename), caption=caption)

    async def on_store(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run `fn(store, *args)` on the dialogue's worker thread (never block the event loop)."""
        store = self.dialogue.users.store
        return await self.dialogue.run(fn, store, *args)

    async def bot_username(self) -> str | None:
        if self.config.bot_username:
            return self.config.bot_username
        return (await self.bot.me()).username  # aiogram caches getMe


# -- store work (sync; called through Turn.on_store) ------------------------------------------


def taken_slugs(store: Store) -> set[str]:
    return {str(row["s"]) for row in store.query("SELECT lower(slug) AS s FROM campaigns")}


def slug_taken(store: Store, slug: str) -> bool:
    return store.scalar("SELECT 1 FROM campaigns WHERE lower(slug) = lower(?)", [slug]) is not None


def overview(store: Store, limit: int = 15) -> list[tuple[Campaign, dict[str, Any]]]:
    repo = CampaignRepository(store)
    return [(c, repo.stats(c.campaign_id)) for c in repo.list()[:limit]]


def details(store: Store, slug: str) -> tuple[Campaign, dict[str, Any], dict[str, Any] | None] | None:
    repo = CampaignRepository(store)
    campaign = repo.get_by_slug(slug)
    if campaign is None:  # people type codes in any case; slugs are unique case-insensitively
        row = store.scalar("SELECT slug FROM campaigns WHERE lower(slug) = lower(?)", [slug])
        campaign = repo.get_by_slug(str(row)) if row is not None else None
    if campaign is None:
        return None
    return campaign, repo.stats(campaign.campaign_id), repo.latest_report(campaign.campaign_id)


def create(store: Store, campaign: Campaign) -> Campaign:
    return CampaignRepository(store).create(campaign)
