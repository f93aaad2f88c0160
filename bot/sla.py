"""SLA clocks: a notice when an open incident has not been acknowledged or resolved within its target.

Computed from stored timestamps on every scheduler tick (never an in-process timer), and each notice is
recorded under a once key, so it is given exactly once whichever replica ticks, across restarts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.clock import as_utc, format_duration
from bot.domain.incidents import Actor, IncidentService
from bot.domain.models import Incident, Origin, Status
from bot.store import Store

SCHEDULER = Actor(Origin.SCHEDULER, "sla", "SLA timer")
Targets = Mapping[str, Mapping[str, int]]  # severity -> {"ack": seconds, "resolve": seconds}


def check_slas(store: Store, incidents: IncidentService, targets: Targets, now: datetime) -> list[str]:
    if not targets:
        return []
    with store.read() as session:
        open_ones = session.exec(select(Incident).where(col(Incident.status).in_([Status.OPEN, Status.MITIGATED]))).all()
    breaches = []
    for incident in open_ones:
        assert incident.id is not None
        start = as_utc(incident.reopened_at or incident.declared_at)  # a reopened incident's clock restarts
        for kind, seconds in targets.get(incident.severity, {}).items():
            done_at = incident.acknowledged_at if kind == "ack" else incident.resolved_at
            if done_at is not None and as_utc(done_at) < start:
                done_at = None  # acknowledged or resolved before the reopen: not this time round
            if done_at is None and now - start > timedelta(seconds=seconds):
                verb = "acknowledged" if kind == "ack" else "resolved"
                change = incidents.record(
                    incident.id,
                    "sla",
                    f"SLA breached: not {verb} within {format_duration(seconds)} ({incident.severity})",
                    actor=SCHEDULER,
                    context={"sla": kind, "notify_channel": True},
                    once_key=f"sla:{incident.id}:{kind}:{start.isoformat()}",
                )
                if change.changed:
                    breaches.append(f"{incident.ref} {kind} SLA breached")
    return breaches
