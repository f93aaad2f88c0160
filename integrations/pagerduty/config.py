"""Connector configuration as the user writes it (the seed's JSON), validated field by field."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from bot.clock import parse_duration
from bot.connectors.secrets import ENV_REF
from bot.domain.errors import DomainError
from bot.domain.fields import BUILTIN_SOURCES
from bot.domain.models import SEVERITIES

PD_ID = re.compile(r"^P[A-Z0-9]{5,}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PD_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")


class ConnectorConfigError(DomainError):
    """Names the field and what is expected."""


def _pd_id(value: str | None, what: str = "a PagerDuty ID") -> str | None:
    if value is None or value == "":
        return None
    if not PD_ID.match(value):
        raise ValueError(f"expected {what} such as PXXXXXX")
    return value


class SlaTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ack: int | None = None
    resolve: int | None = None

    @field_validator("ack", "resolve", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int | None:
        return None if value is None else parse_duration(value)


class PagerDutyCustom(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str | None = None
    from_email: str | None = None
    escalation_policy_id: str | None = None
    urgency_mapping: dict[str, Literal["high", "low"]] = Field(default_factory=dict)
    # im severity -> payload.severity of Events API v2 events (routing key): overrides SEV-1 critical,
    # SEV-2 error, SEV-3 warning, SEV-4 info
    severity_mapping: dict[str, Literal["critical", "error", "warning", "info"]] = Field(default_factory=dict)
    service_mappings: dict[str, str] = Field(default_factory=dict)
    escalation_mappings: dict[str, str] = Field(default_factory=dict)
    sla_mapping: dict[str, SlaTarget] = Field(default_factory=dict)
    auto_resolve: bool = True
    sync_notes: bool = True

    @field_validator("service_id", "escalation_policy_id")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return _pd_id(value)

    @field_validator("from_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and not EMAIL.match(value):
            raise ValueError("expected an email address of a PagerDuty user")
        return value

    @field_validator("urgency_mapping", "severity_mapping", "sla_mapping")
    @classmethod
    def _severities(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key not in SEVERITIES:
                raise ValueError(f"'{key}' is not a severity (expected SEV-1..SEV-4)")
        return value

    @field_validator("service_mappings", "escalation_mappings")
    @classmethod
    def _mapping_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pd_id in value.items():
            _pd_id(pd_id, f"a PagerDuty ID for '{name}'")
        return {name.lower(): pd_id for name, pd_id in value.items()}


class PagerDutyConfig(BaseModel):
    """Everything but the API key, which is sealed separately."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.pagerduty.com"
    events_url: str = "https://events.pagerduty.com"  # Events API v2 (routing key): POST {events_url}/v2/enqueue
    sync_direction: Literal["bidirectional", "outbound", "inbound"] = "outbound"
    sync_interval: int = 300
    request_timeout: int = 10  # seconds to wait for PagerDuty's answer before the outcome counts as unknown
    enable_webhook: bool = True
    custom: PagerDutyCustom = Field(default_factory=PagerDutyCustom)
    # im field -> where it goes in PagerDuty's incident details, e.g. "environment": "custom_details.environment"
    custom_field_mappings: dict[str, str] = Field(default_factory=dict)
    # the seed's debug mode; what they switch on is the logging's (request/response logs, secrets redacted)
    debug: bool = False
    log_requests: bool = False
    log_responses: bool = False
    # Set by the registry when it loads a connector that holds a routing key and no REST key; never stored.
    _routing_key_only: bool = PrivateAttr(default=False)

    @field_validator("custom_field_mappings")
    @classmethod
    def _field_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for source, target in value.items():
            if not PD_FIELD.match(target):
                raise ValueError(f"'{target}' (for {source}) is not a PagerDuty field name such as custom_details.{source}")
        return value

    @field_validator("base_url", "events_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL such as https://api.pagerduty.com")
        return value.rstrip("/")

    @field_validator("sync_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> int:
        seconds = parse_duration(value)
        if seconds < 30:
            raise ValueError("at least 30s (PagerDuty allows 960 requests a minute per key)")
        return seconds

    @field_validator("request_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> int:
        seconds = parse_duration(value)
        if seconds > 120:
            raise ValueError("at most 120s")
        return seconds

    @property
    def routing_key_only(self) -> bool:
        """Pages through the Events API alone: PagerDuty's incidents and webhooks are out of its sight."""
        return self._routing_key_only

    @property
    def outbound(self) -> bool:
        return self.sync_direction in ("outbound", "bidirectional")

    @property
    def inbound(self) -> bool:
        return self.sync_direction in ("inbound", "bidirectional")

    def covered_service_ids(self) -> list[str]:
        """The PagerDuty services this connector covers: its default service and every mapped one."""
        return sorted({s for s in [self.custom.service_id, *self.custom.service_mappings.values()] if s})

    def covers(self, service: str) -> bool:
        """Whether an im service pages through this connector: it is mapped, or the connector has a default.
        A routing key names one PagerDuty service itself, so a routing-key-only connector with no mapping
        pages for every im service."""
        mappings = self.custom.service_mappings
        by_key = self._routing_key_only and not mappings
        return service in mappings or "default" in mappings or bool(self.custom.service_id) or by_key


def check_field_sources(config: PagerDutyConfig, incident_fields: tuple[str, ...]) -> None:
    """Every mapped im field exists (a built-in one or one of IM_INCIDENT_FIELDS): a typo is refused
    when the mapping is made, not silently left out of every incident."""
    known = (*BUILTIN_SOURCES, *incident_fields)
    for source in config.custom_field_mappings:
        if source not in known:
            raise ConnectorConfigError(
                f"custom_field_mappings: '{source}' is not an im field (known: {', '.join(known)}; "
                "custom ones are set with IM_INCIDENT_FIELDS)"
            )


def validate_pagerduty(raw: dict[str, Any]) -> tuple[PagerDutyConfig, str | None, str | None]:
    """-> (config without secrets, the API key as given, the routing key as given). Errors name the field."""
    if not isinstance(raw, dict):
        raise ConnectorConfigError("--config must be a JSON object")
    data = dict(raw)
    api_key, routing_key = data.pop("api_key", None), data.pop("routing_key", None)
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ConnectorConfigError("api_key: expected a non-empty string (or env:VAR_NAME)")
    if routing_key is not None:
        check_routing_key(routing_key, "routing_key")
    try:
        return PagerDutyConfig.model_validate(data), api_key, routing_key
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise ConnectorConfigError(f"{where}: {message}") from None


def check_routing_key(value: Any, field: str) -> str:
    """An Events API v2 integration key (32 letters and digits) or env:VAR_NAME; never echoed back."""
    from integrations.pagerduty.api.events import is_routing_key  # its HTTP client: only when a key is checked

    if not isinstance(value, str) or not (is_routing_key(value.strip()) or ENV_REF.match(value.strip())):
        raise ConnectorConfigError(
            f"{field}: not an Events API v2 routing key (the service integration's 32-character Integration Key), or env:VAR_NAME"
        )
    return value.strip()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConnectorConfigError(f"'{name}' is not a connector name (lowercase letters, digits, - and _)")
    return name
