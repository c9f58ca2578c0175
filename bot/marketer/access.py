"""Who may manage campaigns in the bot, and the settings the marketer desk needs.

The composition root puts one `MarketerConfig` into the Dispatcher's workflow data under
`marketer_config` (built from XIANKE_MARKETER_CHAT_IDS, XIANKE_ADMIN_USER_IDS, XIANKE_BOT_USERNAME and
the shop's time zone); without it nobody is a marketer, so the desk fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from zoneinfo import ZoneInfo

from aiogram.types import Chat, TelegramObject, User

GROUP_TYPES = frozenset({"group", "supergroup"})
SHOP_ZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class MarketerConfig:
    user_ids: frozenset[int] = frozenset()  # may use the desk in a private chat with the bot
    group_ids: frozenset[int] = frozenset()  # group chats whose every member may use it
    bot_username: str | None = None  # for deep links; None → asked from Telegram (getMe) when needed
    zone: tzinfo = SHOP_ZONE  # campaign dates typed by marketers are local dates

    @classmethod
    def from_ids(
        cls,
        marketer_chat_ids: Iterable[int] = (),
        admin_user_ids: Iterable[int] = (),
        *,
        bot_username: str | None = None,
        zone: tzinfo | None = None,
    ) -> MarketerConfig:
        """XIANKE_MARKETER_CHAT_IDS mixes people (positive ids: their private chats) and groups
        (negative ids); admins are always allowed in private."""
        chats = list(marketer_chat_ids)
        return cls(
            user_ids=frozenset({i for i in chats if i > 0} | set(admin_user_ids)),
            group_ids=frozenset(i for i in chats if i < 0),
            bot_username=bot_username,
            zone=zone or SHOP_ZONE,
        )

    def allows(self, chat: Chat | None, user: User | None) -> bool:
        """Private chats: the person must be listed. Groups: the group must be listed (anyone in it
        already passed the shop's own membership control). Channels and unknown chats: never."""
        if chat is None or user is None or user.is_bot:
            return False
        if chat.type == "private":
            return user.id in self.user_ids
        return chat.type in GROUP_TYPES and chat.id in self.group_ids


def is_marketer(
    _: TelegramObject,
    event_chat: Chat | None = None,
    event_from_user: User | None = None,
    marketer_config: MarketerConfig | None = None,
) -> bool:
    """aiogram filter: aiogram passes the chat and user of any update kind, plus workflow data."""
    return marketer_config is not None and marketer_config.allows(event_chat, event_from_user)
