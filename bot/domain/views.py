"""Read models: an incident and its timeline as every front end shows them (Slack, terminal, JSON)."""

from __future__ import annotations

from datetime import datetime

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
    def of(
        cls,
        incident: Incident,
        *,
        declared_by: str | None = None,
        links: list[ExternalLink] | None = None,
        delivery_problems: list[str] | None = None,
    ) -> IncidentView:
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
    def of(cls, event: TimelineEvent, actor: str | None = None) -> EventView:
        return cls(
            at=event.at, kind=event.kind, origin=event.origin, actor=actor or event.actor_name or event.actor, text=event.text
        )
