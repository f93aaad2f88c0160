"""Status-update reminders: a nudge in an open or mitigated incident's thread when nobody has posted an
update for its severity's cadence (IM_REMINDERS), addressed to the commander, else the owner.

Slots are counted from the last update (a note, a status or severity change by someone other than the
scheduler; else the declaration or reopen): slot k falls at last update + k x cadence, so a note moves
the next nudge a whole cadence away. Each slot is recorded under a once key naming the incident, the
update it counts from, the cadence and k: one nudge per slot whichever replica ticks, across restarts,
and after a missed tick only the current slot's. A snoozed incident is skipped until the snooze ends;
a resolved or closed one gets none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.clock import as_utc, format_duration
from bot.domain.incidents import Actor, IncidentService
from bot.domain.models import InboundKey, Incident, Origin, Status, TimelineEvent
from bot.store import Store

log = logging.getLogger(__name__)

SCHEDULER = Actor(Origin.SCHEDULER, "reminders", "Reminders")
SNOOZE = timedelta(minutes=30)
UPDATE_KINDS = ("note", "status", "severity")


@dataclass(frozen=True)
class Slot:
    since: datetime  # the update the slots are counted from
    number: int  # 1: one cadence after it


def due_slot(
    started_at: datetime, last_update: datetime | None, cadence: int, snoozed_until: datetime | None, now: datetime
) -> Slot | None:
    """The slot a nudge is due for at `now` (None: none is due)."""
    if snoozed_until is not None and now < as_utc(snoozed_until):
        return None
    since = max(as_utc(started_at), as_utc(last_update)) if last_update else as_utc(started_at)
    number = int((now - since).total_seconds() // cadence)
    return Slot(since, number) if number >= 1 else None


def check_reminders(store: Store, incidents: IncidentService, cadences: Mapping[str, int], now: datetime) -> list[str]:
    """Record each nudge that is due and was not recorded yet; lines worth logging."""
    if not cadences:
        return []
    due: list[tuple[Incident, Slot, int, str, dict[str, Any]]] = []
    with store.read() as session:
        # a nudge is due no sooner than a cadence after the start: younger incidents are not read at all
        start = func.coalesce(col(Incident.reopened_at), col(Incident.declared_at))
        old_enough = [
            and_(col(Incident.severity) == severity, start <= now - timedelta(seconds=cadence))
            for severity, cadence in cadences.items()
        ]
        open_ones = session.exec(
            select(Incident).where(
                col(Incident.status).in_((Status.OPEN.value, Status.MITIGATED.value)),
                or_(*old_enough),
                or_(col(Incident.reminders_snoozed_until).is_(None), col(Incident.reminders_snoozed_until) <= now),
            )
        ).all()
        if not open_ones:
            return []
        last_updates = dict(
            session.exec(
                select(TimelineEvent.incident_id, func.max(TimelineEvent.at))
                .where(
                    col(TimelineEvent.incident_id).in_([i.id for i in open_ones]),
                    col(TimelineEvent.kind).in_(UPDATE_KINDS),
                    TimelineEvent.origin != Origin.SCHEDULER.value,
                )
                .group_by(col(TimelineEvent.incident_id))
            ).all()
        )
        for incident in open_ones:
            cadence = cadences[incident.severity]
            started = incident.reopened_at or incident.declared_at
            slot = due_slot(started, last_updates.get(incident.number), cadence, incident.reminders_snoozed_until, now)
            if slot is None:
                continue
            key = f"reminder:{incident.id}:{slot.since.isoformat()}:{cadence}:{slot.number}"
            if session.get(InboundKey, key) is not None:
                continue
            owner, roles = incidents.owner_and_roles(session, incident)
            role, person = ("commander", roles["commander"]) if "commander" in roles else ("owner", owner)
            data: dict[str, Any] = {
                "person_id": person.id if person else None,
                "role": role if person else None,
                "cadence": cadence,
            }
            due.append((incident, slot, cadence, key, data))
    done = []
    for incident, slot, cadence, key, data in due:
        quiet = format_duration(cadence * slot.number)
        text = f"Status update due: nothing posted for {quiet} ({incident.severity}, every {format_duration(cadence)})"
        try:
            change = incidents.record(incident.number, "reminder", text, actor=SCHEDULER, context=data, once_key=key)
        except IntegrityError:
            log.info("%s: another replica recorded %s first", incident.ref, key)
            continue
        if change.changed:
            done.append(f"{incident.ref} status-update reminder {slot.number}")
    return done
