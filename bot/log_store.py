"""What `im logs` reads: log records of every `im serve` replica, in one bounded table.

Why a table and not rotating JSON-lines files: replicas share the database (compose runs two), so one
query shows what all of them did, newest last, with no log collector in between; files would be per
container and gone with it. The table stays small: `prune` keeps at most IM_LOG_MAX_RECORDS rows and
none older than IM_LOG_RETENTION, both by index. Rows are written off the hot path, in batches, by
`bot/log_shipper.py`; what reaches a row has passed the same redaction as every log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Text, cast, delete, func, or_
from sqlmodel import Field, Session, SQLModel, col, select

from bot.clock import utcnow
from bot.store import rows_changed

COMPONENTS = ("webhook", "slack", "pagerduty", "outbox", "scheduler", "http")
# logger name prefix -> component; the longest matching prefix wins
_BY_LOGGER = {
    "integrations.pagerduty.inbound": "webhook",
    "bot.connectors.webhook_guard": "webhook",
    "integrations.alerts": "webhook",  # alert intake from monitoring is a webhook too
    "integrations.pagerduty": "pagerduty",
    "bot.slack": "slack",
    "slack_bolt": "slack",
    "slack_sdk": "slack",
    "bot.workers": "outbox",
    "bot.domain.outbox": "outbox",
    "bot.scheduler": "scheduler",
    "bot.sla": "scheduler",
    "bot.reminders": "scheduler",
    "apscheduler": "scheduler",
    "im": "http",
    "bot.server": "http",
    "bot.metrics": "http",
    "bot.probes": "http",
    "uvicorn": "http",
}
OVERLAP = 500  # ids `--follow` reads again each poll (see `after`)
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class LogEntry(SQLModel, table=True):
    __tablename__ = "log_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    level: int
    component: str
    logger: str
    message: str = Field(sa_column=Column(Text, nullable=False))
    incident_id: int | None = Field(default=None, index=True)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    replica: str  # host:pid of the `im serve` that logged it


def component_of(logger: str, fields: Mapping[str, Any]) -> str:
    """The part of im a record is about: by its logger, else by what it was doing (a job's destination,
    a request's path). Lines about a webhook request count as `webhook` whoever logged them."""
    path = str(fields.get("path") or "")
    if path.startswith("/connectors/") and path.endswith("/webhook"):
        return "webhook"
    best = ""
    for prefix in _BY_LOGGER:
        if (logger == prefix or logger.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    if best:
        return _BY_LOGGER[best]
    destination = str(fields.get("destination") or "")
    if destination:
        return "webhook" if destination.startswith("pagerduty-in:") else destination.partition(":")[0]
    return "http" if path else "other"


@dataclass(frozen=True)
class LogQuery:
    components: tuple[str, ...] = ()
    text: str | None = None  # in the message, the logger's name or a field (connector, path, ...), any case
    incident_id: int | None = None
    min_level: int = 0
    since: datetime | None = None
    limit: int = 100


def _filtered(query: Any, q: LogQuery) -> Any:
    if q.components:
        query = query.where(col(LogEntry.component).in_(q.components))
    if q.incident_id is not None:
        query = query.where(col(LogEntry.incident_id) == q.incident_id)
    if q.min_level:
        query = query.where(col(LogEntry.level) >= q.min_level)
    if q.since is not None:
        query = query.where(col(LogEntry.at) >= q.since)
    if q.text:
        text = q.text
        query = query.where(
            or_(
                col(LogEntry.message).icontains(text, autoescape=True),
                col(LogEntry.logger).icontains(text, autoescape=True),
                cast(col(LogEntry.fields), Text).icontains(text, autoescape=True),
            )
        )
    return query


def latest(session: Session, q: LogQuery) -> list[LogEntry]:
    """The newest `limit` records that match, oldest first (each replica's clock orders its own)."""
    rows = list(session.exec(_filtered(select(LogEntry), q).order_by(col(LogEntry.id).desc()).limit(q.limit)))
    return sorted(rows, key=lambda r: (r.at, r.id or 0))


def top_id(session: Session) -> int:
    return session.exec(select(func.max(LogEntry.id))).one() or 0


def after(session: Session, q: LogQuery, cursor: int, seen: set[int]) -> list[LogEntry]:
    """Records written since `cursor` (the highest id read), for `--follow`. On PostgreSQL two replicas'
    inserts may commit out of id order, so the last OVERLAP ids are read again and those in `seen` skipped."""
    query = _filtered(select(LogEntry), q).where(col(LogEntry.id) > cursor - OVERLAP).order_by(col(LogEntry.id))
    return [row for row in session.exec(query) if row.id not in seen]


def prune(session: Session, *, keep: int, max_age: timedelta, now: datetime | None = None) -> int:
    """Delete records older than `max_age` and all but the newest `keep`; returns how many went."""
    gone = rows_changed(session.execute(delete(LogEntry).where(col(LogEntry.at) < (now or utcnow()) - max_age)))
    gone += rows_changed(session.execute(delete(LogEntry).where(col(LogEntry.id) <= top_id(session) - keep)))
    return gone
