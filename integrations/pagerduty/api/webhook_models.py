"""Webhooks v3 payload models: ``{"event": {id, event_type, resource_type, occurred_at, agent, client, data}}``.

``data`` is typed by its own ``type`` field (falling back on the event type when absent):
``incident`` -> :class:`IncidentData`, ``incident_note`` (``incident.annotated``) ->
:class:`IncidentNoteData`; anything else (service.*, incident.responder.*, pagey.ping, event
types PagerDuty adds later) stays a plain dict so unknown deliveries are still accepted.

Whatever a delivery holds, :func:`parse_event` either returns an event every later step can store and
apply (UTF-8 text without lone surrogates or NUL, ids short enough for a unique index, times that
convert to UTC, an incident number a 32-bit column holds) or raises :class:`InvalidWebhookPayload`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SkipValidation, StringConstraints, ValidationError

from integrations.pagerduty.api.models import Reference

MAX_ID = 255  # ids are stored under unique indexes; PagerDuty's are short (P-codes, UUIDs)
MAX_INCIDENT_NUMBER = 2**31 - 1  # pd_incident_number is an INTEGER column: signed 32-bit on PostgreSQL
# A time outside these years is not a real event's; far-future ones would also win every "newer than" test.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _moment(value: datetime) -> datetime:
    """Aware UTC (a naive time is taken as UTC), refused when it does not convert or is out of range."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError(f"is outside the years {EARLIEST.year}-{LATEST.year - 1}")
    return utc


Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
Moment = Annotated[datetime, AfterValidator(_moment)]


class InvalidWebhookPayload(ValueError):
    """The delivery is not a Webhooks v3 event we can read; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class IncidentData(_Model):
    id: Id
    type: str | None = None
    number: int | None = Field(default=None, ge=0, le=MAX_INCIDENT_NUMBER)
    title: str | None = None
    status: str | None = None
    urgency: str | None = None
    html_url: str | None = None
    self_url: str | None = Field(default=None, alias="self")
    incident_key: str | None = None
    created_at: Moment | None = None
    reopened_at: Moment | None = None
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
    id: Id
    type: str | None = None
    content: str
    trimmed: bool = False
    incident: Reference


class WebhookEvent(_Model):
    id: Id
    event_type: str
    resource_type: str | None = None
    occurred_at: Moment
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
        if isinstance(incident, dict) and isinstance(incident.get("id"), str) and len(incident["id"]) <= MAX_ID:
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


# Strict UTF-8 text holds no lone surrogate and strict JSON no raw NUL: in a parsed body both can only
# come from a \\u escape, so a body without one skips the walk over every string (a sixth of ingest's CPU).
_ESCAPE_OF_UNSTORABLE = re.compile(r"\\u(?:0000|d[89a-f])", re.IGNORECASE)


def _unstorable(doc: Any) -> str | None:
    """What no database column takes: a lone surrogate (not encodable as UTF-8) or NUL (PostgreSQL text)."""
    stack = [doc]
    while stack:  # a loop, not recursion: depth is bounded by json.loads, but this stays cheap anyway
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text contains a lone surrogate (not valid Unicode)"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_event(raw: bytes) -> WebhookEvent:
    """Parse one delivery body; raise :class:`InvalidWebhookPayload` with a readable reason, whatever the body."""
    try:
        return _parse(raw)
    except InvalidWebhookPayload:
        raise
    except RecursionError:
        raise InvalidWebhookPayload("body is nested too deeply") from None
    except (OverflowError, UnicodeError, ValueError) as exc:  # a number json or a datetime cannot hold, ...
        raise InvalidWebhookPayload(f"body cannot be read ({exc.__class__.__name__})") from None


def _parse(raw: bytes) -> WebhookEvent:
    try:
        text = raw.decode("utf-8")  # strictly: json.loads would also guess UTF-16/32, which is not what we store
    except UnicodeDecodeError:
        raise InvalidWebhookPayload("body is not JSON (not UTF-8)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidWebhookPayload(f"body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise InvalidWebhookPayload("body is not a JSON object")
    problem = _unstorable(doc) if _ESCAPE_OF_UNSTORABLE.search(text) else None
    if problem:
        raise InvalidWebhookPayload(problem)
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
    if len(event["event_type"]) > MAX_ID:  # checked first: the reasons below quote it
        raise InvalidWebhookPayload("event.event_type is too long")
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
