"""Webhooks v3 payload models: ``{"event": {id, event_type, resource_type, occurred_at, agent, client, data}}``.

``data`` is typed by its own ``type`` field (falling back on the event type when absent):
``incident`` -> :class:`IncidentData`, ``incident_note`` (``incident.annotated``) ->
:class:`IncidentNoteData`; anything else (service.*, incident.responder.*, pagey.ping, event
types PagerDuty adds later) stays a plain dict so unknown deliveries are still accepted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError

from integrations.pagerduty.api.models import Reference


class InvalidWebhookPayload(ValueError):
    """The delivery is not a Webhooks v3 event we can read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class IncidentData(_Model):
    id: str
    type: str | None = None
    number: int | None = None
    title: str | None = None
    status: str | None = None
    urgency: str | None = None
    html_url: str | None = None
    self_url: str | None = Field(default=None, alias="self")
    incident_key: str | None = None
    created_at: datetime | None = None
    reopened_at: datetime | None = None
    service: Reference | None = None
    assignees: list[Reference] = Field(default_factory=list)
    escalation_policy: Reference | None = None
    teams: list[Reference] = Field(default_factory=list)
    priority: Reference | None = None
    resolve_reason: Any = None

    @property
    def assignee_ids(self) -> list[str]:
        return [a.id for a in self.assignees]


class IncidentNoteData(_Model):
    id: str
    type: str | None = None
    content: str
    trimmed: bool = False
    incident: Reference


class WebhookEvent(_Model):
    id: str
    event_type: str
    resource_type: str | None = None
    occurred_at: datetime
    agent: Reference | None = None
    client: dict[str, Any] | None = None
    # Typed by parse_event (see _data_model); SkipValidation keeps the chosen shape as is.
    data: SkipValidation[IncidentData | IncidentNoteData | dict[str, Any]]

    @property
    def incident_id(self) -> str | None:
        """The incident this event is about, whatever the data shape."""
        if isinstance(self.data, IncidentData):
            return self.data.id
        if isinstance(self.data, IncidentNoteData):
            return self.data.incident.id
        incident = self.data.get("incident")
        if isinstance(incident, dict) and isinstance(incident.get("id"), str):
            return incident["id"]
        return None


_REQUIRED = ("id", "event_type", "occurred_at", "data")


def _data_model(event_type: str, data: dict[str, Any]) -> type[_Model] | None:
    data_type = data.get("type")
    if data_type == "incident":
        return IncidentData
    if data_type == "incident_note":
        return IncidentNoteData
    if data_type is None and event_type.startswith("incident."):
        return IncidentNoteData if event_type == "incident.annotated" else IncidentData
    return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"


def parse_event(raw: bytes) -> WebhookEvent:
    """Parse one delivery body; raise :class:`InvalidWebhookPayload` with a readable reason."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidWebhookPayload(f"body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise InvalidWebhookPayload("body is not a JSON object")
    event = doc.get("event")
    if event is None:
        raise InvalidWebhookPayload("no 'event' object in the body")
    if not isinstance(event, dict):
        raise InvalidWebhookPayload("'event' is not an object")
    missing = [k for k in _REQUIRED if event.get(k) in (None, "")]
    if missing:
        raise InvalidWebhookPayload(f"event is missing {', '.join(missing)}")
    if not isinstance(event["event_type"], str):
        raise InvalidWebhookPayload("event.event_type is not a string")
    data = event["data"]
    if not isinstance(data, dict):
        raise InvalidWebhookPayload("event.data is not an object")

    model = _data_model(event["event_type"], data)
    try:
        parsed_data: Any = model.model_validate(data) if model else dict(data)
    except ValidationError as exc:
        raise InvalidWebhookPayload(
            f"{event['event_type']} data is not a valid {model.__name__}: {_first_error(exc)}"  # type: ignore[union-attr]
        ) from None
    try:
        return WebhookEvent.model_validate({**event, "data": parsed_data})
    except ValidationError as exc:
        raise InvalidWebhookPayload(f"event is invalid: event.{_first_error(exc)}") from None
