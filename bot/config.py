"""Settings from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.clock import parse_duration
from bot.domain import fields as custom_fields
from bot.domain.errors import InvalidInput
from bot.domain.models import Severity
from bot.domain.permissions import DEFAULT_PROTECTED, DEFAULT_ROLES, GROUP_PREFIX, Policy
from bot.sla_clocks import DEFAULT_ACK, DEFAULT_RESOLVE, DEFAULT_WARN_FRACTION
from bot.store_head import DEFAULT_DATABASE_URL

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
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

    database_url: str = Field(DEFAULT_DATABASE_URL, validation_alias="IM_DATABASE_URL")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_channel: str | None = Field(None, validation_alias="IM_SLACK_CHANNEL")
    # our workspace (a request from any other team is a Slack Connect guest: read only); learned from
    # auth.test in the background when unset
    slack_team_id: str | None = Field(None, validation_alias="SLACK_TEAM_ID")
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
    # alert intake (integrations/alerts): each source's rate cap, and alert severity -> incident severity
    alerts_max_per_second: float = Field(100.0, gt=0, le=100_000, validation_alias="IM_ALERTS_MAX_PER_SECOND")
    alert_severities: Annotated[dict[str, str], NoDecode] = Field(
        {"critical": "SEV-1", "error": "SEV-2", "warning": "SEV-3", "info": "SEV-4"}, validation_alias="IM_ALERT_SEVERITIES"
    )
    # who may do what (bot/domain/permissions.py): Slack user IDs, or group:S0123 for a Slack user group
    admins: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="IM_ADMINS")
    roles: Annotated[tuple[str, ...], NoDecode] = Field(DEFAULT_ROLES, validation_alias="IM_ROLES")
    protected_severities: Annotated[tuple[str, ...], NoDecode] = Field(
        tuple(sorted(DEFAULT_PROTECTED)), validation_alias="IM_PROTECTED_SEVERITIES"
    )
    # clocks (bot/sla.py, bot/reminders.py): per severity, "SEV-1=5m,SEV-2=15m"; a severity left out has none
    sla_ack: Annotated[dict[str, int], NoDecode] = Field(dict(DEFAULT_ACK), validation_alias="IM_SLA_ACK")
    sla_resolve: Annotated[dict[str, int], NoDecode] = Field(dict(DEFAULT_RESOLVE), validation_alias="IM_SLA_RESOLVE")
    sla_warn_fraction: float = Field(DEFAULT_WARN_FRACTION, gt=0, le=1, validation_alias="IM_SLA_WARN_FRACTION")  # 1: no warning
    reminders: Annotated[dict[str, int], NoDecode] = Field({"SEV-1": 900, "SEV-2": 1800}, validation_alias="IM_REMINDERS")
    # custom fields an incident may carry (`declare --field environment=production`, `field INC-3 ...`)
    incident_fields: Annotated[tuple[str, ...], NoDecode] = Field(
        custom_fields.DEFAULT_FIELDS, validation_alias="IM_INCIDENT_FIELDS"
    )
    # who hears of every SEV-1 (declared, or raised to it): Slack channel IDs and/or user IDs, comma-separated
    management_notify: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="IM_MANAGEMENT_NOTIFY")

    @field_validator("sla_ack", "sla_resolve", "reminders", mode="before")
    @classmethod
    def _per_severity(cls, value: object) -> dict[str, int]:
        """`SEV-1=5m, sev2=15m` (or a mapping) -> {"SEV-1": 300, "SEV-2": 900}; `off` drops a severity."""
        pairs = value.items() if isinstance(value, dict) else [p.partition("=")[::2] for p in str(value or "").split(",")]
        found: dict[str, int] = {}
        for key, raw in pairs:
            key, raw = str(key).strip(), str(raw).strip()
            if not key and not raw:
                continue
            try:
                severity = Severity.parse(key).value
            except InvalidInput as exc:
                raise ValueError(f"{exc} in '{key}={raw}' (expected SEV-1=5m,SEV-2=15m)") from None
            if raw.lower() in ("off", "none", "0"):
                continue
            try:
                found[severity] = parse_duration(raw)
            except ValueError as exc:
                raise ValueError(f"{severity}: {exc}") from None
        return found

    # pacing ahead of remote rate limits (bot/pacing.py): "name=count/period" overrides of the vendors' limits,
    # e.g. "pagerduty=960/1m,slack.post=1/1s"; "off": no pacing (a test double that enforces nothing)
    rate_limits: Annotated[dict[str, tuple[int, int]] | None, NoDecode] = Field({}, validation_alias="IM_RATE_LIMITS")

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rate_limits(cls, value: object) -> dict[str, tuple[int, int]] | None:
        """`pagerduty=960/1m, slack.post=1/1s` (or a mapping of name -> (count, seconds)); `off` -> None."""
        if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
            return None
        if isinstance(value, dict):
            return {str(k): (int(v[0]), int(v[1])) for k, v in value.items()}
        found: dict[str, tuple[int, int]] = {}
        for part in filter(None, (p.strip() for p in str(value).split(","))):
            name, _, limit = part.partition("=")
            count, _, period = limit.partition("/")
            try:
                found[name.strip()] = (int(count), parse_duration(period.strip()))
            except ValueError:
                raise ValueError(f"'{part}' is not a limit (expected name=count/period, e.g. pagerduty=960/1m)") from None
            if found[name.strip()][0] < 1 or found[name.strip()][1] < 1 or not name.strip():
                raise ValueError(f"'{part}' is not a limit (a name, at least 1 call, a period of at least 1s)")
        return found

    # logs and metrics (bot/logging_setup.py, bot/metrics.py); no level set: each entry point has its default
    log_level: str | None = Field(None, validation_alias="IM_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", validation_alias="IM_LOG_FORMAT")
    metrics_token: SecretStr | None = Field(None, validation_alias="IM_METRICS_TOKEN")
    # what `im logs` reads (bot/log_store.py): a table every replica writes, bounded by count and by age
    log_max_records: int = Field(
        100_000,
        ge=0,
        le=10_000_000,
        validation_alias="IM_LOG_MAX_RECORDS",
        description="log records kept for `im logs` (0: none)",
    )
    log_retention: int = Field(
        "7d",  # validated into seconds (validate_default), shown as written by `im help`
        validate_default=True,
        validation_alias="IM_LOG_RETENTION",
        description="how long `im logs` keeps a record",
    )
    # the seed's debug mode: every PagerDuty request and response logged (secrets masked), for every connector
    pagerduty_debug: bool = Field(False, validation_alias="PAGERDUTY_DEBUG", description="log every PagerDuty call")

    @field_validator("log_retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> int:
        return parse_duration(value if isinstance(value, int | str) else str(value))

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        level = value.strip().upper()
        level = "WARNING" if level == "WARN" else level
        if level not in LOG_LEVELS:
            raise ValueError(f"'{value}' is not a log level (expected {', '.join(n.lower() for n in LOG_LEVELS)})")
        return level

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in ("text", "json"):
            raise ValueError(f"'{value}' is not a log format (expected text or json)")
        return text

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("a metrics token needs at least 16 characters (any long random string)")
        return value

    @field_validator("admins", "roles", "protected_severities", "incident_fields", "management_notify", mode="before")
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

    @field_validator("incident_fields")
    @classmethod
    def _incident_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return custom_fields.check_names(value)

    @field_validator("management_notify")
    @classmethod
    def _management_notify(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not re.fullmatch(r"[CGUW][A-Z0-9]{2,}", entry):
                raise ValueError(f"'{entry}' is neither a Slack channel ID (C0123...) nor a user ID (U0123...)")
        return tuple(dict.fromkeys(value))

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

    @field_validator("alert_severities", mode="before")
    @classmethod
    def _alert_severities(cls, value: object) -> dict[str, str]:
        """`critical=SEV-1,error=SEV-2,...`: every alert severity im takes (critical, error, warning, info) mapped."""
        if isinstance(value, dict):
            pairs = list(value.items())
        else:
            pairs = [part.partition("=")[::2] for part in str(value).split(",") if part.strip()]
        found: dict[str, str] = {}
        for key, sev in pairs:
            name = str(key).strip().lower()
            if name not in ("critical", "error", "warning", "info"):
                raise ValueError(f"'{key}' is not an alert severity (critical, error, warning, info)")
            try:
                found[name] = Severity.parse(str(sev)).value
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        missing = {"critical", "error", "warning", "info"} - set(found)
        if missing:
            raise ValueError(f"no incident severity for {', '.join(sorted(missing))} (e.g. critical=SEV-1,error=SEV-2,...)")
        return found

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

    @field_validator("slack_team_id")
    @classmethod
    def _team_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[TE][A-Z0-9]{2,}", value):
            raise ValueError("expected a Slack team ID such as T0123456789")
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
    """Settings have values we cannot use; the message names every such variable, one a line."""


_ALIASES = {name: field.validation_alias for name, field in Settings.model_fields.items()}


def load_settings(**overrides: object) -> Settings:
    """The settings, or a ConfigError listing every invalid variable at once (not only the first)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # by alias (IM_*) at run time; mypy knows field names only
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problem = f"{_ALIASES.get(field, field)}: {error['msg'].removeprefix('Value error, ')}"
            if problem not in problems:
                problems.append(problem)
        if len(problems) == 1:
            raise ConfigError(f"invalid setting {problems[0]}") from None
        raise ConfigError("invalid settings:\n" + "\n".join(f"  {p}" for p in problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
