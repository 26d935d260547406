"""Settings from the environment (and `.env`), validated once at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.money import whole_number

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{PROJECT_DIR / 'data' / 'bot.db'}"
M = TypeVar("M", bound=BaseModel)

DEFAULT_BUSINESS_FILE = PROJECT_DIR / "business.example.yaml"
DEFAULT_FAQ_FILE = PROJECT_DIR / "faq.example.yaml"
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(default_factory=frozenset)
    manager_chat_id: int | None = None
    business_file: Path = DEFAULT_BUSINESS_FILE
    faq_file: Path = DEFAULT_FAQ_FILE  # reloaded by /reload_faq without a restart
    scheduler_interval_seconds: float = Field(default=30.0, gt=0, le=3600)  # how often due surveys are looked for
    # Webhook mode (several instances behind a load balancer); polling when WEBHOOK_URL is unset.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    redis_url: str | None = None  # FSM state and per-person ordering shared between instances
    # Every Redis key starts with it: two bots (or test runs) can share one Redis server.
    redis_prefix: str = Field(default="frontdoor", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Outgoing messages: Telegram's bulk limit. Paid broadcasts allow up to 1000 a second.
    send_limit_per_second: int = Field(default=30, ge=1, le=1000)

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError(
                "WEBHOOK_SECRET is required with WEBHOOK_URL: 1-256 characters of A-Z a-z 0-9 _ -, "
                "e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.webhook_url and self.webhook_url.startswith("http://") and not self.telegram_api_url:
            raise ValueError(
                "WEBHOOK_URL: Telegram posts only to https:// addresses "
                "(http:// works with a self-hosted Bot API server at TELEGRAM_API_URL)"
            )
        return self

    @property
    def webhook_path(self) -> str:
        """The path the webhook listens on: the path of WEBHOOK_URL."""
        return urlsplit(self.webhook_url or "").path or "/"

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).strip()
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "expected the public https:// address Telegram posts updates to, like https://bot.example.com/telegram"
            )
        return text

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).strip()
        if not SECRET_SHAPE.fullmatch(text):
            raise ValueError("expected 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule for secret_token)")
        return text

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).strip()
        if not text.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:6379/0 (or rediss:// with TLS)")
        return text

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token_shape(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).strip()
        head, _, tail = text.partition(":")
        if whole_number(head) is None or len(tail) < 30:
            raise ValueError("expected a token from @BotFather, like 123456789:AAE…")
        return text

    @field_validator("telegram_api_url", mode="before")
    @classmethod
    def _api_url(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// base URL of a Bot API server")
        return text

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: object) -> object:
        text = str(value or "").strip() or DEFAULT_DATABASE_URL
        if not text.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db")
        return text

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: object) -> object:
        if value in (None, ""):
            return frozenset()
        if isinstance(value, (list, tuple, set, frozenset)):
            return frozenset(int(v) for v in value)
        ids: set[int] = set()
        for part in str(value).replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if whole_number(part.removeprefix("-")) is None:
                raise ValueError(f"expected comma-separated Telegram user ids, got {part!r}")
            ids.add(int(part))
        return frozenset(ids)

    @field_validator("manager_chat_id", mode="before")
    @classmethod
    def _manager_chat(cls, value: object) -> object:
        if value in (None, ""):
            return None
        text = str(value).strip()
        if whole_number(text.removeprefix("-")) is None:
            raise ValueError("expected the numeric id of the managers' supergroup, like -1001234567890")
        return int(text)


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line a person can act on."""


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """Turn pydantic's report into lines that name the setting and what is expected."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(file)"
        name = location.upper() if not prefix else location
        message = item["msg"].removeprefix("Value error, ")
        if not item["loc"] and not prefix:  # a rule across settings names them itself
            lines.append(message)
            continue
        lines.append(f"{prefix}{name}: {message}")
    return "\n".join(lines)


def load_yaml_model(path: Path, setting: str, model: type[M], shape: str) -> M:
    """Read a YAML file and validate it; every problem is one line naming the setting, the file
    and the key at fault. `shape` says what the top level must be."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{setting}: no such file {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{setting}: {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{setting}: {path} must be {shape}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, prefix=f"{path}: ")) from None


def load_settings(**overrides: object) -> Settings:
    try:
        # Any field may be given by keyword, the rest comes from the environment; mypy sees `object`.
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
