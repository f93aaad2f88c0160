"""Read models: an incident and its timeline as every front end shows them (Slack, terminal, JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from bot.clock import seconds_between
from bot.domain.models import Incident, TimelineEvent
from bot.domain.people import Person, PersonView


class ExternalLink(BaseModel):
    system: str  # "pagerduty"
    label: str  # "PD #1234 (db)"
    url: str | None = None
    status: str | None = None


class SlaClockView(BaseModel):
    """One SLA clock of an incident (see bot/sla.py): how long it may take to be acknowledged or resolved."""

    kind: Literal["ack", "resolve"]
    severity: str
    target_seconds: int
    started_at: datetime  # declared, or the last reopen
    warning_at: datetime | None  # None: no warning before the breach (IM_SLA_WARN_FRACTION=1)
    due_at: datetime
    stopped_at: datetime | None  # acknowledged / resolved since the start
    state: Literal["running", "warned", "breached", "met"]

    @property
    def elapsed_seconds(self) -> int | None:
        """How long it took, once stopped."""
        return seconds_between(self.started_at, self.stopped_at)


class IncidentView(BaseModel):
    id: str
    title: str
    severity: str
    status: str
    services: list[str]
    description: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)  # custom fields (environment, customer_impact, ...)
    drill: bool = False  # a game day's synthetic incident (`im gameday`)
    resolution: str | None = None
    declared_by: str
    declared_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    owner: PersonView | None = None
    roles: dict[str, PersonView] = Field(default_factory=dict)
    # from the stored timestamps: declared -> first acknowledged, declared -> (last) resolved
    time_to_acknowledge_seconds: int | None = None
    time_to_resolve_seconds: int | None = None
    sla: list[SlaClockView] = Field(default_factory=list)
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
        owner: Person | None = None,
        roles: dict[str, Person] | None = None,
        sla: list[SlaClockView] | None = None,
    ) -> IncidentView:
        return cls(
            id=incident.ref,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            services=list(incident.services),
            description=incident.description,
            fields=dict(incident.fields or {}),
            drill=bool(incident.drill),
            resolution=incident.resolution,
            declared_by=declared_by or incident.declared_by,
            declared_at=incident.declared_at,
            acknowledged_at=incident.acknowledged_at,
            mitigated_at=incident.mitigated_at,
            resolved_at=incident.resolved_at,
            closed_at=incident.closed_at,
            owner=PersonView.of(owner) if owner else None,
            roles={role: PersonView.of(person) for role, person in (roles or {}).items()},
            time_to_acknowledge_seconds=seconds_between(incident.declared_at, incident.acknowledged_at),
            time_to_resolve_seconds=seconds_between(incident.declared_at, incident.resolved_at),
            sla=sla or [],
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
