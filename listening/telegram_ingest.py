"""Posts from Telegram groups and channels the bot is a member of.

`bot/` must not import `jobs/`, so the composition root builds a `TelegramListener` and hands its
`handle` coroutine to the Dispatcher as workflow data; a bot router for group messages and channel
posts (filtered to `XIANKE_LISTEN_CHATS`) then calls `await listen(message)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.types import Message

from core.store import Store
from listening.ingest import IngestReport, PostIngestor


def message_to_record(message: Message) -> dict[str, Any] | None:
    """The post payload for a group message or channel post; None when it carries no text."""
    text = message.text or message.caption
    if not text:
        return None
    chat = message.chat
    if message.from_user is not None:
        author: str | None = f"tg:{message.from_user.id}"
    elif message.sender_chat is not None:  # channel posts and anonymous admins speak as the chat
        author = f"tg:{message.sender_chat.id}"
    else:
        author = None
    return {
        "source": f"telegram:{chat.id}",
        "external_id": str(message.message_id),
        "text": text,
        "created_at": message.date,
        "author": author,  # hashed by the ingestor; never stored as is
        "url": f"https://t.me/{chat.username}/{message.message_id}" if chat.username else None,
    }


class TelegramListener:
    """Stores listened messages from one worker thread (the event loop never waits on SQLite)."""

    def __init__(
        self,
        store_factory: Callable[[], Store],
        salt: bytes,
        chat_ids: Iterable[int],
        *,
        zone: tzinfo = ZoneInfo("Asia/Shanghai"),
    ):
        self.chat_ids = frozenset(chat_ids)
        self._store_factory = store_factory
        self._salt = salt
        self._zone = zone
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-telegram")
        self._ingestor: PostIngestor | None = None

    def listens_to(self, chat_id: int) -> bool:
        return chat_id in self.chat_ids

    def _ingest(self, record: dict[str, Any]) -> IngestReport:
        if self._ingestor is None:
            self._ingestor = PostIngestor(self._store_factory(), self._salt, zone=self._zone)
        return self._ingestor.ingest_records([record])

    async def handle(self, message: Message) -> IngestReport | None:
        """Ingest `message` if it comes from a listened chat and has text; None when ignored."""
        if not self.listens_to(message.chat.id):
            return None
        record = message_to_record(message)
        if record is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._ingest, record)

    def close(self) -> None:
        def shutdown() -> None:
            if self._ingestor is not None:
                self._ingestor.store.close()
                self._ingestor = None

        self._executor.submit(shutdown).result()
        self._executor.shutdown(wait=True)
