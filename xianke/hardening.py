"""Production wiring for the bot (issue 8): shared FSM storage, the author hasher for /forget, metrics.

- `XIANKE_FSM_REDIS_URL` switches aiogram's FSM storage and per-user event isolation to Redis, so
  several webhook workers behind one load balancer share onboarding state and never handle two
  updates of one customer at once. Without it the SQLite storage (one process) is used. The `redis`
  package is optional and imported only when the setting is present.
- `author_hasher`: the listening ingest stores Telegram authors as salted hashes of "tg:<id>"; /mydata
  and /forget need the same hash to find a customer's posts. The bot may not import jobs, so the
  composition root hands it this function (the salt is read on first use, not at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.settings import Settings


class FsmStorageError(RuntimeError):
    """Redis FSM storage was asked for but cannot be set up; the message names what to fix."""


def fsm_storage_kwargs(settings: Settings) -> dict[str, Any]:
    """`storage` and `events_isolation` for build_dispatcher: Redis when configured, else {} (SQLite)."""
    url = settings.fsm_redis_url
    if not url:
        return {}
    try:
        from aiogram.fsm.storage.base import DefaultKeyBuilder
        from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
    except ImportError as exc:
        raise FsmStorageError(
            "XIANKE_FSM_REDIS_URL is set but the `redis` package is not installed: "
            "pip install 'redis>=5' (the Docker image installs it), or unset the variable to use SQLite"
        ) from exc
    key_builder = DefaultKeyBuilder(with_destiny=True)
    return {
        "storage": RedisStorage.from_url(url, key_builder=key_builder),
        "events_isolation": RedisEventIsolation.from_url(url, key_builder=key_builder),
    }


def author_hasher(settings: Settings) -> Callable[[int], list[str]]:
    """user id → the author hashes the listening ingest would have stored for them."""
    salt: list[bytes] = []

    def hashes(user_id: int) -> list[str]:
        from listening.ingest import hash_author, load_author_salt

        if not salt:
            salt.append(load_author_salt(settings))
        digest = hash_author(salt[0], f"tg:{user_id}")
        return [digest] if digest else []

    return hashes
