"""Fake Telegram Bot API server for end-to-end tests (see :mod:`tests.fakebot.server`)."""

from .server import (
    DEFAULT_TOKEN,
    ApiError,
    Call,
    FailRule,
    FakeBotAPI,
    StoredFile,
    StoredMessage,
)

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "Call",
    "FailRule",
    "FakeBotAPI",
    "StoredFile",
    "StoredMessage",
]
