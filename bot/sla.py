"""SLA clocks: how long an incident may take to be acknowledged and to be resolved, per severity.

A clock is computed from stored timestamps whenever it is needed (`clocks`, a pure function), never
held in an in-process timer: it starts when the incident is declared or reopened, stops when it is
acknowledged / resolved since that start, and takes its target from the current severity (a severity
change re-targets it). `check_slas` runs on every scheduler tick and records a warning (at
`warn_fraction` of the target, addressed to the owner) and a breach notice under once keys naming
the incident, the clock's start and its target, so each is given exactly once whichever replica
ticks, across restarts, and again only for a new start (reopen) or a new target (severity change).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, false, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.clock import as_utc, format_duration
from bot.domain.incidents import Actor, IncidentService
from bot.domain.models import InboundKey, Incident, Origin, Status, TimelineEvent
from bot.domain.views import SlaClockView
from bot.sla_clocks import KINDS as KINDS
from bot.sla_clocks import ClockTimes as ClockTimes
from bot.sla_clocks import Targets as Targets
from bot.sla_clocks import clock_fields, stops_since_reopen
from bot.sla_clocks import per_kind as per_kind
from bot.sla_clocks import tightest as tightest
from bot.store import Store

log = logging.getLogger(__name__)

SCHEDULER = Actor(Origin.SCHEDULER, "sla", "SLA timer")
OPEN = (Status.OPEN.value, Status.MITIGATED.value)


def clock_times(session: Session, incident: Incident) -> ClockTimes:
    """The stored timestamps of this round of the incident. The row keeps the first acknowledgement
    (reports need it), so after a reopen the stops are read from the status steps since the reopen."""
    if incident.reopened_at is None:
        return ClockTimes(
            severity=incident.severity,
            started_at=as_utc(incident.declared_at),
            acknowledged_at=_utc(incident.acknowledged_at),
            resolved_at=_utc(incident.resolved_at or incident.closed_at),
        )
    steps = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "status")
        .order_by(col(TimelineEvent.id))
    ).all()
    acked, resolved = stops_since_reopen([(step.data, step.at) for step in steps])
    return ClockTimes(incident.severity, as_utc(incident.reopened_at), _utc(acked), _utc(resolved))


def clocks(times: ClockTimes, targets: Targets, warn_fraction: float, now: datetime) -> list[SlaClockView]:
    """The incident's clocks at `now` (bot/sla_clocks.py computes them)."""
    return [SlaClockView(**fields) for fields in clock_fields(times, targets, warn_fraction, now)]


@dataclass(frozen=True)
class _Notice:
    incident: Incident
    clock: SlaClockView
    event: Literal["sla", "sla_warning"]
    key: str


def check_slas(
    store: Store, incidents: IncidentService, targets: Targets, now: datetime, warn_fraction: float = 1.0
) -> list[str]:
    """Record each warning and breach that is due and was not recorded yet; lines worth logging."""
    if not targets:
        return []
    candidates: list[_Notice] = []
    with store.read() as session:
        for incident in session.exec(select(Incident).where(_may_be_due(targets, warn_fraction, now))).all():
            for clock in clocks(clock_times(session, incident), targets, warn_fraction, now):
                notice = _notice(incident, clock)
                if notice is not None:
                    candidates.append(notice)
        given = _given(session, [notice.key for notice in candidates])
    notices = [notice for notice in candidates if notice.key not in given]
    done = []
    for notice in notices:
        if _record(incidents, notice):
            done.append(
                f"{notice.incident.ref} {notice.clock.kind} SLA {'warning' if notice.event == 'sla_warning' else 'breached'}"
            )
    return done


def _may_be_due(targets: Targets, warn_fraction: float, now: datetime) -> Any:
    """Open incidents with a clock past its first notice (the tick reads only these, not every open
    incident): an ack clock runs only while the status is open (mitigated means acknowledged since the
    start), a resolve clock while open or mitigated."""
    started = func.coalesce(col(Incident.reopened_at), col(Incident.declared_at))
    due = []
    for severity, kinds in targets.items():
        for kind, seconds in kinds.items():
            if not seconds or kind not in KINDS:
                continue
            first = round(seconds * warn_fraction) if warn_fraction < 1 else seconds
            statuses = [Status.OPEN.value] if kind == "ack" else list(OPEN)
            due.append(
                and_(
                    col(Incident.severity) == severity,
                    col(Incident.status).in_(statuses),
                    started <= now - timedelta(seconds=first),
                )
            )
    return or_(*due) if due else false()


def _given(session: Session, keys: list[str]) -> set[str]:
    """Which of these once keys are recorded already (one query)."""
    if not keys:
        return set()
    return set(session.exec(select(InboundKey.key).where(col(InboundKey.key).in_(keys))).all())


def _notice(incident: Incident, clock: SlaClockView) -> _Notice | None:
    if clock.stopped_at is not None or clock.state not in ("warned", "breached"):
        return None
    event: Literal["sla", "sla_warning"] = "sla" if clock.state == "breached" else "sla_warning"
    key = f"{event}:{incident.id}:{clock.kind}:{clock.started_at.isoformat()}:{clock.target_seconds}"
    return _Notice(incident, clock, event, key)


def _record(incidents: IncidentService, notice: _Notice) -> bool:
    clock, incident = notice.clock, notice.incident
    target = f"{format_duration(clock.target_seconds)} ({clock.severity})"
    if notice.event == "sla":
        verb = "acknowledged" if clock.kind == "ack" else "resolved"
        text = f"SLA breached: not {verb} within {target}"
        extra = {"notify_channel": True}
    else:
        verb = "Acknowledge" if clock.kind == "ack" else "Resolve"
        text = f"SLA warning: {verb} by {clock.due_at.strftime('%H:%M:%S UTC')}, target {target}"
        extra = {}
    data = {
        "sla": clock.kind,
        "target_seconds": clock.target_seconds,
        "due_at": clock.due_at.isoformat(),
        "person_id": incident.owner_id,  # addressed to the owner (read when the notice is rendered)
        **extra,
    }
    try:
        change = incidents.record(incident.number, notice.event, text, actor=SCHEDULER, context=data, once_key=notice.key)
    except IntegrityError:
        log.info("%s: another replica recorded %s first", incident.ref, notice.key)
        return False
    return change.changed


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
