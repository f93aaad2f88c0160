"""PagerDuty's tables: links to remote incidents, notes we sent, webhook deliveries, and the figures behind
`connector status` and `im metrics connector`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.clock import utcnow


class PagerDutyLink(SQLModel, table=True):
    """One PagerDuty incident linked to one im incident (an incident on several services has several)."""

    __tablename__ = "pagerduty_link"
    __table_args__ = (
        UniqueConstraint("connector", "pd_incident_id", name="uq_pd_link_remote"),
        UniqueConstraint("connector", "incident_id", "service", name="uq_pd_link_local"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connector: str = Field(index=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    service: str  # the im service this PagerDuty incident stands for
    pd_service_id: str
    pd_incident_id: str | None = None  # None until the create call answered
    pd_incident_number: int | None = None
    incident_key: str | None = None
    html_url: str | None = None
    status: str | None = None  # last known PagerDuty status
    status_at: datetime | None = None  # when PagerDuty reported `status`: an older report never overwrites it
    urgency: str | None = None
    assignees: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class PagerDutyNoteSent(SQLModel, table=True):
    """Notes we posted, so the `incident.annotated` webhook that echoes them changes nothing."""

    __tablename__ = "pagerduty_note_sent"

    note_id: str = Field(primary_key=True)
    connector: str
    incident_id: int
    at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """Every signed delivery, stored before it is answered; the event id is unique, so a redelivery has no
    second effect."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("connector", "event_id", name="uq_webhook_event"),
        Index("ix_webhook_delivery_received", "connector", "received_at"),  # a connector's, since a time
    )

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    event_id: str
    event_type: str
    occurred_at: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)
    body: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(Text))  # what processing did
    processed_at: datetime | None = None


class ConnectorCall(SQLModel, table=True):
    """One outbound API call, for metrics (calls in 24 h, average time, rate-limit use, error rate)."""

    __tablename__ = "connector_call"
    __table_args__ = (Index("ix_connector_call_at", "connector", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    at: datetime = Field(default_factory=utcnow)
    method: str
    path: str
    status: int
    duration_ms: float
    ratelimit_limit: int | None = None
    ratelimit_remaining: int | None = None


class SyncRun(SQLModel, table=True):
    """One reconciliation or outbound job, for `connector status` and `im metrics`."""

    __tablename__ = "connector_sync"
    __table_args__ = (Index("ix_connector_sync_at", "connector", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    at: datetime = Field(default_factory=utcnow)
    kind: str  # create, update, note, reconcile, inbound
    incident_id: int | None = None
    ok: bool = True
    duration_ms: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text))
