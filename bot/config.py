"""Settings from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.errors import InvalidInput
from bot.domain.models import Severity


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite:///./im.db", validation_alias="IM_DATABASE_URL")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_channel: str | None = Field(None, validation_alias="IM_SLACK_CHANNEL")
    public_url: str | None = Field(None, validation_alias="IM_PUBLIC_URL")
    host: str = Field("0.0.0.0", validation_alias="IM_HOST")
    port: int = Field(3000, ge=1, le=65535, validation_alias="IM_PORT")
    war_room_min_sev: str = Field("SEV-1", validation_alias="IM_WAR_ROOM_MIN_SEV")
    secret_key: SecretStr | None = Field(None, validation_alias="IM_SECRET_KEY")
    workers: int = Field(2, ge=1, le=32, validation_alias="IM_WORKERS")

    @field_validator("war_room_min_sev")
    @classmethod
    def _severity(cls, value: str) -> str:
        try:
            return Severity.parse(value).value
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("slack_api_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @field_validator("slack_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[CGD][A-Z0-9]{2,}", value):
            raise ValueError("expected a Slack channel ID such as C0123456789")
        return value

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None and (self.slack_signing_secret is not None or self.slack_app_token is not None)

    def slack_missing(self) -> list[str]:
        missing = []
        if self.slack_bot_token is None:
            missing.append("SLACK_BOT_TOKEN")
        if self.slack_signing_secret is None and self.slack_app_token is None:
            missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
        return missing


class ConfigError(Exception):
    """A setting has a value we cannot use; the message names the variable."""


_ALIASES = {name: field.validation_alias for name, field in Settings.model_fields.items()}


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        variable = _ALIASES.get(field, field)
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {variable}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
