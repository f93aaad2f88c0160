"""Settings from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.errors import InvalidInput
from bot.domain.models import Severity
from bot.domain.permissions import DEFAULT_PROTECTED, DEFAULT_ROLES, GROUP_PREFIX, Policy

Network = IPv4Network | IPv6Network


def parse_networks(value: str) -> list[Network]:
    """Comma-separated CIDRs (a bare address is a network of one)."""
    found = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"'{part}' is not a network (expected comma-separated CIDRs such as 203.0.113.0/24)") from None
    return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite:///./im.db", validation_alias="IM_DATABASE_URL")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_channel: str | None = Field(None, validation_alias="IM_SLACK_CHANNEL")
    # How long a Slack Web API call may take before its outcome counts as unknown (then it is looked up, not redone).
    slack_timeout_seconds: float = Field(10.0, gt=0, le=120, validation_alias="IM_SLACK_TIMEOUT_SECONDS")
    public_url: str | None = Field(None, validation_alias="IM_PUBLIC_URL")
    host: str = Field("0.0.0.0", validation_alias="IM_HOST")
    port: int = Field(3000, ge=1, le=65535, validation_alias="IM_PORT")
    war_room_min_sev: str = Field("SEV-1", validation_alias="IM_WAR_ROOM_MIN_SEV")
    secret_key: SecretStr | None = Field(None, validation_alias="IM_SECRET_KEY")
    secret_key_previous: SecretStr | None = Field(None, validation_alias="IM_SECRET_KEY_PREVIOUS")
    workers: int = Field(2, ge=1, le=32, validation_alias="IM_WORKERS")
    webhook_allowed_networks: str | None = Field(None, validation_alias="IM_WEBHOOK_ALLOWED_NETWORKS")
    trust_forwarded_for: bool = Field(False, validation_alias="IM_TRUST_FORWARDED_FOR")
    webhook_max_per_second: float = Field(50.0, gt=0, le=100_000, validation_alias="IM_WEBHOOK_MAX_PER_SECOND")
    # who may do what (bot/domain/permissions.py): Slack user IDs, or group:S0123 for a Slack user group
    admins: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="IM_ADMINS")
    roles: Annotated[tuple[str, ...], NoDecode] = Field(DEFAULT_ROLES, validation_alias="IM_ROLES")
    # SLA targets per severity, "SEV-1=5m,SEV-2=15m,..." (bot/reports/targets.py reads them)
    sla_ack: str | None = Field(None, validation_alias="IM_SLA_ACK")
    sla_resolve: str | None = Field(None, validation_alias="IM_SLA_RESOLVE")
    protected_severities: Annotated[tuple[str, ...], NoDecode] = Field(
        tuple(sorted(DEFAULT_PROTECTED)), validation_alias="IM_PROTECTED_SEVERITIES"
    )

    @field_validator("admins", "roles", "protected_severities", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return tuple(value) if isinstance(value, list | tuple) else ()

    @field_validator("admins")
    @classmethod
    def _admins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not re.fullmatch(r"(group:S[A-Z0-9]{2,}|[UW][A-Z0-9]{2,})", entry):
                raise ValueError(f"'{entry}' is neither a Slack user ID (U0123...) nor group:S0123... (a user group)")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(v.lower() for v in value)
        for name in names:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,30}", name):
                raise ValueError(f"'{name}' is not a role name (lowercase letters, digits, - and _)")
        if not names:
            raise ValueError("at least one role is needed")
        return names

    @field_validator("protected_severities")
    @classmethod
    def _protected(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(Severity.parse(v).value for v in value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    def policy(self, group_members: Callable[[str], frozenset[str]] | None = None) -> Policy:
        """The permission policy these settings describe (group members come from the Slack adapter)."""
        admins = frozenset(a if a.startswith(GROUP_PREFIX) else f"slack:{a}" for a in self.admins)
        extra = {"group_members": group_members} if group_members else {}
        return Policy(roles=self.roles, admins=admins, protected_severities=frozenset(self.protected_severities), **extra)

    @field_validator("sla_ack", "sla_resolve")
    @classmethod
    def _sla_targets(cls, value: str | None) -> str | None:
        from bot.reports.targets import parse_targets

        try:
            parse_targets(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

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

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_networks(value)
        return value

    @property
    def webhook_networks(self) -> list[Network]:
        """IM_WEBHOOK_ALLOWED_NETWORKS parsed; empty when unset (every source allowed)."""
        return parse_networks(self.webhook_allowed_networks or "")

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
        return Settings(**overrides)  # type: ignore[arg-type]  # by alias (IM_*) at run time; mypy knows field names only
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        variable = _ALIASES.get(field, field)
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {variable}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
