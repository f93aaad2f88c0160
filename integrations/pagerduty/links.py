"""The links between im incidents and PagerDuty incidents: the one upsert, and the lookups everyone needs.

Invariant: a link's snapshot of PagerDuty (status, urgency, assignees) only moves to a report at least as
new as the one it holds (`status_at`, compared to the second like the domain's status times), so deliveries
in any order leave it at PagerDuty's latest state. The identity (incident id, number, key, URL) is filled in
from any report. News of a PagerDuty incident that a newer one replaced on the link (a reopen) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.clock import as_utc, utcnow
from integrations.pagerduty.tables import PagerDutyLink

if TYPE_CHECKING:  # the API's payload models: only read from a REST answer, never by `im status`
    from integrations.pagerduty.api.models import Incident as PDIncident


@dataclass
class RemoteIncident:
    """What both a webhook and a REST read tell us about a PagerDuty incident, as of `as_of`."""

    id: str
    number: int | None
    title: str
    status: str | None  # None: the report did not say
    urgency: str | None
    service_id: str
    service_name: str | None
    html_url: str | None
    incident_key: str | None
    assignees: list[tuple[str, str | None]] = field(default_factory=list)  # (id, name)
    changed_at: datetime | None = None  # when the status last changed
    created_at: datetime | None = None
    as_of: datetime | None = None  # when PagerDuty's state was what this report says


def remote_from_rest(incident: PDIncident) -> RemoteIncident:
    """A REST answer: its status holds from the last status change to now, so the latest of the
    incident's change times is a moment at which every field of it was true."""
    times = [t for t in (incident.updated_at, incident.last_status_change_at, incident.created_at) if t is not None]
    return RemoteIncident(
        id=incident.id,
        number=incident.incident_number,
        title=incident.title,
        status=incident.status,
        urgency=incident.urgency,
        service_id=incident.service.id,
        service_name=incident.service.summary,
        html_url=incident.html_url,
        incident_key=incident.incident_key,
        assignees=[(a.assignee.id, a.assignee.summary) for a in incident.assignments],
        changed_at=incident.last_status_change_at or incident.updated_at or incident.created_at,
        created_at=incident.created_at,
        as_of=max(as_utc(t) for t in times),
    )


def is_newer(reported_at: datetime | None, known_at: datetime | None) -> bool:
    """May a report made at `reported_at` replace what we learnt at `known_at`? To the second, as
    PagerDuty's REST times are; a report without a time never replaces a timed one."""
    if known_at is None:
        return True
    if reported_at is None:
        return False
    return as_utc(reported_at).replace(microsecond=0) >= as_utc(known_at).replace(microsecond=0)


def by_remote(session: Session, connector: str, pd_incident_id: str) -> PagerDutyLink | None:
    return session.exec(
        select(PagerDutyLink).where(PagerDutyLink.connector == connector, PagerDutyLink.pd_incident_id == pd_incident_id)
    ).first()


def for_incident(session: Session, incident_id: int, connector: str | None = None) -> list[PagerDutyLink]:
    query = select(PagerDutyLink).where(PagerDutyLink.incident_id == incident_id)
    if connector is not None:
        query = query.where(PagerDutyLink.connector == connector)
    return list(session.exec(query.order_by(col(PagerDutyLink.id))))


def for_service(session: Session, connector: str, incident_id: int, service: str) -> PagerDutyLink | None:
    return session.exec(
        select(PagerDutyLink).where(
            PagerDutyLink.connector == connector, PagerDutyLink.incident_id == incident_id, PagerDutyLink.service == service
        )
    ).first()


def upsert(
    session: Session, connector: str, incident_id: int, service: str, remote: RemoteIncident, *, replace: bool = False
) -> PagerDutyLink:
    """Record what `remote` says on the link of (incident, service); `replace`: it is the new PagerDuty
    incident standing for that service (a reopen paged again), whatever the link named before."""
    link = for_service(session, connector, incident_id, service)
    if link is None:
        link = PagerDutyLink(connector=connector, incident_id=incident_id, service=service, pd_service_id=remote.service_id)
    elif link.pd_incident_id not in (None, remote.id):
        if not replace:
            return link  # old news of the PagerDuty incident a newer one replaced
        link.status = link.status_at = link.pd_incident_number = link.incident_key = link.html_url = None
    link.pd_service_id = remote.service_id or link.pd_service_id
    link.pd_incident_id, link.pd_incident_number = remote.id, remote.number or link.pd_incident_number
    link.incident_key = remote.incident_key or link.incident_key
    link.html_url = remote.html_url or link.html_url
    if remote.status is not None and is_newer(remote.as_of, link.status_at):
        link.status, link.status_at = remote.status, as_utc(remote.as_of) if remote.as_of else None
        link.urgency = remote.urgency or link.urgency
        link.assignees = [a for a, _ in remote.assignees]
    link.updated_at = utcnow()
    session.add(link)
    session.flush()
    return link
