"""PagerDuty's Events API v2 body (`POST /v2/enqueue`), as any tool that pages PagerDuty sends it, and
the answers PagerDuty gives: 202 `{status, message, dedup_key}`, 400 `{status, message, errors}`.

Checked as PagerDuty checks it: `routing_key` and `event_action` always; a trigger needs `payload`
with `summary` (at most 1024 characters), `source` and `severity` (critical, error, warning, info);
acknowledge and resolve need `dedup_key` (at most 255 characters). A trigger without a dedup key
gets one, returned in the answer.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain.alerts import MAX_DEDUP_KEY, MAX_SUMMARY, AlertAction, AlertEvent, new_dedup_key

INVALID = "invalid event"
INVALID_MESSAGE = "Event object is invalid"


class Invalid(Exception):
    """A body PagerDuty would refuse with 400; `answer` is PagerDuty's error shape."""

    def __init__(self, errors: list[str], *, status: str = INVALID, message: str = INVALID_MESSAGE) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.status = status
        self.message = message

    @property
    def answer(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "errors": self.errors}


def unparseable() -> Invalid:
    """PagerDuty's own words for a body that is not a JSON object (the spec's example error)."""
    return Invalid(["JSON parse error"], status="Unrecognized object", message="Event object format is unrecognized")


def accepted(dedup_key: str) -> dict[str, str]:
    return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


class Link(BaseModel):
    href: str
    text: str | None = None


class Image(BaseModel):
    src: str
    href: str | None = None
    alt: str | None = None


class Payload(BaseModel):
    summary: str | None = None
    source: str | None = None
    severity: Literal["critical", "error", "warning", "info"] | None = None
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    custom_details: Any = None

    model_config = ConfigDict(populate_by_name=True)


class Event(BaseModel):
    routing_key: str | None = None
    event_action: str | None = None
    dedup_key: str | None = None
    payload: Payload | None = None
    client: str | None = None
    client_url: str | None = None
    links: list[Link] = []
    images: list[Image] = []


def routing_key_of(body: bytes) -> tuple[dict[str, Any], str]:
    """The parsed object and its routing key, before anything else of it is looked at."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise unparseable() from None
    if not isinstance(data, dict):
        raise unparseable()
    key = data.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        raise Invalid(["'routing_key' is missing or blank"])
    return data, key


def parse(data: dict[str, Any]) -> AlertEvent:
    """An authenticated body as an alert event; Invalid (PagerDuty's 400) with every reason otherwise."""
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        raise Invalid([_reason(error) for error in exc.errors()]) from None
    errors: list[str] = []
    action = event.event_action
    if action not in {a.value for a in AlertAction}:
        errors.append("'event_action' is missing or invalid (expected trigger, acknowledge or resolve)")
    if event.dedup_key is not None and len(event.dedup_key) > MAX_DEDUP_KEY:
        errors.append(f"'dedup_key' is longer than {MAX_DEDUP_KEY} characters")
    if action in ("acknowledge", "resolve") and not (event.dedup_key or "").strip():
        errors.append(f"'dedup_key' is required to {action}")
    payload = event.payload
    if action == "trigger":
        if payload is None:
            errors.append("'payload' is missing")
        else:
            if not (payload.summary or "").strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(payload.summary or "") > MAX_SUMMARY:
                errors.append(f"'payload.summary' is longer than {MAX_SUMMARY} characters")
            if not (payload.source or "").strip():
                errors.append("'payload.source' is missing or blank")
            if payload.severity is None:
                errors.append("'payload.severity' is missing (critical, error, warning or info)")
    if errors:
        raise Invalid(errors)
    return _event(event)


def _event(event: Event) -> AlertEvent:
    payload = event.payload or Payload()
    details: dict[str, Any] = {}
    for key, value in (("source", payload.source), ("group", payload.group), ("class", payload.class_), ("client", event.client)):
        if value:
            details[key] = value
    if payload.custom_details not in (None, {}, ""):
        details["custom_details"] = payload.custom_details
    links = tuple((link.href, link.text or "") for link in event.links)
    if event.client_url:
        links += ((event.client_url, event.client or "monitoring"),)
    return AlertEvent(
        action=AlertAction(event.event_action or "trigger"),
        dedup_key=(event.dedup_key or "").strip() or new_dedup_key(),
        summary=payload.summary,
        severity=payload.severity,
        component=payload.component,
        occurred_at=payload.timestamp,
        links=links,
        details=details,
    )


def _reason(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "body"
    return f"'{where}' is invalid: {error.get('msg', 'invalid value')}"
