"""Settings from XIANKE_* environment variables and an optional .env file."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "XIANKE_"
EMBEDDED_ENCODER = "embedded:multilingual-e5-small"
EMBEDDED_SENTIMENT = "embedded"

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _int_list(value: object) -> object:
    """Accept "1,2,3", "[1,2,3]" or a list; Telegram chat ids are integers."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [int(part) for part in re.split(r"[,\s]+", text) if part]
    return value


MIN_TOKEN_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("var"), description="Cache and data directory (models, indexes, charts).")
    db_path: Path | None = Field(None, description="SQLite file; default <data_dir>/xianke.db.")
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"

    telegram_token: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(8080, ge=1, le=65535)
    staff_chat_id: int | None = None
    # Support consultations (issue 5): SLA reminder after this many minutes of a customer waiting,
    # auto-close after this many hours without any message.
    sla_minutes: int = Field(15, ge=1, le=10080, description="Remind staff when a customer waits this long.")
    ticket_idle_close_hours: int = Field(24, ge=1, le=720, description="Auto-close idle tickets after this.")
    marketer_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    admin_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    encoder_model: str = EMBEDDED_ENCODER
    sentiment_model: str = EMBEDDED_SENTIMENT

    ingest_token: SecretStr | None = None
    orders_token: SecretStr | None = None
    payment_provider_token: SecretStr | None = Field(
        None, description="Telegram payment provider token for kits and ingredients (CNY); unset: order requests go to support."
    )
    course_url_base: str | None = Field(
        None, pattern=r"^https://\S+$", description="Course pages: <base><course slug> in receipts and /orders."
    )
    ingest_dir: Path | None = Field(None, description="Drop folder for JSONL/CSV posts; default <data_dir>/inbox.")
    author_salt: SecretStr | None = Field(None, description="Salt for author hashes; default a random file in data_dir.")
    listen_chats: Annotated[list[int], NoDecode] = Field(default_factory=list)
    ingest_every_min: int = Field(5, ge=1, le=1440)
    analyze_every_min: int = Field(10, ge=1, le=1440)
    topics_every_min: int = Field(360, ge=5, le=10080)

    bot_username: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$", description="For t.me deep links.")
    tracked_brands: Annotated[list[str], NoDecode] = Field(default_factory=list)
    digest_daily_at: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    digest_weekly_at: str = Field("mon 09:30", pattern=r"^(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d$")
    alerts_every_min: int = Field(30, ge=1, le=1440)
    # How often the other scheduled jobs run (minutes).
    coupons_every_min: int = Field(60, ge=1, le=10080)
    effects_every_min: int = Field(360, ge=5, le=10080)
    support_sla_every_min: int = Field(1, ge=1, le=1440)
    support_close_every_min: int = Field(15, ge=1, le=1440)
    referral_notices_every_min: int = Field(5, ge=1, le=1440)
    alert_k: float = Field(3.5, gt=0, le=20)
    alert_window_days: int = Field(28, ge=7, le=365)
    alert_min_negative: int = Field(5, ge=1)
    # Referral programme (推荐有奖): both sides get a coupon after the friend's first purchase.
    referral_reward_cents: int = Field(2000, ge=0, le=1_000_000, description="Referrer's coupon per rewarded friend (0: none).")
    referral_welcome_cents: int = Field(1000, ge=0, le=1_000_000, description="The referred friend's coupon (0: none).")
    referral_daily_cap: int = Field(5, ge=1, le=1000, description="Most referral rewards one referrer earns per local day.")
    # Weekly sentiment retrain with marketers' corrections (job sentiment_retrain).
    sentiment_train_csv: Path | None = Field(None, description="Labelled CSV (domain,label,text) the weekly retrain uses.")
    sentiment_retrain_at: str = Field("sun 03:00", pattern=r"^(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d$")
    # Hardening (issue 8): raw-post retention, Prometheus metrics port for polling mode, and shared FSM
    # storage so several webhook workers can serve one bot.
    posts_retention_days: int = Field(180, ge=1, le=3650, description="Scrub raw post text older than this.")
    retention_at: str = Field("04:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Daily retention run.")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="Serve /metrics on this port (polling mode).")
    fsm_redis_url: str | None = Field(
        None, pattern=r"^(rediss?://.+)?$", description="redis://host:6379/0 for aiogram RedisStorage (several workers)."
    )

    @field_validator("tracked_brands", mode="before")
    @classmethod
    def _split_words(cls, value: object) -> object:
        if isinstance(value, str):
            return [w.strip() for w in re.split(r"[,，;；]", value) if w.strip()]
        return value

    @field_validator("marketer_chat_ids", "admin_user_ids", "listen_chats", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return _int_list(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (try Asia/Shanghai)") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("must look like 123456:ABC-DEF… (digits, colon, token from @BotFather)")
        return value

    @field_validator("ingest_token", "orders_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short bearer token can be guessed over HTTP; 16 characters is the floor, 32+ random is advised.
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters (use a long random string)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_RE.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z a-z 0-9 _ -")
        return value

    @field_validator("webhook_url", "telegram_api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/") if value else value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def database_path(self) -> Path:
        return self.db_path or self.data_dir / "xianke.db"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {ENV_PREFIX}{field.upper()}: {message}") from None
