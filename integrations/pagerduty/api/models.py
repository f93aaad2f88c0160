"""Pydantic models for what the PagerDuty REST v2 client returns.

Tolerant by design: unknown fields are ignored and most fields are optional, because
PagerDuty adds fields over time and omits or nulls others depending on the account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
URGENCIES = ("high", "low")


class PDModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Reference(PDModel):
    """``{id, type, summary, self, html_url}`` as PagerDuty embeds other objects."""

    id: str
    type: str | None = None
    summary: str | None = None
    self_url: str | None = Field(default=None, alias="self")
    html_url: str | None = None


class Assignment(PDModel):
    at: datetime | None = None
    assignee: Reference


class ResolveReason(PDModel):
    type: str | None = None
    incident: Reference | None = None


class Incident(PDModel):
    id: str
    incident_number: int
    title: str
    status: str
    urgency: str | None = None
    html_url: str | None = None
    summary: str | None = None
    incident_key: str | None = None
    service: Reference
    assignments: list[Assignment] = Field(default_factory=list)
    escalation_policy: Reference | None = None
    priority: Reference | None = None
    created_at: datetime
    updated_at: datetime | None = None
    last_status_change_at: datetime | None = None
    last_status_change_by: Reference | None = None
    resolved_at: datetime | None = None
    resolve_reason: ResolveReason | None = None
    # None: not listed (only accounts with the responder-requests feature get them)
    responder_requests: list[ResponderRequest] | None = None

    @property
    def assignee_ids(self) -> list[str]:
        return [a.assignee.id for a in self.assignments]

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"


class LogEntry(PDModel):
    """One entry of an incident's log (``GET /log_entries``): a change and who made it.

    ``incident`` is the full incident when the list was asked with ``include[]=incidents`` (its
    state when the page was served, not when the entry was written), else a reference.
    """

    id: str
    type: str  # trigger_log_entry, acknowledge_log_entry, resolve_log_entry, annotate_log_entry, ...
    created_at: datetime
    summary: str | None = None
    agent: Reference | None = None
    channel: dict[str, Any] | None = None
    user: Reference | None = None  # notify_log_entry: who was notified
    assignees: list[Reference] = Field(default_factory=list)  # assign and escalate entries
    service: Reference | None = None
    incident: Incident | Reference | None = Field(default=None, union_mode="left_to_right")


class Service(PDModel):
    id: str
    name: str | None = None
    summary: str | None = None
    description: str | None = None
    status: str | None = None
    html_url: str | None = None
    escalation_policy: Reference | None = None


class User(PDModel):
    id: str
    name: str | None = None
    email: str | None = None
    summary: str | None = None
    html_url: str | None = None


class EscalationRule(PDModel):
    id: str | None = None
    escalation_delay_in_minutes: int | None = None
    targets: list[Reference] = Field(default_factory=list)


class EscalationPolicy(PDModel):
    id: str
    name: str | None = None
    summary: str | None = None
    html_url: str | None = None
    num_loops: int | None = None
    escalation_rules: list[EscalationRule] = Field(default_factory=list)
    services: list[Reference] = Field(default_factory=list)


class OnCall(PDModel):
    user: Reference
    escalation_level: int
    escalation_policy: Reference
    schedule: Reference | None = None
    start: datetime | None = None  # None: permanent on-call
    end: datetime | None = None


class ResponderRequest(PDModel):
    id: str | None = None
    requester: Reference | None = None
    message: str | None = None
    requested_at: datetime | None = None


class Note(PDModel):
    id: str
    content: str
    created_at: datetime | None = None
    user: Reference | None = None


class WebhookSubscription(PDModel):
    """Flattened from ``{id, delivery_method: {url, secret}, events, filter, ...}``.

    ``secret`` is only present in the answer to the create call; it is a SecretStr so it
    never shows in a repr or a log line.
    """

    id: str
    url: str
    secret: SecretStr | None = None
    events: list[str] = Field(default_factory=list)
    filter_type: str | None = None
    filter_id: str | None = None
    description: str | None = None
    active: bool = True

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "delivery_method" not in raw:
            return raw
        delivery = raw.get("delivery_method") or {}
        flt = raw.get("filter") or {}
        return {
            "id": raw.get("id"),
            "url": delivery.get("url"),
            "secret": delivery.get("secret"),
            "events": raw.get("events") or [],
            "filter_type": flt.get("type"),
            "filter_id": flt.get("id"),
            "description": raw.get("description"),
            "active": raw.get("active", True),
        }
