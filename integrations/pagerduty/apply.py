"""PagerDuty -> im: apply what PagerDuty reports about one of its incidents, through the domain.

Used by webhooks and by reconciliation alike. Every change is applied with origin `pagerduty` (so it
is never pushed back), at the time PagerDuty says it happened (so an older report changes nothing),
and under a key of the report (so a redelivery has no second effect).

Convergence rule: a status report is news for im only once im's own changes have reached PagerDuty. While
an outbound job that can move the PagerDuty incident's status waits for the incident (pending, or running
with its outcome unknown), a report may be the echo of one of our earlier pushes, and applying it would
take im back (resolved in im, then our late acknowledgement read back: reopened). Such a report is held:
im does not move (the link takes it as always: it shows PagerDuty's state, and outbound pushes are skipped
by it), and a `settle` job queued behind those outbound jobs (same ordering key) reads the incident afresh
once they are done: PagerDuty at im's status, or at a status we pushed ourselves, has nothing new for im;
anything else is applied like any report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.app import Im
from bot.clock import as_utc
from bot.domain import outbox
from bot.domain.errors import InvalidTransition
from bot.domain.incidents import Actor
from bot.domain.models import Incident, JobStatus, Origin, OutboxJob, OutboxStep
from bot.domain.outbox import JobSpec, enqueue
from bot.domain.people import PersonRef
from integrations.pagerduty import links, mapping
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.links import RemoteIncident
from integrations.pagerduty.outbound import destination, pushed_step
from integrations.pagerduty.paging import our_escalation_step
from integrations.pagerduty.tables import PagerDutyLink

INBOUND_PREFIX = "pagerduty-in"
SETTLE = "settle"  # the inbound job that takes in a held report once im's changes reached PagerDuty
# outbound job kinds that can move a PagerDuty incident's status (in PagerDuty a reassignment or an
# escalation triggers an acknowledged incident again)
MOVES_STATUS = ("create", "status", "reassign", "escalate")
HELD = "held (im's changes are on their way to PagerDuty; settled after them)"

OURS = re.compile(r"^im:(?P<connector>[^:]+):INC-(?P<incident>\d+):(?P<service>[^:]+)(:r\d+)?$")


@dataclass
class Report:
    connector: str
    config: PagerDutyConfig
    remote: RemoteIncident
    key: str  # once-key of this report (event id, or incident id + change time)
    actor: Actor
    at: datetime | None


def waiting_in_outbox(im: Im, connector: str, incident_id: int, kind: str) -> bool:
    """A job of ours of `kind` for this incident still waits in the outbox (paced, retrying): PagerDuty has
    not heard of im's newer state yet, so what it reports now is older than what im knows."""
    with im.store.read() as session:
        return session.exec(_outbound_waiting(connector, incident_id, (kind,))).first() is not None


def _outbound_waiting(connector: str, incident_id: int, kinds: tuple[str, ...]) -> SelectOfScalar[int | None]:
    """The first outbound job of one of `kinds` for this incident that has not run yet (or runs now)."""
    return (
        select(col(OutboxJob.id))
        .where(
            col(OutboxJob.destination) == destination(connector),
            col(OutboxJob.incident_id) == incident_id,
            col(OutboxJob.kind).in_(kinds),
            col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING]),
        )
        .limit(1)
    )


def inbound_destination(name: str) -> str:
    return f"{INBOUND_PREFIX}:{name}"


def agent_actor(agent_id: str | None, agent_name: str | None) -> Actor:
    return Actor(Origin.PAGERDUTY, agent_id or "pagerduty", agent_name or "PagerDuty")


class RemoteApplier:
    def __init__(self, im: Im) -> None:
        self.im = im

    def find_link(self, connector: str, pd_incident_id: str) -> PagerDutyLink | None:
        with self.im.store.read() as session:
            return links.by_remote(session, connector, pd_incident_id)

    def ensure_incident(self, report: Report) -> tuple[PagerDutyLink | None, str | None]:
        """The link for this PagerDuty incident, making the im incident when PagerDuty started it.

        The incident is declared open when PagerDuty created it; the caller then applies the report's
        own status at its own time, like any later report's."""
        link = self.find_link(report.connector, report.remote.id)
        if link is not None:
            return link, None
        remote = report.remote
        ours = OURS.match(remote.incident_key or "")
        if ours and ours.group("connector") == report.connector:
            # our own create, reported before its answer was recorded: link it, declare nothing
            self._save(report, int(ours.group("incident")), ours.group("service"))
            return self.find_link(report.connector, remote.id), "linked our own PagerDuty incident"
        if not report.config.inbound:
            return None, "ignored: connector is outbound-only"
        covered = report.config.covered_service_ids()
        if covered and remote.service_id not in covered:
            return None, f"ignored: PagerDuty service {remote.service_id} is not one this connector covers"
        service = mapping.im_service_for(remote.service_id, remote.service_name, report.config.custom.service_mappings)

        def link_it(session: Session, incident: Incident) -> None:
            links.upsert(session, report.connector, incident.number, service, remote)

        incident = self.im.incidents.declare(
            title=remote.title[:200] or f"PagerDuty incident #{remote.number}",
            severity=mapping.severity_for(remote.urgency, report.config.custom.urgency_mapping),
            services=[service],
            actor=report.actor,
            at=_earliest(remote.created_at, report.at),
            description=f"Triggered in PagerDuty: {remote.html_url or remote.id}",
            context={"connector": report.connector},
            once_key=f"pd-declare:{report.connector}:{remote.id}",
            on_declared=link_it,
        )
        link = self.find_link(report.connector, remote.id)
        return link, (f"declared {incident.ref}" if incident else None)

    def apply_status(self, report: Report, link: PagerDutyLink, note: str | None = None) -> str:
        """Bring the im incident to the status the report gives, unless what we know is newer."""
        remote = report.remote
        if remote.status is None:
            return "no change (no status reported)"
        if not links.is_newer(remote.as_of, link.status_at):
            # im follows PagerDuty's newest report only: an older one, even a valid step of the history
            # (an acknowledgement before an escalation re-triggered it), would undo what that one said
            return "no change (older than what we know)"
        if self._held(report.connector, link.incident_id):
            self._save(report, link.incident_id, link.service)  # the link shows PagerDuty's newest state all the same
            return HELD
        previous = link.status
        self._save(report, link.incident_id, link.service)
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
        steps = mapping.steps_towards(incident.status, remote.status)
        if not steps:
            return f"no change ({incident.ref} is {incident.status})"
        if steps[0] == "reopen" and incident.status == "closed":
            return f"ignored: {incident.ref} is closed"
        for n, verb in enumerate(steps):
            try:
                change = self.im.incidents.transition(
                    link.incident_id,
                    verb,
                    actor=report.actor,
                    at=report.at,
                    note=note if n == 0 else None,
                    context={"connector": report.connector},
                    once_key=report.key if n == 0 else f"{report.key}:{verb}",
                )
            except InvalidTransition as exc:
                return f"ignored: {exc}"
            if not change.changed:
                return "no change (older than what we know, or seen before)"
        return f"{' and '.join(steps)} {incident.ref}"

    def settle(self, report: Report, link: PagerDutyLink) -> str:
        """A fresh read of the PagerDuty incident, taken in after im's changes reached PagerDuty (a `settle`
        job). At im's status, or at a status we put it in ourselves (im went on where PagerDuty cannot
        follow: auto_resolve off, no "unacknowledge" in the REST API), it has nothing new for im."""
        status = report.remote.status
        im_status = self.im.incidents.get(link.incident_id).status
        if (
            status is None
            or status == mapping.TO_PAGERDUTY_STATUS[im_status]
            or outbox.step_done(self.im.store, pushed_step(report.connector, report.remote.id, status))
        ):
            self._save(report, link.incident_id, link.service)
            return f"no change (PagerDuty is {status}, as im left it)"
        return self.apply_status(report, link)

    def _held(self, connector: str, incident_id: int) -> bool:
        """Is im ahead of PagerDuty (an outbound job that can move the incident's PagerDuty status waits)?
        Then a settle job is queued behind it, unless one waits already (it reads PagerDuty when it runs).
        One transaction, the waiting job's row locked on PostgreSQL: at no moment is neither waiting."""
        inbound = inbound_destination(connector)
        with self.im.store.transaction() as session:
            ahead = _outbound_waiting(connector, incident_id, MOVES_STATUS)
            if session.get_bind().dialect.name == "postgresql":
                ahead = ahead.with_for_update()
            if session.exec(ahead).first() is None:
                return False
            queued = session.exec(
                select(OutboxJob.id)
                .where(
                    col(OutboxJob.destination) == inbound,
                    col(OutboxJob.kind) == SETTLE,
                    col(OutboxJob.incident_id) == incident_id,
                    col(OutboxJob.status) == JobStatus.PENDING,
                )
                .limit(1)
            ).first()
            if queued is None:
                # the outbound jobs' ordering key: it runs after every one of them
                enqueue(session, JobSpec(inbound, SETTLE), incident_id, ordering_key=f"{destination(connector)}:{incident_id}")
        return True

    def apply_assignment(self, report: Report, link: PagerDutyLink, what: str) -> str:
        remote = report.remote
        if not links.is_newer(remote.as_of, link.status_at):
            return "assignees: no change (older than what we know)"
        ids = [a for a, _ in remote.assignees]
        changed = sorted(ids) != sorted(link.assignees or [])
        self._save(report, link.incident_id, link.service)
        if not changed and what != "escalated":
            return "assignees: no change"
        if not changed and self._ours(report.connector, remote.id, ids):
            return "assignees: no change (our own escalation)"
        names = ", ".join(n or i for i, n in remote.assignees) or "nobody"
        verb = "Escalated" if what == "escalated" else "Reassigned"
        self.im.incidents.record(
            link.incident_id,
            "assignment",
            f"{verb} in PagerDuty #{remote.number}: now paging {names}",
            actor=report.actor,
            context={"connector": report.connector, "assignees": ids, "notify_channel": True},
            once_key=f"{report.key}:assignment",
            at=report.at,
        )
        return f"assignees: {names}"

    def apply_owner(self, report: Report, link: PagerDutyLink, person: PersonRef, *, at: datetime | None, key: str) -> str:
        """PagerDuty's assignee (or acknowledger) as the im owner, unless im's owner changed after `at`."""
        change = self.im.incidents.assign(
            link.incident_id, person, actor=report.actor, at=at, context={"connector": report.connector}, once_key=key
        )
        return f"owner: {change.event.text}" if change.event else "owner: no change"

    def _others_open(self, connector: str, link: PagerDutyLink) -> bool:
        with self.im.store.read() as session:
            others = [o for o in links.for_incident(session, link.incident_id, connector) if o.id != link.id]
        return any(o.status != "resolved" for o in others)

    def _ours(self, connector: str, pd_incident_id: str, ids: list[str]) -> bool:
        """An escalation we asked for (paging.py marks it): announced by us already. The mark is used
        up, so a later escalation in PagerDuty to the same people is announced as usual."""
        with self.im.store.transaction() as session:
            mark = session.get(OutboxStep, our_escalation_step(connector, pd_incident_id, ids))
            if mark is not None:
                session.delete(mark)
            return mark is not None

    def _save(self, report: Report, incident_id: int, service: str) -> None:
        with self.im.store.transaction() as session:
            links.upsert(session, report.connector, incident_id, service, report.remote)


def _earliest(*times: datetime | None) -> datetime | None:
    known = [as_utc(t) for t in times if t is not None]
    return min(known) if known else None
