"""Webhook secret check: constant time, and a 401 (never a 500) for any header Telegram would not send.

aiogram's SimpleRequestHandler compares with `secrets.compare_digest(str, str)`, which is constant
time but raises TypeError on non-ASCII text — a forged header with one such character turned into a
500 and an error trace per request. Comparing UTF-8 bytes keeps the constant-time property for every
input, and a wrong or missing header answers 401 like aiogram does for a plain mismatch.
"""

from __future__ import annotations

import hmac

from aiogram import Bot
from aiogram.webhook.aiohttp_server import SimpleRequestHandler


def secret_matches(given: str | None, expected: str | None) -> bool:
    """True when no secret is configured, else a constant-time byte comparison."""
    if not expected:
        return True
    return hmac.compare_digest(
        (given or "").encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


class SecretCheckingRequestHandler(SimpleRequestHandler):
    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        return secret_matches(telegram_secret_token, self.secret_token)
