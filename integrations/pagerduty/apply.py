"""PagerDuty -> im: apply what PagerDuty reports about one of its incidents, through the domain.

Used by webhooks and by reconciliation alike. Every change is applied with origin `pagerduty` (so it
is never pushed back), at the time PagerDuty says it happened (so an older report changes nothing),
and under a key of the report (so a redelivery has no second effect).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import select

from bot.clock import utcnow
from bot.domain.errors import InvalidTransition
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from integrations.pagerduty import mapping
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.tables import PagerDutyLink

OURS = re.compile(r"^im:(?P<connector>[^:]+):INC-(?P<incident>\d+):(?P<service>[^:]+)(:r\d+)?$")


@dataclass
class RemoteIncident:
    """What both a webhook and a REST read tell us about a PagerDuty incident."""

    id: str
    number: int | None
    title: str
    status: str
    urgency: str | None
    service_id: str
    service_name: str | None
    html_url: str | None
    incident_key: str | None
    assignees: list[tuple[str, str | None]] = field(default_factory=list)  # (id, name)
    changed_at: datetime | None = None


@dataclass
class Report:
    connector: str
    config: PagerDutyConfig
    remote: RemoteIncident
    key: str  # once-key of this report (event id, or incident id + change time)
    actor: Actor
    at: datetime | None


def agent_actor(agent_id: str | None, agent_name: str | None) -> Actor:
    return Actor(Origin.PAGERDUTY, agent_id or "pagerduty", agent_name or "PagerDuty")


class RemoteApplier:
    def __init__(self, im) -> None:  # type: ignore[no-untyped-def]
        self.im = im

    def find_link(self, connector: str, pd_incident_id: str) -> PagerDutyLink | None:
        with self.im.store.read() as session:
            return session.exec(
                select(PagerDutyLink).where(PagerDutyLink.connector == connector, PagerDutyLink.pd_incident_id == pd_incident_id)
            ).first()

    def ensure_incident(self, report: Report) -> tuple[PagerDutyLink | None, str | None]:
        """The link for this PagerDuty incident, making the im incident when PagerDuty started it."""
        link = self.find_link(report.connector, report.remote.id)
        if link is not None:
            return link, None
        remote = report.remote
        ours = OURS.match(remote.incident_key or "")
        if ours and ours.group("connector") == report.connector:
            # our own create, reported before its answer was recorded: link it, declare nothing
            self._save(report.connector, int(ours.group("incident")), ours.group("service"), remote)
            return self.find_link(report.connector, remote.id), "linked our own PagerDuty incident"
        if not report.config.inbound:
            return None, "ignored: connector is outbound-only"
        custom = report.config.custom
        covered = {s for s in [custom.service_id, *custom.service_mappings.values()] if s}
        if covered and remote.service_id not in covered:
            return None, f"ignored: PagerDuty service {remote.service_id} is not one this connector covers"
        service = mapping.im_service_for(remote.service_id, remote.service_name, report.config.custom.service_mappings)
        incident = self.im.incidents.declare(
            title=remote.title[:200] or f"PagerDuty incident #{remote.number}",
            severity=mapping.severity_for(remote.urgency, report.config.custom.urgency_mapping),
            services=[service],
            actor=report.actor,
            at=report.at,
            description=f"Triggered in PagerDuty: {remote.html_url or remote.id}",
            context={
                "connector": report.connector,
                "pagerduty_link": {
                    "connector": report.connector,
                    "service": service,
                    "pd_service_id": remote.service_id,
                    "pd_incident_id": remote.id,
                    "pd_incident_number": remote.number,
                    "incident_key": remote.incident_key,
                    "html_url": remote.html_url,
                    "status": "triggered",
                    "urgency": remote.urgency,
                    "assignees": [a for a, _ in remote.assignees],
                },
            },
            once_key=f"pd-declare:{report.connector}:{remote.id}",
        )
        link = self.find_link(report.connector, remote.id)
        return link, (f"declared {incident.ref}" if incident else None)

    def apply_status(self, report: Report, link: PagerDutyLink, note: str | None = None) -> str:
        remote = report.remote
        previous = link.status
        self._save(report.connector, link.incident_id, link.service, remote)
        incident = self.im.incidents.get(link.incident_id)
        if remote.status == "resolved" and self._others_open(report.connector, link):
            if previous != "resolved":
                self.im.incidents.record(
                    link.incident_id,
                    "notice",
                    f"PagerDuty #{remote.number} ({link.service}) resolved; other PagerDuty incidents are still open",
                    actor=report.actor,
                    context={"connector": report.connector},
                    once_key=f"{report.key}:partial",
                    at=report.at,
                )
            return "partial resolve noted"
        verb = mapping.verb_towards(incident.status, remote.status)
        if verb is None:
            return f"no change ({incident.ref} is {incident.status})"
        if verb == "reopen" and incident.status == "closed":
            return f"ignored: {incident.ref} is closed"
        try:
            change = self.im.incidents.transition(
                link.incident_id,
                verb,
                actor=report.actor,
                at=report.at,
                note=note,
                context={"connector": report.connector},
                once_key=report.key,
            )
        except InvalidTransition as exc:
            return f"ignored: {exc}"
        return f"{verb} {incident.ref}" if change.changed else "no change (older than what we know, or seen before)"

    def apply_assignment(self, report: Report, link: PagerDutyLink, what: str) -> str:
        remote = report.remote
        ids = [a for a, _ in remote.assignees]
        changed = sorted(ids) != sorted(link.assignees or [])
        self._save(report.connector, link.incident_id, link.service, remote)
        if not changed and what != "escalated":
            return "no change"
        names = ", ".join(n or i for i, n in remote.assignees) or "nobody"
        verb = "Escalated" if what == "escalated" else "Reassigned"
        self.im.incidents.record(
            link.incident_id,
            "assignment",
            f"{verb} in PagerDuty #{remote.number}: now paging {names}",
            actor=report.actor,
            context={"connector": report.connector, "assignees": ids, "notify_channel": True},
            once_key=report.key,
            at=report.at,
        )
        return f"assignees: {names}"

    def _others_open(self, connector: str, link: PagerDutyLink) -> bool:
        with self.im.store.read() as session:
            others = session.exec(
                select(PagerDutyLink).where(
                    PagerDutyLink.connector == connector,
                    PagerDutyLink.incident_id == link.incident_id,
                    PagerDutyLink.id != link.id,
                )
            ).all()
        return any(o.status != "resolved" for o in others)

    def _save(self, connector: str, incident_id: int, service: str, remote: RemoteIncident) -> None:
        with self.im.store.transaction() as session:
            link = session.exec(
                select(PagerDutyLink).where(
                    PagerDutyLink.connector == connector,
                    PagerDutyLink.incident_id == incident_id,
                    PagerDutyLink.service == service,
                )
            ).first()
            if link is None:
                link = PagerDutyLink(
                    connector=connector, incident_id=incident_id, service=service, pd_service_id=remote.service_id
                )
            if link.pd_incident_id not in (None, remote.id):
                return  # a newer PagerDuty incident replaced this one (reopen): old news
            link.pd_incident_id, link.pd_incident_number = remote.id, remote.number or link.pd_incident_number
            link.incident_key = remote.incident_key or link.incident_key
            link.html_url = remote.html_url or link.html_url
            link.status, link.urgency = remote.status, remote.urgency or link.urgency
            link.assignees = [a for a, _ in remote.assignees]
            link.updated_at = utcnow()
            session.add(link)
