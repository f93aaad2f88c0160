"""Tables of the domain: incidents, their timeline, and the outbox of work to deliver after commit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, Integer, Text, false, text
from sqlmodel import Field, SQLModel

from bot.clock import utcnow
from bot.domain.errors import InvalidInput


class Status(StrEnum):
    OPEN = "open"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Severity(StrEnum):
    SEV1 = "SEV-1"
    SEV2 = "SEV-2"
    SEV3 = "SEV-3"
    SEV4 = "SEV-4"

    @property
    def rank(self) -> int:
        """1 is the most severe."""
        return int(self.value[-1])

    @classmethod
    def parse(cls, value: str) -> Severity:
        """`SEV-2`, `sev2`, `Sev 2` or `2` -> SEV-2; anything else is refused with the expected forms."""
        text = (value or "").strip().upper().replace(" ", "")
        if text.isdigit():
            text = f"SEV-{text}"
        elif text.startswith("SEV") and not text.startswith("SEV-"):
            text = "SEV-" + text[3:]
        try:
            return cls(text)
        except ValueError:
            raise InvalidInput(
                f"'{value}' is not a severity (expected {', '.join(SEVERITIES[:-1])} or {SEVERITIES[-1]})"
            ) from None


SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)


class Origin(StrEnum):
    SLACK = "slack"
    CLI = "cli"
    PAGERDUTY = "pagerduty"
    SCHEDULER = "scheduler"
    ALERT = "alert"  # monitoring, through an alert source (bot/domain/alerts.py)


class Incident(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = {"sqlite_autoincrement": True}  # numbers are never reused

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    severity: str = Field(index=True)
    status: str = Field(default=Status.OPEN, index=True)
    services: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text))
    fields: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    drill: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))  # a game day's
    resolution: str | None = Field(default=None, sa_column=Column(Text))
    declared_by: str
    declared_origin: str
    declared_at: datetime = Field(default_factory=utcnow, index=True)
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    owner_id: int | None = Field(default=None, index=True)  # a person.id (bot/domain/people.py)
    owner_changed_at: datetime | None = None
    reminders_snoozed_until: datetime | None = None
    status_changed_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def number(self) -> int:
        """The id of a stored incident: never None once it has been flushed."""
        if self.id is None:
            raise RuntimeError("the incident has not been stored yet")
        return self.id


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_event"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: str  # declared, status, note, severity, assignment, notice, link, paged, runbook, drill, ...
    origin: str
    actor: str  # "<origin>:<id>", e.g. slack:U123, cli:alice, pagerduty:PABC123
    actor_name: str | None = None
    at: datetime = Field(default_factory=utcnow)
    text: str | None = Field(default=None, sa_column=Column(Text))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


_WAITING = text("status IN ('pending', 'running')")
_HAS_INCIDENT = text("incident_id IS NOT NULL")


class OutboxJob(SQLModel, table=True):
    """Durable work for after the commit. `available_at` is the next try (pending) or the lease end (running);
    `claimed_by` is the worker process that claimed it last (a running job is due again once that process
    is dead, whatever its lease says)."""

    __tablename__ = "outbox_job"
    __table_args__ = (
        Index("ix_outbox_claim", "status", "available_at", "id"),  # a claim walks one status, longest due first
        # only undelivered rows: whether an earlier job of the key still waits is one probe
        Index("ix_outbox_waiting", "ordering_key", "id", sqlite_where=_WAITING, postgresql_where=_WAITING),
        # rows of no incident (inbound webhooks, alerts) are left out: no query looks them up by incident
        Index("ix_outbox_job_incident_id", "incident_id", sqlite_where=_HAS_INCIDENT, postgresql_where=_HAS_INCIDENT),
    )

    id: int | None = Field(default=None, primary_key=True)
    destination: str  # "slack", "pagerduty:<connector>"
    kind: str
    incident_id: int | None = None
    ordering_key: str
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=JobStatus.PENDING)
    attempts: int = 0  # claims, each a try (a wait for a paced turn is handed back uncounted)
    # of those, tries that ended in a transient refusal (429, a look-up Slack could not answer yet): they
    # spend the policy's rate-limited budget, not its ordinary one (bot.workers.Dispatcher)
    rate_limited_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    available_at: datetime = Field(default_factory=utcnow)
    claim_token: str | None = None
    claimed_by: int | None = None  # worker_process.id
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class WorkerProcess(SQLModel, table=True):
    """One `im serve` process that claims outbox jobs, from its start to its stop. It is alive while it
    beats (`heartbeat_at`) and `stopped_at` is unset; a successor on the same host sets `stopped_at` on
    the row of a predecessor whose pid is gone, so the jobs that one held are due at once."""

    __tablename__ = "worker_process"

    id: int | None = Field(default=None, primary_key=True)
    host: str
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None


class InboundKey(SQLModel, table=True):
    """Keys of inbound requests already applied (a Slack event_id, a PagerDuty event id): a retry of the
    same request finds its key here, in the same transaction as the change, and has no second effect."""

    __tablename__ = "inbound_key"

    key: str = Field(primary_key=True)
    at: datetime = Field(default_factory=utcnow)


class OutboxStep(SQLModel, table=True):
    """Steps of a multi-call job already done (a reply posted, a note added), recorded as soon as the
    remote side answered: a retried job skips them instead of doing them twice."""

    __tablename__ = "outbox_step"

    key: str = Field(primary_key=True)
    value: str | None = None
    at: datetime = Field(default_factory=utcnow)
