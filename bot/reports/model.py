"""What a report says, as data: every renderer (text, JSON, CSV, Markdown, HTML, PDF) reads only this.

Durations are seconds (floats, rounded to the millisecond); a figure without a sample is None with the
reason beside it, never 0."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bot.domain.views import ExternalLink

DEFINITIONS: tuple[str, ...] = (
    "MTTA (time to acknowledge): from declared to the first acknowledgement.",
    "MTTR (time to resolve): from declared to the last resolve; only incidents resolved or closed when the report was made.",
    "Reopened incidents count once: MTTA from their first acknowledgement, MTTR to their last resolve; "
    "while reopened and not resolved again they have no MTTR sample and count as open.",
    "SLA: met when done within the target (exactly the target is met), breached when done later or still not done "
    "past it at the end of the range, open when not done and still within it.",
    "Incidents are counted in the range when they were declared in it (start included, end excluded).",
)


class Stat(BaseModel):
    samples: int
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    reason: str | None = None  # why there is no figure ("no incident acknowledged")


class GroupFigures(BaseModel):
    key: str
    incidents: int
    mtta: Stat
    mttr: Stat


class Count(BaseModel):
    key: str
    count: int


class ServiceMinutes(BaseModel):
    service: str
    minutes: float


class SlaRow(BaseModel):
    severity: str
    kind: str  # "ack" or "resolve"
    target_seconds: int | None
    met: int = 0
    breached: int = 0
    open: int = 0

    @property
    def compliance(self) -> float | None:
        """Met over decided (met + breached); None when nothing is decided yet."""
        decided = self.met + self.breached
        return None if decided == 0 else self.met / decided


class TrendPoint(BaseModel):
    start: datetime
    label: str
    incidents: int
    mtta_mean: float | None = None
    mttr_mean: float | None = None


class IncidentRow(BaseModel):
    ref: str
    title: str
    severity: str
    status: str
    services: list[str]
    declared_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None  # None while open, even after an earlier resolve (reopened)
    reopened: bool = False
    tta_seconds: float | None = None
    ttr_seconds: float | None = None
    ack_sla: str | None = None  # met, breached, open; None without a target
    resolve_sla: str | None = None
    links: list[ExternalLink] = Field(default_factory=list)


class ExternalIncident(BaseModel):
    """One incident in another system linked to ours, with its response figures from that system."""

    system: str
    label: str
    url: str | None = None
    first_notification_at: datetime | None = None
    paged: list[str] = Field(default_factory=list)  # "Alice (sms)"
    acknowledged_by: list[str] = Field(default_factory=list)
    acknowledged_at: datetime | None = None
    escalations: int = 0
    tta_seconds: float | None = None


class PersonLoad(BaseModel):
    person: str
    pages: int
    acknowledgements: int
    mean_tta_seconds: float | None = None


class ExternalSection(BaseModel):
    """What one external system adds: facts per incident (by ref), load per person, and notes (an outage)."""

    system: str
    incidents: dict[str, list[ExternalIncident]] = Field(default_factory=dict)
    load: list[PersonLoad] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Filters(BaseModel):
    services: list[str] = Field(default_factory=list)
    severities: list[str] = Field(default_factory=list)


class Report(BaseModel):
    title: str = "Incident report"
    start: datetime
    end: datetime
    tz: str
    filters: Filters
    generated_at: datetime
    as_of: datetime  # the SLA clock of incidents still open stops here: min(now, end)
    definitions: list[str] = Field(default_factory=lambda: list(DEFINITIONS))
    total: int
    reopened: int = 0
    by_severity: list[Count] = Field(default_factory=list)
    by_service: list[Count] = Field(default_factory=list)
    by_status: list[Count] = Field(default_factory=list)
    minutes_by_service: list[ServiceMinutes] = Field(default_factory=list)
    overall: GroupFigures
    figures_by_severity: list[GroupFigures] = Field(default_factory=list)
    figures_by_service: list[GroupFigures] = Field(default_factory=list)
    sla: list[SlaRow] = Field(default_factory=list)
    trend_unit: str = "week"
    trend: list[TrendPoint] = Field(default_factory=list)
    incidents: list[IncidentRow] = Field(default_factory=list)
    incidents_listed_limit: int | None = None  # the list was cut to this many (the figures were not)
    external: list[ExternalSection] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.total == 0

    def range_text(self) -> str:
        return f"{_local(self.start)} to {_local(self.end)} ({self.tz}; start included, end excluded)"


def _local(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def duration_text(seconds: float | None) -> str:
    """4m 30s, 2h 05m, 3d 04h; 'n/a' for no figure."""
    if seconds is None:
        return "n/a"
    total = round(seconds)
    if total < 60:
        return f"{seconds:.0f}s" if seconds == total else f"{seconds:.1f}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"
