"""Fake Telegram Bot API server for end-to-end tests of aiogram bots.

The server is a small aiohttp application bound to 127.0.0.1 on a random free port.  It speaks
the real Bot API wire protocol (``POST /bot<token>/<method>``, form-encoded or multipart, JSON
envelopes), so the real aiogram ``Bot``/``Dispatcher`` (long polling and webhooks) can be exercised
without any network access.  Error descriptions mimic the real server closely enough for
aiogram to raise the same exception classes (``TelegramBadRequest``, ``TelegramRetryAfter`` ...).

Typical use::

    async with FakeBotAPI() as api:
        bot = api.make_bot()
        api.push_message(1001, "/start")
        ...
        await api.wait_for("sendMessage")
        assert api.last_message(1001)["text"] == "..."
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import ClientSession, ClientTimeout, MultipartReader, web
from aiohttp.web_request import FileField

from tests.fakebot.payments import PaymentsMixin, SentInvoice

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "Call",
    "FailRule",
    "FakeBotAPI",
    "SentInvoice",
    "StoredFile",
    "StoredMessage",
]

DEFAULT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

# Params that the real server treats as strings even when they look like JSON ("123", "true").
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "name", "url", "secret_token", "callback_query_id",
        "inline_message_id", "title", "description", "short_description", "icon_custom_emoji_id",
        "language_code", "action", "emoji", "business_connection_id", "message_effect_id",
        "file_id", "photo", "document", "voice", "sticker", "video", "audio", "animation",
        "video_note", "thumbnail", "certificate", "ip_address", "performer", "custom_title",
        "query", "data", "chat_instance",
        "payload", "currency", "provider_token", "start_parameter", "error_message", "provider_data",
        "pre_checkout_query_id", "shipping_query_id", "photo_url",
    }
)

# Update types the real server knows; the default allowed set excludes the opt-in ones.
_KNOWN_UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
        "business_message", "edited_business_message", "deleted_business_messages",
        "message_reaction", "message_reaction_count", "inline_query", "chosen_inline_result",
        "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll",
        "poll_answer", "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
        "removed_chat_boost",
    }
)
_DEFAULT_ALLOWED = _KNOWN_UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}

# Message fields that carry content (copied by copyMessage / forwardMessage).
_CONTENT_KEYS = (
    "text", "entities", "link_preview_options", "photo", "document", "voice", "sticker", "video",
    "animation", "audio", "video_note", "caption", "caption_entities", "location", "contact",
    "has_media_spoiler", "show_caption_above_media",
)
_MEDIA_KINDS = ("photo", "document", "voice", "sticker", "video", "animation", "audio", "video_note")
_CAPTIONLESS = frozenset({"sticker", "video_note"})

_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a content and reply markup of the current message"
)
_FAKE_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
    b"\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


# ---------------------------------------------------------------------------------------------
# Data classes
# ---------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error the fake server answers with (``{"ok": false, ...}``)."""

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def envelope(self) -> dict[str, Any]:
        """Return the JSON error envelope the real Bot API would send."""
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        parameters: dict[str, Any] = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body


def _bad_request(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


@dataclass
class Call:
    """One recorded API request and the answer the fake server gave."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    time: float
    status: int = 200
    response: dict[str, Any] | None = None
    via_webhook: bool = False

    @property
    def ok(self) -> bool:
        """True when the server answered ``ok: true``."""
        return bool(self.response and self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The ``result`` field of a successful answer (None otherwise)."""
        return (self.response or {}).get("result")

    @property
    def error(self) -> str | None:
        """The error description of a failed answer (None on success)."""
        if self.response is None or self.response.get("ok"):
            return None
        return self.response.get("description")


@dataclass
class FailRule:
    """An injected failure; ``times=None`` means it fires forever."""

    method: str | None
    error_code: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None
    times: int | None = 1
    chat_id: int | str | None = None
    hits: int = 0

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        """Whether this rule applies to a request (method names are case-insensitive)."""
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)


@dataclass
class StoredMessage:
    """A message as the user sees it now (``data`` is the Bot API Message object)."""

    chat_id: int
    message_id: int
    data: dict[str, Any]
    from_bot: bool
    method: str | None = None
    deleted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    reply_keyboard: dict[str, Any] | None = None

    @property
    def text(self) -> str | None:
        """Text, or caption for media messages."""
        return self.data.get("text", self.data.get("caption"))

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, flattened row by row."""
        markup = self.data.get("reply_markup") or {}
        return [btn for row in markup.get("inline_keyboard", []) for btn in row]


@dataclass
class StoredFile:
    """A file the server knows (uploaded by the bot or pushed by a fake user)."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes | None
    filename: str | None = None
    mime_type: str | None = None
    file_path: str = ""


@dataclass
class _Request:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    filenames: dict[str, tuple[str | None, str | None]]


class _Notifier:
    """Wakes every coroutine waiting on it; usable from sync code inside the event loop."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def future(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        fut.add_done_callback(self._waiters.discard)
        return fut

    def notify(self) -> None:
        for fut in list(self._waiters):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, timeout: float) -> None:
        fut = self.future()
        done, _ = await asyncio.wait({fut}, timeout=max(timeout, 0.0))
        if not done:
            fut.cancel()


# ---------------------------------------------------------------------------------------------
# Text formatting (HTML / MarkdownV2 / Markdown) -> plain text + entities
# ---------------------------------------------------------------------------------------------


class _ParseError(Exception):
    pass


def _u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


class _TextBuilder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def emit(self, text: str) -> None:
        self.parts.append(text)
        self.pos += _u16(text)

    def add(self, etype: str, start: int, **extra: Any) -> None:
        length = self.pos - start
        if length > 0:
            self.entities.append({"type": etype, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        ents = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ents


_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z][a-zA-Z0-9_-]*"
    r"(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*/?>"
)
_ATTR_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9_-]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_HTML_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_HTML_SPECIAL_RE = re.compile(r"[<&]")


def _parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    b = _TextBuilder()
    stack: list[tuple[str, int, dict[str, str]]] = []
    i, n = 0, len(src)
    while i < n:
        m_special = _HTML_SPECIAL_RE.search(src, i)
        stop = m_special.start() if m_special else n
        if stop > i:
            b.emit(src[i:stop])
            i = stop
            continue
        if src[i] == "&":
            m_ent = _HTML_ENTITY_RE.match(src, i)
            if m_ent:
                b.emit(html.unescape(m_ent.group(0)))
                i = m_ent.end()
            else:
                b.emit("&")
                i += 1
            continue
        m = _TAG_RE.match(src, i)
        if m is None:
            raise _ParseError(f'Unsupported start tag "" at byte offset {_byte_offset(src, i)}')
        off = _byte_offset(src, i)
        name = m.group(2).lower()
        if m.group(1):
            if not stack:
                raise _ParseError(f"Unexpected end tag at byte offset {off}")
            top, start, attrs = stack[-1]
            if top != name:
                raise _ParseError(
                    f'Unmatched end tag at byte offset {off}, expected "</{top}>", found "</{name}>"'
                )
            stack.pop()
            _close_html_tag(b, name, start, attrs, stack)
        else:
            if name not in _HTML_TAGS:
                raise _ParseError(f'Unsupported start tag "{name}" at byte offset {off}')
            attrs = {
                a.group(1).lower(): next((g for g in a.group(2, 3, 4) if g is not None), "")
                for a in _ATTR_RE.finditer(m.group(3) or "")
            }
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise _ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {off}')
            if name == "tg-emoji" and not attrs.get("emoji-id"):
                raise _ParseError(f"Custom emoji identifier must be specified at byte offset {off}")
            stack.append((name, b.pos, attrs))
        i = m.end()
    if stack:
        raise _ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return b.result()


def _close_html_tag(
    b: _TextBuilder,
    name: str,
    start: int,
    attrs: dict[str, str],
    stack: list[tuple[str, int, dict[str, str]]],
) -> None:
    etype = _HTML_TAGS[name]
    if name == "a":
        href = attrs.get("href")
        if href:
            b.add("text_link", start, url=html.unescape(href))
        return
    if name == "code" and stack and stack[-1][0] == "pre":
        lang = attrs.get("class", "")
        if lang.startswith("language-"):
            stack[-1][2]["_language"] = lang[len("language-") :]
            return
    extra: dict[str, Any] = {}
    if name == "pre" and attrs.get("_language"):
        extra["language"] = attrs["_language"]
    if name == "blockquote" and "expandable" in attrs:
        etype = "expandable_blockquote"
    if name == "tg-emoji":
        extra["custom_emoji_id"] = attrs["emoji-id"]
    b.add(etype, start, **extra)


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji", "blockquote": "BlockQuote",
}


def _parse_markdown_v2(src: str) -> tuple[str, list[dict[str, Any]]]:
    b = _TextBuilder()
    stack: list[tuple[str, int, int, dict[str, Any]]] = []  # (type, start16, src index, extra)
    i, n = 0, len(src)
    line_start = True

    def unclosed(entry: tuple[str, int, int, dict[str, Any]]) -> _ParseError:
        return _ParseError(
            f"Can't find end of {_MDV2_NAMES[entry[0]]} entity at byte offset {_byte_offset(src, entry[2])}"
        )

    def toggle(kind: str, index: int) -> None:
        if stack and stack[-1][0] == kind:
            _, start, _, extra = stack.pop()
            b.add(kind, start, **extra)
        elif any(entry[0] == kind for entry in stack):
            raise unclosed(stack[-1])
        else:
            stack.append((kind, b.pos, index, {}))

    while i < n:
        c = src[i]
        top = stack[-1][0] if stack else None
        if top in ("code", "pre"):
            if c == "\\" and i + 1 < n and src[i + 1] in "`\\":
                b.emit(src[i + 1])
                i += 2
            elif top == "pre" and src.startswith("```", i):
                _, start, _, extra = stack.pop()
                b.add("pre", start, **extra)
                i += 3
            elif top == "code" and c == "`":
                _, start, _, extra = stack.pop()
                b.add("code", start, **extra)
                i += 1
            else:
                b.emit(c)
                i += 1
            continue
        was_line_start, line_start = line_start, False
        if c == "\\":
            if i + 1 >= n:
                raise _ParseError("Character '\\' is reserved and must be escaped with the preceding '\\'")
            b.emit(src[i + 1])
            i += 2
        elif c == "*":
            toggle("bold", i)
            i += 1
        elif c == "_":
            if src.startswith("__", i):
                toggle("underline", i)
                i += 2
            else:
                toggle("italic", i)
                i += 1
        elif c == "~":
            toggle("strikethrough", i)
            i += 1
        elif c == "|" and src.startswith("||", i):
            toggle("spoiler", i)
            i += 2
        elif c == "`":
            if src.startswith("```", i):
                j = i + 3
                nl = src.find("\n", j)
                extra: dict[str, Any] = {}
                first_line = src[j:nl] if nl != -1 else ""
                if first_line and not re.search(r"[\s`]", first_line):
                    extra["language"] = first_line
                    j = nl + 1
                elif nl == j:
                    j = nl + 1
                stack.append(("pre", b.pos, i, extra))
                i = j
            else:
                stack.append(("code", b.pos, i, {}))
                i += 1
        elif c == "[" or (c == "!" and src.startswith("![", i)):
            kind = "custom_emoji" if c == "!" else "text_link"
            stack.append((kind, b.pos, i, {}))
            i += 2 if c == "!" else 1
        elif c == "]":
            if top not in ("text_link", "custom_emoji"):
                raise _ParseError("Character ']' is reserved and must be escaped with the preceding '\\'")
            if not src.startswith("(", i + 1):
                raise unclosed(stack[-1])
            j, url_chars = i + 2, []
            while j < n and src[j] != ")":
                if src[j] == "\\" and j + 1 < n:
                    url_chars.append(src[j + 1])
                    j += 2
                else:
                    url_chars.append(src[j])
                    j += 1
            if j >= n:
                raise unclosed(stack[-1])
            kind, start, _, _ = stack.pop()
            url = "".join(url_chars)
            if kind == "custom_emoji":
                b.add("custom_emoji", start, custom_emoji_id=url.split("id=", 1)[-1])
            else:
                b.add("text_link", start, url=url)
            i = j + 1
        elif c == ">" and was_line_start:
            if not any(entry[0] == "blockquote" for entry in stack):
                stack.append(("blockquote", b.pos, i, {}))
            i += 1
        elif c == "\n":
            if stack and stack[-1][0] == "blockquote" and not src.startswith(">", i + 1):
                _, start, _, extra = stack.pop()
                b.add("blockquote", start, **extra)
            b.emit(c)
            line_start = True
            i += 1
        elif c in _MDV2_RESERVED:
            raise _ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        else:
            b.emit(c)
            i += 1
    if stack and stack[-1][0] == "blockquote":
        _, start, _, extra = stack.pop()
        b.add("blockquote", start, **extra)
    if stack:
        raise unclosed(stack[-1])
    return b.result()


def _parse_markdown(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy ``Markdown`` parse mode: *bold*, _italic_, `code`, ```pre```, [text](url)."""
    b = _TextBuilder()
    i, n = 0, len(src)

    def missing_end(index: int) -> _ParseError:
        return _ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(src, index)}")

    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            b.emit(src[i + 1])
            i += 2
        elif c in "*_":
            j = src.find(c, i + 1)
            if j < 0:
                raise missing_end(i)
            start = b.pos
            b.emit(src[i + 1 : j])
            b.add("bold" if c == "*" else "italic", start)
            i = j + 1
        elif c == "`":
            fence = "```" if src.startswith("```", i) else "`"
            j = src.find(fence, i + len(fence))
            if j < 0:
                raise missing_end(i)
            body, extra = src[i + len(fence) : j], {}
            if fence == "```" and "\n" in body:
                first, rest = body.split("\n", 1)
                if first and not re.search(r"\s", first):
                    body, extra = rest, {"language": first}
            start = b.pos
            b.emit(body)
            b.add("pre" if fence == "```" else "code", start, **extra)
            i = j + len(fence)
        elif c == "[":
            j = src.find("]", i + 1)
            if j < 0 or not src.startswith("(", j + 1):
                b.emit(c)
                i += 1
                continue
            k = src.find(")", j + 2)
            if k < 0:
                raise missing_end(i)
            start = b.pos
            b.emit(src[i + 1 : j])
            b.add("text_link", start, url=src[j + 2 : k])
            i = k + 1
        else:
            b.emit(c)
            i += 1
    return b.result()


_AUTO_ENTITY_RE = re.compile(
    r"(?P<url>https?://[^\s<>\"]+)"
    r"|(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<mention>(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31})"
    r"|(?P<hashtag>(?<![\w#])#[^\W\d_]\w*)"
)


def _auto_entities(text: str, existing: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Detect urls, /commands, @mentions and #hashtags like Telegram clients/servers do."""
    found = list(existing or [])
    taken = [(e["offset"], e["offset"] + e["length"]) for e in found if e["type"] not in ("bold", "italic")]
    for m in _AUTO_ENTITY_RE.finditer(text):
        kind = m.lastgroup or "url"
        value = m.group(0)
        if kind == "url":
            value = value.rstrip(".,;:!?)'")
        start = _u16(text[: m.start()])
        end = start + _u16(value)
        if any(s < end and start < e for s, e in taken):
            continue
        found.append({"type": kind, "offset": start, "length": end - start})
        taken.append((start, end))
    return sorted(found, key=lambda e: (e["offset"], -e["length"]))


def _strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace like Telegram does, clipping entity ranges."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = _u16(text[: len(text) - len(text.lstrip())])
    total = _u16(stripped)
    out = []
    for ent in entities:
        start = max(ent["offset"] - lead, 0)
        end = min(ent["offset"] + ent["length"] - lead, total)
        if end > start:
            out.append({**ent, "offset": start, "length": end - start})
    return stripped, out


def _format_text(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """Apply parse_mode (or explicit entities) and return (plain text, entities)."""
    mode = str(parse_mode).lower() if parse_mode else ""
    try:
        if mode == "html":
            plain, ents = _parse_html(text)
        elif mode == "markdownv2":
            plain, ents = _parse_markdown_v2(text)
        elif mode == "markdown":
            plain, ents = _parse_markdown(text)
        elif mode:
            raise _bad_request(f"unsupported parse_mode {parse_mode!r}")
        else:
            plain = text
            ents = [dict(e) for e in entities] if isinstance(entities, list) else []
    except _ParseError as exc:
        raise _bad_request(f"can't parse entities: {exc}") from None
    plain, ents = _strip_text(plain, ents)
    return plain, _auto_entities(plain, ents)


def _png_size(data: bytes | None) -> tuple[int, int] | None:
    if data and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def _decode_param(key: str, value: Any) -> Any:
    """Decode a form value the way the real server would (JSON for non-string params)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str) or key in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _update_type(update: dict[str, Any]) -> str | None:
    return next((k for k in update if k != "update_id"), None)


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

_Handler = Callable[[_Request], Awaitable[Any]]


class FakeBotAPI(PaymentsMixin):
    """An in-process fake of the Telegram Bot API (use as ``async with FakeBotAPI() as api``)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "xianke_test_bot",
        bot_first_name: str = "XianKe Test Bot",
        strict_chats: bool = False,
        strict_file_ids: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id, "is_bot": True, "first_name": bot_first_name, "username": bot_username,
        }
        # Unknown chats are auto-created when False; with True sends to them fail "chat not found".
        self.strict_chats = strict_chats
        # Unknown file_id strings are rejected when True (like the real server).
        self.strict_file_ids = strict_file_ids

        self.call_log: list[Call] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.store: dict[tuple[int, int], StoredMessage] = {}
        self.files: dict[str, StoredFile] = {}
        self.fail_rules: list[FailRule] = []
        self.blocked: dict[int, str] = {}
        self.topics: dict[tuple[int, int], dict[str, Any]] = {}
        self.deleted_topics: set[tuple[int, int]] = set()
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_log: list[tuple[int | None, int]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.member_status: dict[tuple[int, int], str] = {}
        self.reply_keyboards: dict[int, dict[str, Any] | None] = {}

        self.updates: list[dict[str, Any]] = []  # pending (unconfirmed) updates
        self.pushed_updates: list[dict[str, Any]] = []
        self.dropped_updates: list[dict[str, Any]] = []
        self.delivery_counts: dict[int, int] = {}
        self.allowed_updates: list[str] = []

        self._order: list[StoredMessage] = []
        self._next_message_id: dict[int, int] = {}
        self._last_update_id = 100_000
        self._file_counter = 0
        self._callback_counter = 0
        self._callbacks: dict[str, dict[str, Any]] = {}
        self._bots: list[Bot] = []
        self._changed = _Notifier()
        self._updates_changed = _Notifier()
        self._active_poll: asyncio.Future[None] | None = None
        self._waiting_polls = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._init_payments()
        self._handlers: dict[str, _Handler] = self._build_handlers()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        """Bind to a free port on 127.0.0.1 and start serving."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._closing = False
        return self

    async def close(self) -> None:
        """Stop serving: release long polls, close bots made by make_bot(), shut the app down."""
        self._closing = True
        self._updates_changed.notify()
        for bot in self._bots:
            await bot.session.close()
        self._bots.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (pass to ``TelegramAPIServer.from_base``)."""
        return f"http://{self.host}:{self.port}"

    def method_url(self, method: str, token: str | None = None) -> str:
        """Full URL of an API method."""
        return f"{self.base_url}/bot{token or self.token}/{method}"

    def make_bot(self, token: str | None = None, **kwargs: Any) -> Bot:
        """An aiogram Bot talking to this server; its session is closed on server shutdown."""
        session = AiohttpSession(api=TelegramAPIServer.from_base(self.base_url))
        bot = Bot(token or self.token, session=session, **kwargs)
        self._bots.append(bot)
        return bot

    # -- HTTP layer -----------------------------------------------------------------------------

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path and stored.data is not None:
                mime = stored.mime_type or "application/octet-stream"
                return web.Response(body=stored.data, content_type=mime)
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params, files, filenames = await self._read_request(request)
        except Exception as exc:
            call = Call(method, {}, {}, time.time())
            err = _bad_request(f"can't parse request: {exc}")
            call.status, call.response = err.error_code, err.envelope()
            self._record(call)
            return self._respond(call)
        if request.match_info["token"] != self.token:
            call = Call(method, params, files, time.time(), status=401)
            call.response = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            self._record(call)
            return self._respond(call)
        call = await self._execute(method, params, files, filenames)
        return self._respond(call)

    @staticmethod
    def _respond(call: Call) -> web.Response:
        body = json.dumps(call.response, ensure_ascii=False)
        return web.Response(text=body, status=call.status, content_type="application/json")

    @staticmethod
    async def _read_request(
        request: web.Request,
    ) -> tuple[dict[str, Any], dict[str, bytes], dict[str, tuple[str | None, str | None]]]:
        params: dict[str, Any] = {k: _decode_param(k, v) for k, v in request.query.items()}
        files: dict[str, bytes] = {}
        filenames: dict[str, tuple[str | None, str | None]] = {}
        if not request.can_read_body:
            return params, files, filenames
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update({k: _decode_param(k, v) for k, v in body.items()})
            return params, files, filenames
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, FileField):
                files[key] = value.file.read()
                filenames[key] = (value.filename, value.content_type)
            else:
                params[key] = _decode_param(key, value)
        return params, files, filenames

    async def _execute(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, bytes],
        filenames: dict[str, tuple[str | None, str | None]] | None = None,
        *,
        via_webhook: bool = False,
    ) -> Call:
        call = Call(method, params, files, time.time(), via_webhook=via_webhook)
        lower = method.lower()
        try:
            self._check_injected(lower, params)
            handler = self._handlers.get(lower)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            self._check_blocked(lower, params)
            result = await handler(_Request(method, params, files, filenames or {}))
            call.response = {"ok": True, "result": result}
        except ApiError as exc:
            call.status, call.response = exc.error_code, exc.envelope()
        except asyncio.CancelledError:
            # The client went away (e.g. polling stopped mid long-poll): record it without an answer.
            call.status, call.response = 0, None
            self._record(call)
            raise
        self._record(call)
        return call

    def _record(self, call: Call) -> None:
        self.call_log.append(call)
        self._changed.notify()

    def _check_injected(self, method: str, params: dict[str, Any]) -> None:
        for rule in self.fail_rules:
            if rule.matches(method, params):
                rule.hits += 1
                if rule.times is not None:
                    rule.times -= 1
                raise ApiError(
                    rule.error_code,
                    rule.description,
                    retry_after=rule.retry_after,
                    migrate_to_chat_id=rule.migrate_to_chat_id,
                )

    def _check_blocked(self, method: str, params: dict[str, Any]) -> None:
        if not method.startswith(("send", "copymessage", "forwardmessage", "edit")):
            return
        chat_id = params.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            if chat_id is not None and int(chat_id) in self.blocked:
                raise ApiError(403, self.blocked[int(chat_id)])

    @staticmethod
    def _bad_request(message: str) -> ApiError:
        return _bad_request(message)

    def _build_handlers(self) -> dict[str, _Handler]:
        handlers: dict[str, _Handler] = {
            "getme": self._m_get_me,
            "getupdates": self._m_get_updates,
            "sendmessage": self._m_send_message,
            "editmessagetext": self._m_edit_message_text,
            "editmessagecaption": self._m_edit_message_caption,
            "editmessagereplymarkup": self._m_edit_message_reply_markup,
            "editmessagemedia": self._m_edit_message_media,
            "deletemessage": self._m_delete_message,
            "deletemessages": self._m_delete_messages,
            "answercallbackquery": self._m_answer_callback_query,
            "copymessage": self._m_copy_message,
            "forwardmessage": self._m_forward_message,
            "createforumtopic": self._m_create_forum_topic,
            "editforumtopic": self._m_edit_forum_topic,
            "closeforumtopic": self._m_close_forum_topic,
            "reopenforumtopic": self._m_reopen_forum_topic,
            "deleteforumtopic": self._m_delete_forum_topic,
            "setmycommands": self._m_set_my_commands,
            "getmycommands": self._m_get_my_commands,
            "deletemycommands": self._m_delete_my_commands,
            "setwebhook": self._m_set_webhook,
            "deletewebhook": self._m_delete_webhook,
            "getwebhookinfo": self._m_get_webhook_info,
            "sendchataction": self._m_send_chat_action,
            "getchat": self._m_get_chat,
            "getchatmember": self._m_get_chat_member,
            "getfile": self._m_get_file,
            "sendmediagroup": self._m_send_media_group,
        }
        for kind in _MEDIA_KINDS:
            name = "send" + kind.replace("_", "")
            handlers[name] = self._media_sender(kind)
        for name in (
            "setmydescription", "setmyshortdescription", "setmyname", "setchatmenubutton",
            "pinchatmessage", "unpinchatmessage", "unpinallchatmessages", "setmessagereaction",
            "leavechat", "banchatmember", "unbanchatmember", "setmydefaultadministratorrights",
        ):
            handlers[name] = self._m_accept
        handlers.update(self.payment_handlers())
        return handlers

    # -- chats, users, messages -----------------------------------------------------------------

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "supergroup",
        *,
        title: str | None = None,
        is_forum: bool = False,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Register (or update) a group/supergroup/channel chat; returns the Chat object."""
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = title or f"User {chat_id}"
        else:
            chat["title"] = title or f"Chat {chat_id}"
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        return copy.deepcopy(chat)

    def add_topic(self, chat_id: int, thread_id: int, name: str = "Topic", icon_color: int = 7322096) -> None:
        """Declare an existing forum topic (without a creation service message)."""
        self.topics[(chat_id, thread_id)] = {"name": name, "icon_color": icon_color, "closed": False}
        self.deleted_topics.discard((chat_id, thread_id))

    def _remember_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
        is_bot: bool = False,
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        return user

    def _ensure_chat(
        self,
        chat_id: int,
        user: dict[str, Any],
        chat_type: str | None,
        title: str | None,
        is_forum: bool | None,
    ) -> dict[str, Any]:
        chat = self.chats.get(chat_id)
        if chat is None:
            ctype = chat_type or ("private" if chat_id == user["id"] else "supergroup")
            if ctype == "private":
                chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
                for key in ("last_name", "username"):
                    if key in user:
                        chat[key] = user[key]
            else:
                chat = {"id": chat_id, "type": ctype, "title": title or f"Chat {chat_id}"}
            self.chats[chat_id] = chat
        elif chat_type:
            chat["type"] = chat_type
        if title and chat["type"] != "private":
            chat["title"] = title
        if is_forum is not None:
            if is_forum:
                chat["is_forum"] = True
            else:
                chat.pop("is_forum", None)
        return chat

    def _resolve_chat(self, raw: Any, *, create: bool = True) -> dict[str, Any]:
        if raw is None or raw == "":
            raise _bad_request("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            for chat in self.chats.values():
                if chat.get("username", "").lower() == raw[1:].lower():
                    return chat
            raise _bad_request("chat not found")
        if isinstance(raw, bool):
            raise _bad_request("chat not found")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise _bad_request("chat not found") from None
        chat = self.chats.get(chat_id)
        if chat is None:
            if self.strict_chats or not create:
                raise _bad_request("chat not found")
            # Auto-created groups are forum supergroups so that topic methods work out of the box.
            self.add_chat(chat_id, "private" if chat_id > 0 else "supergroup", is_forum=chat_id < 0)
            chat = self.chats[chat_id]
        return chat

    def _thread_for(self, chat: dict[str, Any], params: dict[str, Any]) -> int | None:
        raw = params.get("message_thread_id")
        if raw is None:
            return None
        try:
            thread_id = int(raw)
        except (TypeError, ValueError):
            raise _bad_request("message thread not found") from None
        if (chat["id"], thread_id) in self.deleted_topics:
            raise _bad_request("message thread not found")
        return thread_id

    def _new_message(
        self,
        chat: dict[str, Any],
        content: dict[str, Any],
        *,
        from_bot: bool,
        user: dict[str, Any] | None = None,
        thread_id: int | None = None,
        is_topic_message: bool | None = None,
        reply_to: StoredMessage | None = None,
        method: str | None = None,
    ) -> StoredMessage:
        chat_id = chat["id"]
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        data: dict[str, Any] = {"message_id": message_id}
        if thread_id is not None:
            data["message_thread_id"] = thread_id
            if is_topic_message if is_topic_message is not None else bool(chat.get("is_forum")):
                data["is_topic_message"] = True
        if chat["type"] == "channel":
            data["sender_chat"] = copy.deepcopy(chat)
        else:
            data["from"] = copy.deepcopy(self.bot_user if from_bot else user)
        data["date"] = int(time.time())
        data["chat"] = copy.deepcopy(chat)
        if reply_to is not None:
            quoted = copy.deepcopy(reply_to.data)
            quoted.pop("reply_to_message", None)
            data["reply_to_message"] = quoted
        data.update(content)
        stored = StoredMessage(chat_id, message_id, data, from_bot, method)
        self.store[(chat_id, message_id)] = stored
        self._order.append(stored)
        return stored

    def _reply_target(self, chat: dict[str, Any], params: dict[str, Any]) -> StoredMessage | None:
        allow = bool(params.get("allow_sending_without_reply"))
        target_chat_id = chat["id"]
        message_id = params.get("reply_to_message_id")
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            message_id = reply_parameters.get("message_id")
            allow = allow or bool(reply_parameters.get("allow_sending_without_reply"))
            if reply_parameters.get("chat_id") is not None:
                target_chat_id = self._resolve_chat(reply_parameters["chat_id"], create=False)["id"]
        if message_id is None:
            return None
        stored = self.store.get((target_chat_id, int(message_id)))
        if stored is None or stored.deleted:
            if allow:
                return None
            raise _bad_request("message to be replied not found")
        return stored

    def _markup(
        self, params: dict[str, Any], *, inline_only: bool = False
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Validate reply_markup; returns (inline keyboard or None, custom reply keyboard or None)."""
        markup = params.get("reply_markup")
        if markup is None:
            return None, None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
            for row in rows:
                for button in row:
                    self._check_button(button)
            return markup, None
        if inline_only:
            raise _bad_request("inline keyboard expected")
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return None, markup
        raise _bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _check_button(button: Any) -> None:
        if not isinstance(button, dict) or not button.get("text"):
            raise _bad_request("can't parse inline keyboard button: Text must be non-empty")
        actions = [key for key in _BUTTON_ACTIONS if key in button]
        if not actions:
            raise _bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                raise _bad_request("BUTTON_DATA_INVALID")
        if "url" in button and not re.match(r"^(https?|tg)://\S+$", str(button["url"])):
            raise _bad_request("BUTTON_URL_INVALID")

    def _apply_reply_keyboard(self, stored: StoredMessage, custom: dict[str, Any] | None) -> None:
        if custom is None:
            return
        stored.reply_keyboard = custom
        if "keyboard" in custom:
            self.reply_keyboards[stored.chat_id] = custom
        elif "remove_keyboard" in custom:
            self.reply_keyboards[stored.chat_id] = None

    def _editable(self, params: dict[str, Any]) -> StoredMessage | None:
        """Find the bot message targeted by an edit*; None for inline messages."""
        if params.get("inline_message_id") and params.get("chat_id") is None:
            return None
        if params.get("message_id") is None:
            raise _bad_request("message identifier is not specified")
        chat = self._resolve_chat(params.get("chat_id"), create=False)
        try:
            key = (chat["id"], int(params["message_id"]))
        except (TypeError, ValueError):
            raise _bad_request("message to edit not found") from None
        stored = self.store.get(key)
        if stored is None or stored.deleted:
            raise _bad_request("message to edit not found")
        if not stored.from_bot:
            raise _bad_request("message can't be edited")
        return stored

    @staticmethod
    def _commit_edit(stored: StoredMessage, new: dict[str, Any]) -> dict[str, Any]:
        keys = set(_CONTENT_KEYS) | {"reply_markup"}
        if {k: v for k, v in new.items() if k in keys} == {k: v for k, v in stored.data.items() if k in keys}:
            raise _bad_request(_NOT_MODIFIED)
        stored.history.append(stored.data)
        new["edit_date"] = int(time.time())
        stored.data = new
        return copy.deepcopy(new)

    # -- files ----------------------------------------------------------------------------------

    def add_file(
        self,
        data: bytes | None,
        kind: str = "document",
        filename: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        """Register file bytes; returns the StoredFile (use its file_id)."""
        self._file_counter += 1
        n = self._file_counter
        if mime_type is None:
            guessed = mimetypes.guess_type(filename or "")[0]
            mime_type = guessed or {"photo": "image/jpeg", "voice": "audio/ogg", "sticker": "image/webp"}.get(
                kind, "application/octet-stream"
            )
        ext = mimetypes.guess_extension(mime_type) or ".bin"
        stored = StoredFile(
            file_id=f"fake-{kind}-{n:06d}-{secrets.token_hex(4)}",
            file_unique_id=f"uniq{n:06d}",
            kind=kind,
            data=data,
            filename=filename,
            mime_type=mime_type,
            file_path=f"{kind}s/file_{n}{ext}",
        )
        self.files[stored.file_id] = stored
        return stored

    def file_bytes(self, file_id: str) -> bytes | None:
        """Bytes of a known file (None when unknown or sent by URL)."""
        stored = self.files.get(file_id)
        return stored.data if stored else None

    def _input_file(self, value: Any, kind: str, req: _Request) -> StoredFile:
        if value is None and kind in req.files:
            value = f"attach://{kind}"
        if not isinstance(value, str) or not value:
            raise _bad_request(f"there is no {kind} in the request")
        if value.startswith("attach://"):
            name = value[len("attach://") :]
            if name not in req.files:
                raise _bad_request("wrong file identifier/HTTP URL specified")
            data = req.files[name]
            if not data:
                raise _bad_request("file must be non-empty")
            filename, content_type = req.filenames.get(name, (None, None))
            mime = content_type if content_type and content_type != "application/octet-stream" else None
            return self.add_file(data, kind, filename, mime)
        if value in self.files:
            stored = self.files[value]
            if stored.kind != kind:
                raise _bad_request(f"can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored
        if re.match(r"^https?://", value):
            return self.add_file(None, kind, value.rsplit("/", 1)[-1] or None)
        if self.strict_file_ids:
            raise _bad_request("wrong file identifier/HTTP URL specified")
        stored = self.add_file(None, kind)
        stored.file_id = value
        self.files[value] = stored
        return stored

    def _media_object(self, kind: str, stored: StoredFile, params: dict[str, Any]) -> Any:
        base: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.data is not None:
            base["file_size"] = len(stored.data)
        if kind == "photo":
            width, height = _png_size(stored.data) or (800, 600)
            thumb_id = stored.file_id + "-m"
            if thumb_id not in self.files:
                self.files[thumb_id] = StoredFile(
                    thumb_id, stored.file_unique_id + "m", "photo", stored.data, stored.filename,
                    stored.mime_type, stored.file_path.replace("file_", "thumb_"),
                )
            small = {**base, "file_id": thumb_id, "file_unique_id": stored.file_unique_id + "m"}
            small.update(width=min(width, 90), height=min(height, 90))
            return [small, {**base, "width": width, "height": height}]
        if kind == "document":
            base["file_name"] = stored.filename or "document"
            base["mime_type"] = stored.mime_type
        elif kind == "voice":
            base.update(duration=int(params.get("duration") or 1), mime_type="audio/ogg")
        elif kind == "sticker":
            base.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
            if params.get("emoji"):
                base["emoji"] = params["emoji"]
        elif kind in ("video", "animation"):
            base.update(
                width=int(params.get("width") or 640),
                height=int(params.get("height") or 480),
                duration=int(params.get("duration") or 1),
            )
        elif kind == "audio":
            base["duration"] = int(params.get("duration") or 1)
            for key in ("title", "performer"):
                if params.get(key):
                    base[key] = params[key]
        elif kind == "video_note":
            base.update(length=int(params.get("length") or 240), duration=int(params.get("duration") or 1))
        return base

    def _caption_content(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        caption = params.get("caption")
        if kind in _CAPTIONLESS or caption in (None, ""):
            return {}
        plain, ents = _format_text(str(caption), params.get("parse_mode"), params.get("caption_entities"))
        if _u16(plain) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        content: dict[str, Any] = {}
        if plain:
            content["caption"] = plain
        if ents:
            content["caption_entities"] = ents
        if params.get("show_caption_above_media"):
            content["show_caption_above_media"] = True
        return content

    # -- method handlers ------------------------------------------------------------------------

    async def _m_accept(self, req: _Request) -> Any:
        return True

    async def _m_get_me(self, req: _Request) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_send_message(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"))
        thread_id = self._thread_for(chat, p)
        text = p.get("text")
        if text is None or text == "":
            raise _bad_request("message text is empty")
        plain, ents = _format_text(str(text), p.get("parse_mode"), p.get("entities"))
        if not plain:
            raise _bad_request("message text is empty")
        if _u16(plain) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        inline, custom = self._markup(p)
        reply_to = self._reply_target(chat, p)
        content: dict[str, Any] = {"text": plain}
        if ents:
            content["entities"] = ents
        if isinstance(p.get("link_preview_options"), dict):
            content["link_preview_options"] = p["link_preview_options"]
        if p.get("protect_content"):
            content["has_protected_content"] = True
        if inline:
            content["reply_markup"] = inline
        stored = self._new_message(
            chat, content, from_bot=True, thread_id=thread_id, reply_to=reply_to, method=req.method
        )
        self._apply_reply_keyboard(stored, custom)
        return copy.deepcopy(stored.data)

    def _media_sender(self, kind: str) -> _Handler:
        async def handler(req: _Request) -> Any:
            p = req.params
            chat = self._resolve_chat(p.get("chat_id"))
            thread_id = self._thread_for(chat, p)
            stored_file = self._input_file(p.get(kind), kind, req)
            content: dict[str, Any] = {kind: self._media_object(kind, stored_file, p)}
            content.update(self._caption_content(p, kind))
            if p.get("has_spoiler"):
                content["has_media_spoiler"] = True
            inline, custom = self._markup(p)
            if inline:
                content["reply_markup"] = inline
            reply_to = self._reply_target(chat, p)
            stored = self._new_message(
                chat, content, from_bot=True, thread_id=thread_id, reply_to=reply_to, method=req.method
            )
            self._apply_reply_keyboard(stored, custom)
            return copy.deepcopy(stored.data)

        return handler

    async def _m_send_media_group(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"))
        thread_id = self._thread_for(chat, p)
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad_request("media group must contain 2-10 items")
        reply_to = self._reply_target(chat, p)
        group_id = str(10**17 + self._file_counter)
        results = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio"):
                raise _bad_request("wrong media type in the media group")
            kind = item["type"]
            stored_file = self._input_file(item.get("media"), kind, req)
            content: dict[str, Any] = {
                "media_group_id": group_id,
                kind: self._media_object(kind, stored_file, item),
            }
            content.update(self._caption_content(item, kind))
            stored = self._new_message(
                chat, content, from_bot=True, thread_id=thread_id, reply_to=reply_to, method=req.method
            )
            results.append(copy.deepcopy(stored.data))
        return results

    async def _m_edit_message_text(self, req: _Request) -> Any:
        p = req.params
        stored = self._editable(p)
        text = p.get("text")
        if text is None or text == "":
            raise _bad_request("message text is empty")
        plain, ents = _format_text(str(text), p.get("parse_mode"), p.get("entities"))
        if not plain:
            raise _bad_request("message text is empty")
        if _u16(plain) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        inline, _ = self._markup(p, inline_only=True)
        if stored is None:
            return True
        if "text" not in stored.data:
            raise _bad_request("there is no text in the message to edit")
        new = copy.deepcopy(stored.data)
        new["text"] = plain
        new.pop("entities", None)
        new.pop("reply_markup", None)  # omitted reply_markup removes the keyboard, as on Telegram
        if ents:
            new["entities"] = ents
        if isinstance(p.get("link_preview_options"), dict):
            new["link_preview_options"] = p["link_preview_options"]
        if inline:
            new["reply_markup"] = inline
        return self._commit_edit(stored, new)

    async def _m_edit_message_caption(self, req: _Request) -> Any:
        p = req.params
        stored = self._editable(p)
        inline, _ = self._markup(p, inline_only=True)
        if stored is None:
            return True
        kind = next((k for k in _MEDIA_KINDS if k in stored.data), None)
        if kind is None or kind in _CAPTIONLESS:
            raise _bad_request("there is no caption in the message to edit")
        new = copy.deepcopy(stored.data)
        for key in ("caption", "caption_entities", "reply_markup", "show_caption_above_media"):
            new.pop(key, None)
        new.update(self._caption_content(p, kind))
        if inline:
            new["reply_markup"] = inline
        return self._commit_edit(stored, new)

    async def _m_edit_message_reply_markup(self, req: _Request) -> Any:
        p = req.params
        stored = self._editable(p)
        inline, _ = self._markup(p, inline_only=True)
        if stored is None:
            return True
        new = copy.deepcopy(stored.data)
        new.pop("reply_markup", None)
        if inline:
            new["reply_markup"] = inline
        return self._commit_edit(stored, new)

    async def _m_edit_message_media(self, req: _Request) -> Any:
        p = req.params
        stored = self._editable(p)
        media = p.get("media")
        if not isinstance(media, dict) or media.get("type") not in _MEDIA_KINDS:
            raise _bad_request("can't parse InputMedia JSON object")
        inline, _ = self._markup(p, inline_only=True)
        kind = media["type"]
        stored_file = self._input_file(media.get("media"), kind, req)
        if stored is None:
            return True
        if not any(k in stored.data for k in _MEDIA_KINDS):
            raise _bad_request("there is no media in the message to edit")
        new = copy.deepcopy(stored.data)
        for key in (*_MEDIA_KINDS, "caption", "caption_entities", "reply_markup", "show_caption_above_media"):
            new.pop(key, None)
        new[kind] = self._media_object(kind, stored_file, media)
        new.update(self._caption_content(media, kind))
        if inline:
            new["reply_markup"] = inline
        return self._commit_edit(stored, new)

    async def _m_delete_message(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"), create=False)
        try:
            stored = self.store.get((chat["id"], int(p.get("message_id"))))
        except (TypeError, ValueError):
            stored = None
        if stored is None or stored.deleted:
            raise _bad_request("message to delete not found")
        stored.deleted = True
        return True

    async def _m_delete_messages(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"), create=False)
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad_request("message_ids must contain 1-100 identifiers")
        for message_id in ids:
            stored = self.store.get((chat["id"], int(message_id)))
            if stored is not None:
                stored.deleted = True
        return True

    async def _m_answer_callback_query(self, req: _Request) -> Any:
        p = req.params
        query_id = str(p.get("callback_query_id") or "")
        if query_id not in self._callbacks or query_id in self.callback_answers:
            raise _bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = dict(p)
        return True

    def _source_message(self, params: dict[str, Any], what: str) -> StoredMessage:
        source_chat = self._resolve_chat(params.get("from_chat_id"), create=False)
        try:
            stored = self.store.get((source_chat["id"], int(params.get("message_id"))))
        except (TypeError, ValueError):
            stored = None
        if stored is None or stored.deleted:
            raise _bad_request(f"message to {what} not found")
        if not any(key in stored.data for key in _CONTENT_KEYS):
            raise _bad_request(f"message can't be {what}{'ed' if what == 'forward' else 'ied'}")
        return stored

    async def _m_copy_message(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"))
        thread_id = self._thread_for(chat, p)
        source = self._source_message(p, "copy")
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k in _CONTENT_KEYS}
        kind = next((k for k in _MEDIA_KINDS if k in content), None)
        if kind is not None and "caption" in p:
            for key in ("caption", "caption_entities"):
                content.pop(key, None)
            content.update(self._caption_content(p, kind))
        inline, custom = self._markup(p)
        if inline:
            content["reply_markup"] = inline
        reply_to = self._reply_target(chat, p)
        stored = self._new_message(
            chat, content, from_bot=True, thread_id=thread_id, reply_to=reply_to, method=req.method
        )
        self._apply_reply_keyboard(stored, custom)
        return {"message_id": stored.message_id}

    async def _m_forward_message(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"))
        thread_id = self._thread_for(chat, p)
        source = self._source_message(p, "forward")
        content = {k: copy.deepcopy(v) for k, v in source.data.items() if k in _CONTENT_KEYS}
        if "forward_origin" in source.data:
            origin = copy.deepcopy(source.data["forward_origin"])
        elif source.data["chat"]["type"] == "channel":
            origin = {
                "type": "channel", "date": source.data["date"], "chat": source.data["chat"],
                "message_id": source.message_id,
            }
        else:
            origin = {"type": "user", "date": source.data["date"], "sender_user": source.data.get("from")}
        content["forward_origin"] = origin
        stored = self._new_message(chat, content, from_bot=True, thread_id=thread_id, method=req.method)
        return copy.deepcopy(stored.data)

    def _topic(self, params: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, Any]]:
        chat = self._resolve_chat(params.get("chat_id"), create=False)
        try:
            thread_id = int(params.get("message_thread_id"))
        except (TypeError, ValueError):
            raise _bad_request("message thread not found") from None
        key = (chat["id"], thread_id)
        if key in self.deleted_topics or key not in self.topics:
            raise _bad_request("message thread not found")
        return chat, thread_id, self.topics[key]

    async def _m_create_forum_topic(self, req: _Request) -> Any:
        p = req.params
        chat = self._resolve_chat(p.get("chat_id"))
        if chat["type"] != "supergroup" or not chat.get("is_forum"):
            raise _bad_request("the chat is not a forum")
        name = str(p.get("name") or "")
        if not 1 <= len(name) <= 128:
            raise _bad_request("TOPIC_NAME_INVALID")
        icon_color = int(p.get("icon_color") or 7322096)
        service: dict[str, Any] = {"forum_topic_created": {"name": name, "icon_color": icon_color}}
        if p.get("icon_custom_emoji_id"):
            service["forum_topic_created"]["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        message_id = self._next_message_id.get(chat["id"], 0) + 1
        self._new_message(
            chat, service, from_bot=True, thread_id=message_id, is_topic_message=True, method=req.method
        )
        self.topics[(chat["id"], message_id)] = {"name": name, "icon_color": icon_color, "closed": False}
        result = {"message_thread_id": message_id, "name": name, "icon_color": icon_color}
        if p.get("icon_custom_emoji_id"):
            result["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        return result

    async def _m_edit_forum_topic(self, req: _Request) -> Any:
        _, _, topic = self._topic(req.params)
        if req.params.get("name"):
            topic["name"] = str(req.params["name"])
        return True

    async def _m_close_forum_topic(self, req: _Request) -> Any:
        _, _, topic = self._topic(req.params)
        if topic["closed"]:
            raise _bad_request("TOPIC_NOT_MODIFIED")
        topic["closed"] = True
        return True

    async def _m_reopen_forum_topic(self, req: _Request) -> Any:
        _, _, topic = self._topic(req.params)
        if not topic["closed"]:
            raise _bad_request("TOPIC_NOT_MODIFIED")
        topic["closed"] = False
        return True

    async def _m_delete_forum_topic(self, req: _Request) -> Any:
        chat, thread_id, _ = self._topic(req.params)
        self.delete_topic(chat["id"], thread_id)
        return True

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _m_set_my_commands(self, req: _Request) -> Any:
        commands = req.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_key(req.params)
        if commands:
            self.commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self.commands.pop(key, None)
        return True

    async def _m_get_my_commands(self, req: _Request) -> Any:
        return copy.deepcopy(self.commands.get(self._commands_key(req.params), []))

    async def _m_delete_my_commands(self, req: _Request) -> Any:
        self.commands.pop(self._commands_key(req.params), None)
        return True

    async def _m_set_webhook(self, req: _Request) -> Any:
        p = req.params
        url = str(p.get("url") or "")
        if not url:
            return await self._m_delete_webhook(req)
        if not re.match(r"^https?://", url):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = {"url": url, "secret_token": secret}
        if isinstance(p.get("allowed_updates"), list):
            self.allowed_updates = list(p["allowed_updates"])
        if p.get("max_connections") is not None:
            self.webhook["max_connections"] = int(p["max_connections"])
        return True

    async def _m_delete_webhook(self, req: _Request) -> Any:
        if req.params.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = None
        return True

    async def _m_get_webhook_info(self, req: _Request) -> Any:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self.allowed_updates:
                info["allowed_updates"] = list(self.allowed_updates)
        return info

    async def _m_send_chat_action(self, req: _Request) -> Any:
        chat = self._resolve_chat(req.params.get("chat_id"))
        self._thread_for(chat, req.params)
        if req.params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _m_get_chat(self, req: _Request) -> Any:
        chat = self._resolve_chat(req.params.get("chat_id"), create=False)
        return {
            **copy.deepcopy(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True, "limited_gifts": True, "unique_gifts": True,
                "premium_subscription": True, "gifts_from_channels": True,
            },
        }

    async def _m_get_chat_member(self, req: _Request) -> Any:
        chat = self._resolve_chat(req.params.get("chat_id"), create=False)
        try:
            user_id = int(req.params.get("user_id"))
        except (TypeError, ValueError):
            raise _bad_request("invalid user_id specified") from None
        user = self.bot_user if user_id == self.bot_id else self.users.get(user_id)
        if user is None:
            raise _bad_request("user not found")
        default = "member" if chat["type"] == "private" or user_id == self.bot_id else "left"
        status = self.member_status.get((chat["id"], user_id), default)
        member: dict[str, Any] = {"status": status, "user": copy.deepcopy(user)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "kicked":
            member["until_date"] = 0
        elif status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True, can_delete_messages=True,
                can_manage_video_chats=True, can_restrict_members=True, can_promote_members=False,
                can_change_info=True, can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_send_welcome_messages=True, can_manage_topics=True,
                can_pin_messages=True,
            )
        return member

    async def _m_get_file(self, req: _Request) -> Any:
        stored = self.files.get(str(req.params.get("file_id") or ""))
        if stored is None:
            raise _bad_request("invalid file_id")
        result: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.data is not None:
            result["file_size"] = len(stored.data)
            result["file_path"] = stored.file_path
        return result

    async def _m_get_updates(self, req: _Request) -> Any:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        p = req.params
        try:
            offset = None if p.get("offset") is None else int(p["offset"])
            limit = min(max(int(p.get("limit") or 100), 1), 100)
            timeout = max(float(p.get("timeout") or 0), 0.0)
        except (TypeError, ValueError):
            raise _bad_request("wrong parameter in getUpdates request") from None
        allowed = p.get("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise _bad_request("can't parse allowed_updates JSON array")
            self.allowed_updates = [str(t) for t in allowed]
        self._confirm(offset)

        loop = asyncio.get_running_loop()
        if self._active_poll is not None and not self._active_poll.done():
            self._active_poll.set_result(None)  # the older request gets a 409 Conflict
        me: asyncio.Future[None] = loop.create_future()
        self._active_poll = me
        deadline = loop.time() + timeout
        try:
            while True:
                if me.done():
                    raise ApiError(
                        409, "Conflict: terminated by other getUpdates request; make sure that only one bot "
                        "instance is running",
                    )
                batch = self._take(limit)
                remaining = deadline - loop.time()
                if batch or remaining <= 0 or self._closing:
                    break
                wake = self._updates_changed.future()
                self._waiting_polls += 1
                self._changed.notify()
                try:
                    await asyncio.wait({wake, me}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self._waiting_polls -= 1
                    if not wake.done():
                        wake.cancel()
        finally:
            if self._active_poll is me:
                self._active_poll = None
            if not me.done():
                me.cancel()
        for update in batch:
            self.delivery_counts[update["update_id"]] = self.delivery_counts.get(update["update_id"], 0) + 1
        return copy.deepcopy(batch)

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            self.updates = self.updates[offset:]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def _take(self, limit: int) -> list[dict[str, Any]]:
        allowed = set(self.allowed_updates) if self.allowed_updates else _DEFAULT_ALLOWED
        kept = []
        for update in self.updates:
            utype = _update_type(update)
            if utype in _KNOWN_UPDATE_TYPES and utype not in allowed:
                self.dropped_updates.append(update)
            else:
                kept.append(update)
        self.updates = kept
        return kept[:limit]

    # -- pushing user input ---------------------------------------------------------------------

    def _enqueue(self, body: dict[str, Any]) -> dict[str, Any]:
        given = body.get("update_id")
        if isinstance(given, int) and not isinstance(given, bool) and given > self._last_update_id:
            self._last_update_id = given
        else:
            self._last_update_id += 1
        update = {**body, "update_id": self._last_update_id}
        self.updates.append(update)
        self.pushed_updates.append(update)
        self._updates_changed.notify()
        self._changed.notify()
        return copy.deepcopy(update)

    def push_raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an arbitrary update (update_id kept if larger than the last one, else assigned)."""
        return self._enqueue(copy.deepcopy(update))

    def push_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        chat_id: int | None = None,
        chat_type: str | None = None,
        chat_title: str | None = None,
        is_forum: bool | None = None,
        first_name: str = "Tester",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        photo: bool | bytes = False,
        sticker: bool | str = False,
        document: bool | bytes = False,
        document_name: str = "document.txt",
        voice: bool | bytes = False,
        caption: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        is_topic_message: bool | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a message from a user; returns the Update (the message is stored for copy/reply)."""
        user = self._remember_user(user_id, first_name, last_name, username, language_code)
        target = chat_id if chat_id is not None else user_id
        chat = self._ensure_chat(target, user, chat_type, chat_title, is_forum)
        content: dict[str, Any] = {}
        if text is not None:
            content["text"] = text
            ents = entities if entities is not None else _auto_entities(text)
            if ents:
                content["entities"] = ents
        if photo:
            data = photo if isinstance(photo, bytes) else _FAKE_PNG
            stored_file = self.add_file(data, "photo", "photo.png")
            content["photo"] = self._media_object("photo", stored_file, {})
        if document:
            data = document if isinstance(document, bytes) else b"fake document\n"
            stored_file = self.add_file(data, "document", document_name)
            content["document"] = self._media_object("document", stored_file, {})
        if voice:
            data = voice if isinstance(voice, bytes) else b"OggS fake voice"
            content["voice"] = self._media_object("voice", self.add_file(data, "voice", "voice.ogg"), {})
        if sticker:
            emoji = sticker if isinstance(sticker, str) else "👍"
            stored_file = self.add_file(b"RIFF fake webp", "sticker", "sticker.webp")
            content["sticker"] = self._media_object("sticker", stored_file, {"emoji": emoji})
        if caption is not None and any(k in content for k in _MEDIA_KINDS):
            content["caption"] = caption
            caption_entities = _auto_entities(caption)
            if caption_entities:
                content["caption_entities"] = caption_entities
        if not content:
            raise ValueError("push_message needs text or some media")
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self.store.get((chat["id"], reply_to_message_id))
            if reply_to is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat['id']}")
        stored = self._new_message(
            chat, content, from_bot=False, user=user, thread_id=message_thread_id,
            is_topic_message=is_topic_message, reply_to=reply_to,
        )
        if extra:
            stored.data.update(copy.deepcopy(extra))
        if chat["type"] in ("group", "supergroup"):
            self.member_status.setdefault((chat["id"], user_id), "member")
        key = "channel_post" if chat["type"] == "channel" else "message"
        return self._enqueue({key: copy.deepcopy(stored.data)})

    def push_edited_message(
        self,
        chat_id: int,
        message_id: int,
        text: str | None = None,
        *,
        caption: str | None = None,
    ) -> dict[str, Any]:
        """Edit a stored user message and queue an ``edited_message`` update."""
        stored = self.store.get((chat_id, message_id))
        if stored is None or stored.from_bot:
            raise ValueError(f"no user message {message_id} in chat {chat_id}")
        new = copy.deepcopy(stored.data)
        if text is not None:
            new["text"] = text
            new.pop("entities", None)
            ents = _auto_entities(text)
            if ents:
                new["entities"] = ents
        if caption is not None:
            new["caption"] = caption
        new["edit_date"] = int(time.time())
        stored.history.append(stored.data)
        stored.data = new
        key = "edited_channel_post" if new["chat"]["type"] == "channel" else "edited_message"
        return self._enqueue({key: copy.deepcopy(new)})

    def push_callback(
        self,
        user_id: int,
        data: str,
        message_id: int | None = None,
        chat_id: int | None = None,
        *,
        first_name: str = "Tester",
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> dict[str, Any]:
        """Queue a callback_query for a stored bot message (default: the last one in the chat)."""
        chat_id = user_id if chat_id is None else chat_id
        if message_id is None:
            last = self.last_message(chat_id)
            if last is None:
                raise ValueError(f"no bot message in chat {chat_id}")
            message_id = last["message_id"]
        stored = self.store.get((chat_id, message_id))
        if stored is None or stored.deleted:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        known = self.users.get(user_id)
        user = self._remember_user(
            user_id,
            known["first_name"] if known and first_name == "Tester" else first_name,
            (known or {}).get("last_name"),
            username or (known or {}).get("username"),
            language_code,
        )
        self._callback_counter += 1
        query_id = str(4_000_000_000_000_000 + self._callback_counter)
        query = {
            "id": query_id,
            "from": user,
            "message": copy.deepcopy(stored.data),
            "chat_instance": str((chat_id * 2654435761) % 10**18),
            "data": data,
        }
        self._callbacks[query_id] = query
        return self._enqueue({"callback_query": query})

    def click_button(
        self, chat_id: int, text: str, *, message_id: int | None = None, user_id: int | None = None
    ) -> dict[str, Any]:
        """Press the inline button whose label contains ``text`` (last bot message by default)."""
        if message_id is None:
            candidates = (
                m for m in reversed(self._order) if m.chat_id == chat_id and m.from_bot and not m.deleted
            )
            stored = next((m for m in candidates if m.buttons), None)
        else:
            stored = self.store.get((chat_id, message_id))
        if stored is None:
            raise ValueError(f"no message with buttons in chat {chat_id}")
        for button in stored.buttons:
            if text in button.get("text", "") and "callback_data" in button:
                presser = user_id if user_id is not None else chat_id
                return self.push_callback(presser, button["callback_data"], stored.message_id, chat_id)
        labels = [b.get("text") for b in stored.buttons]
        raise ValueError(f"no callback button matching {text!r}; buttons: {labels}")

    def push_my_chat_member(
        self,
        user_id: int,
        new_status: str = "kicked",
        old_status: str = "member",
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """Queue a my_chat_member update (e.g. the user blocked the bot: new_status='kicked')."""
        user = self.users.get(user_id) or self._remember_user(user_id, "Tester", None, None, None)
        chat = self._ensure_chat(chat_id if chat_id is not None else user_id, user, None, None, None)

        def member(status: str) -> dict[str, Any]:
            body: dict[str, Any] = {"status": status, "user": copy.deepcopy(self.bot_user)}
            if status == "kicked":
                body["until_date"] = 0
            return body

        return self._enqueue(
            {
                "my_chat_member": {
                    "chat": copy.deepcopy(chat),
                    "from": copy.deepcopy(user),
                    "date": int(time.time()),
                    "old_chat_member": member(old_status),
                    "new_chat_member": member(new_status),
                }
            }
        )

    # -- failure injection and rules ------------------------------------------------------------

    def fail_next(
        self,
        method: str | None,
        error_code: int = 429,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int | None = 1,
        chat_id: int | str | None = None,
    ) -> FailRule:
        """Make the next ``times`` calls of ``method`` (None = any) fail (``times=None``: forever)."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                400: "Bad Request: injected failure",
                401: "Unauthorized",
                403: "Forbidden: bot was blocked by the user",
                404: "Not Found",
                409: "Conflict: terminated by other getUpdates request",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, f"Error {error_code}")
        rule = FailRule(method, error_code, description, retry_after, migrate_to_chat_id, times, chat_id)
        self.fail_rules.append(rule)
        return rule

    def clear_failures(self) -> None:
        """Drop all injected failures, blocks stay."""
        self.fail_rules.clear()

    def block_user(self, chat_id: int, description: str = "Forbidden: bot was blocked by the user") -> None:
        """Every send/edit/copy/forward to ``chat_id`` answers 403 until unblock_user()."""
        self.blocked[chat_id] = description

    def unblock_user(self, chat_id: int) -> None:
        """Undo block_user()."""
        self.blocked.pop(chat_id, None)

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Sends into this forum topic answer 400 "message thread not found" from now on."""
        self.deleted_topics.add((chat_id, thread_id))
        self.topics.pop((chat_id, thread_id), None)
        for stored in self._order:
            if stored.chat_id == chat_id and stored.data.get("message_thread_id") == thread_id:
                stored.deleted = True

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Status getChatMember reports: creator/administrator/member/restricted/left/kicked."""
        self.member_status[(chat_id, user_id)] = status

    # -- inspection -----------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded calls, optionally of one method (case-insensitive)."""
        if method is None:
            return list(self.call_log)
        return [c for c in self.call_log if c.method.lower() == method.lower()]

    def last_call(self, method: str | None = None) -> Call | None:
        """The most recent call (of ``method``), or None."""
        found = self.calls(method)
        return found[-1] if found else None

    def sent_messages(
        self, chat_id: int | None = None, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Current state of messages the bot sent (oldest first)."""
        return [
            copy.deepcopy(m.data)
            for m in self._order
            if m.from_bot and (chat_id is None or m.chat_id == chat_id) and (include_deleted or not m.deleted)
        ]

    def last_message(self, chat_id: int | None = None) -> dict[str, Any] | None:
        """Current state of the bot's latest visible message (in ``chat_id``), or None."""
        sent = self.sent_messages(chat_id)
        return sent[-1] if sent else None

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """The whole visible chat history (user and bot messages)."""
        return [
            copy.deepcopy(m.data)
            for m in self._order
            if m.chat_id == chat_id and (include_deleted or not m.deleted)
        ]

    def get_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """One stored message (also deleted ones), or None."""
        stored = self.store.get((chat_id, message_id))
        return copy.deepcopy(stored.data) if stored else None

    def texts(self, chat_id: int | None = None) -> list[str]:
        """Texts/captions of the bot's visible messages."""
        return [m.get("text", m.get("caption", "")) for m in self.sent_messages(chat_id)]

    def bot_commands(
        self, scope: dict[str, Any] | None = None, language_code: str | None = None
    ) -> list[dict[str, Any]]:
        """Commands set with setMyCommands for a scope/language."""
        key = self._commands_key({"scope": scope, "language_code": language_code})
        return copy.deepcopy(self.commands.get(key, []))

    @property
    def call_count(self) -> int:
        """Number of recorded calls (use as ``since`` for wait_for)."""
        return len(self.call_log)

    # -- waiting --------------------------------------------------------------------------------

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait (event-driven) until ``predicate()`` is true; TimeoutError otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [f"{c.method}:{c.status}" for c in self.call_log[-15:]]
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}; recent calls: {recent}")
            await self._changed.wait(remaining)

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
        count: int = 1,
        *,
        since: int = 0,
    ) -> Call:
        """Wait until ``count`` calls of ``method`` (matching ``predicate``) exist among calls[since:].

        Returns the ``count``-th matching call.
        """

        def matching() -> list[Call]:
            return [
                c for c in self.call_log[since:]
                if c.method.lower() == method.lower() and (predicate is None or predicate(c))
            ]

        await self.wait_until(lambda: len(matching()) >= count, timeout, f"{count}x {method}")
        return matching()[count - 1]

    async def wait_for_poll(self, timeout: float = 5.0) -> None:
        """Wait until a getUpdates long poll is parked waiting for new updates."""
        await self.wait_until(lambda: self._waiting_polls > 0, timeout, "a pending getUpdates")

    async def wait_delivered(self, update_id: int | None = None, timeout: float = 5.0) -> None:
        """Wait until an update (default: the last pushed) was returned by getUpdates."""
        if update_id is None:
            update_id = self._last_update_id
        await self.wait_until(
            lambda: self.delivery_counts.get(update_id, 0) > 0, timeout, f"delivery of update {update_id}"
        )

    # -- webhooks -------------------------------------------------------------------------------

    async def post_webhook(
        self, url: str, update: dict[str, Any], secret_token: str | None = None, *, timeout: float = 10.0
    ) -> int:
        """POST an update to a webhook endpoint like Telegram does; returns the HTTP status.

        A method returned in the webhook response (aiogram's "reply into webhook") is executed and
        recorded with ``via_webhook=True``.  On 2xx the update is removed from the pending queue.
        """
        update = copy.deepcopy(update)
        if "update_id" not in update:
            self._last_update_id += 1
            update["update_id"] = self._last_update_id
        headers = {"Content-Type": "application/json"}
        if secret_token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        async with (
            ClientSession(timeout=ClientTimeout(total=timeout)) as session,
            session.post(url, data=json.dumps(update, ensure_ascii=False), headers=headers) as resp,
        ):
            status = resp.status
            if 200 <= status < 300:
                await self._run_webhook_reply(resp)
            else:
                await resp.read()
        self.webhook_log.append((update.get("update_id"), status))
        if 200 <= status < 300:
            self.updates = [u for u in self.updates if u["update_id"] != update["update_id"]]
            self.delivery_counts[update["update_id"]] = self.delivery_counts.get(update["update_id"], 0) + 1
            self._changed.notify()
        return status

    async def deliver_webhook_updates(self) -> list[int]:
        """Post every pending update to the webhook set via setWebhook; returns the statuses."""
        if not self.webhook:
            raise RuntimeError("no webhook is set")
        statuses = []
        for update in list(self.updates):
            status = await self.post_webhook(self.webhook["url"], update, self.webhook.get("secret_token"))
            statuses.append(status)
        return statuses

    async def _run_webhook_reply(self, resp: Any) -> None:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        filenames: dict[str, tuple[str | None, str | None]] = {}
        if resp.content_type.startswith("multipart/"):
            reader = MultipartReader(resp.headers, resp.content)
            while (part := await reader.next()) is not None:
                name = getattr(part, "name", None)
                if not name:
                    continue
                if getattr(part, "filename", None):
                    files[name] = bytes(await part.read(decode=True))
                    filenames[name] = (part.filename, part.headers.get("Content-Type"))
                else:
                    params[name] = _decode_param(name, await part.text())
        elif resp.content_type == "application/json":
            body = await resp.json()
            if isinstance(body, dict):
                params = {k: _decode_param(k, v) for k, v in body.items()}
        else:
            await resp.read()
        method = params.pop("method", None)
        if method:
            await self._execute(str(method), params, files, filenames, via_webhook=True)
