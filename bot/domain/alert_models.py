"""Tables of alert intake: sources, what they sent, the alerts, and which incident each service's
alerts go to. Uniqueness lives here, so retries and replicas cannot make a second alert or incident."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.clock import utcnow


class AlertSource(SQLModel, table=True):
    __tablename__ = "alert_source"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    kind: str  # events-v2, alertmanager
    service: str | None = None
    group_window_seconds: int = 300
    auto_resolve: bool = True
    secret: str = Field(sa_column=Column(Text, nullable=False))  # routing key or bearer token, sealed
    created_at: datetime = Field(default_factory=utcnow)


class AlertIntake(SQLModel, table=True):
    """An alert event as received (one per alert of an Alertmanager body), applied by a worker."""

    __tablename__ = "alert_intake"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    dedup_key: str
    action: str
    service: str
    received_at: datetime = Field(default_factory=utcnow)
    event: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # AlertEvent.to_json
    outcome: str | None = Field(default=None, sa_column=Column(Text))
    processed_at: datetime | None = None


class Alert(SQLModel, table=True):
    """One alert (source, dedup key): the incident it is in, its state and how often it fired."""

    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("source", "dedup_key", name="uq_alert_source_key"), Index("ix_alert_service", "service"))

    id: int | None = Field(default=None, primary_key=True)
    source: str
    dedup_key: str
    incident_id: int = Field(index=True)
    service: str
    severity: str  # the incident severity it maps to
    summary: str = Field(sa_column=Column(Text, nullable=False))
    status: str  # triggered, acknowledged, resolved
    count: int = 1  # triggers received, repeats included
    first_at: datetime = Field(default_factory=utcnow)
    last_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    runbook_url: str | None = Field(default=None, sa_column=Column(Text))


class AlertGroup(SQLModel, table=True):
    """The incident a service's alerts join while it is open and the service alerted within the window.
    One row per service: two first alerts of a service racing each other cannot both declare."""

    __tablename__ = "alert_group"

    service: str = Field(primary_key=True)
    incident_id: int
    last_alert_at: datetime = Field(default_factory=utcnow)


class AlertBurst(SQLModel, table=True):
    """Counts of an incident's alert activity not yet on its timeline; a delayed job writes them as one step."""

    __tablename__ = "alert_burst"

    incident_id: int = Field(primary_key=True)
    joined: int = 0
    repeated: int = 0
    resolved: int = 0
    started_at: datetime = Field(default_factory=utcnow)
