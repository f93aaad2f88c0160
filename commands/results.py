"""What a command returns. Front ends only render these (text, JSON, Block Kit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from bot.domain.models import Incident, TimelineEvent


class ExternalLink(BaseModel):
    system: str  # "pagerduty"
    label: str  # "PD #1234 (db)"
    url: str | None = None
    status: str | None = None


class IncidentView(BaseModel):
    id: str
    title: str
    severity: str
    status: str
    services: list[str]
    description: str | None = None
    resolution: str | None = None
    declared_by: str
    declared_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    links: list[ExternalLink] = Field(default_factory=list)
    delivery_problems: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, incident: Incident, *, declared_by: str | None = None, links: list[ExternalLink] | None = None,
           delivery_problems: list[str] | None = None) -> "IncidentView":
        return cls(
            id=incident.ref,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            services=list(incident.services),
            description=incident.description,
            resolution=incident.resolution,
            declared_by=declared_by or incident.declared_by,
            declared_at=incident.declared_at,
            acknowledged_at=incident.acknowledged_at,
            mitigated_at=incident.mitigated_at,
            resolved_at=incident.resolved_at,
            closed_at=incident.closed_at,
            links=links or [],
            delivery_problems=delivery_problems or [],
        )


class EventView(BaseModel):
    at: datetime
    kind: str
    origin: str
    actor: str
    text: str | None

    @classmethod
    def of(cls, event: TimelineEvent, actor: str | None = None) -> "EventView":
        return cls(at=event.at, kind=event.kind, origin=event.origin, actor=actor or event.actor_name or event.actor, text=event.text)


class Done(BaseModel):
    """A change was made (or was already so): a sentence, and the incident as it now is."""

    kind: str = "done"
    message: str
    incident: IncidentView | None = None
    changed: bool = True


class IncidentDetail(BaseModel):
    kind: str = "incident"
    incident: IncidentView


class IncidentList(BaseModel):
    kind: str = "incidents"
    title: str
    incidents: list[IncidentView]
    delivery_problems: list[str] = Field(default_factory=list)


class Timeline(BaseModel):
    kind: str = "timeline"
    incident: IncidentView
    events: list[EventView]


class Table(BaseModel):
    kind: str = "table"
    title: str | None = None
    columns: list[str]
    rows: list[list[str]]


class Lines(BaseModel):
    """Plain lines, e.g. a connector check list or a status page."""

    kind: str = "lines"
    lines: list[str]
    ok: bool = True
    data: dict[str, Any] | None = None


class HelpText(BaseModel):
    kind: str = "help"
    text: str


class OpenDeclareModal(BaseModel):
    """Slack only: `/im declare` without arguments asks with a form."""

    kind: str = "open_declare_modal"


Result = Done | IncidentDetail | IncidentList | Timeline | Table | Lines | HelpText | OpenDeclareModal
