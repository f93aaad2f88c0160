"""im -> PagerDuty for people: the owner becomes the assignee, escalations, responder requests.

Invariant: each job ends in PagerDuty's call or in a notice on the incident saying why not (a person
PagerDuty does not know, a level past the policy's last): never dropped silently. Each call is recorded
as a step once answered, so a retried job does not repeat it; a call whose answer was lost is looked up
before it is made again (rule 8): an escalation by the incident's level, a responder request among the
incident's responder requests. An assignment is a plain PUT of the assignees: repeating it changes nothing.
Notices are recorded with the connector's actor (origin `pagerduty`), so they make no PagerDuty job of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.app import Im
from bot.domain import outbox, people
from bot.domain.incidents import Actor
from bot.domain.models import Incident, Origin, OutboxJob, TimelineEvent
from bot.domain.people import Person, PersonRef, PersonView
from bot.workers import GiveUp
from integrations.pagerduty import users
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.models import EscalationPolicy
from integrations.pagerduty.api.models import Incident as PDIncident
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.tables import PagerDutyLink

if TYPE_CHECKING:
    from integrations.pagerduty.outbound import PagerDutyDelivery


def our_escalation_step(connector: str, pd_incident_id: str, assignee_ids: list[str]) -> str:
    """Marks an escalation we made, so its webhook is recognised as ours (and not announced again)."""
    return f"pd-our-escalation:{connector}:{pd_incident_id}:{','.join(sorted(assignee_ids))}"


class Paging:
    """The steps of the `reassign`, `escalate` and `page` jobs, each called like the delivery's own
    (client, connector, config, incident, event, job)."""

    def __init__(self, im: Im, delivery: PagerDutyDelivery) -> None:
        self.im = im
        self.delivery = delivery

    # -- owner -> assignee -------------------------------------------------------------------
    def reassign(
        self, client: PagerDutyClient, name: str, _: PagerDutyConfig, incident: Incident, event: TimelineEvent, __: OutboxJob
    ) -> None:
        person_id = event.data.get("person_id")
        if person_id is None or incident.owner_id != person_id:
            return  # the owner changed again since: that change is the one PagerDuty should follow
        person = self._person(person_id)
        if person is None:
            return
        user_id = users.pagerduty_id_of(self.im, client, person)
        if user_id is None:
            self._notice(
                name,
                incident,
                f"{PersonView.of(person).label} (not in PagerDuty): PagerDuty assignment unchanged",
                f"pd-owner-unmatched:{name}:{event.id}",
            )
            return
        from_email = self.delivery._from(client, event.actor)
        for link in self._open_links(name, incident):
            if link.assignees == [user_id] or link.pd_incident_id is None:
                continue
            remote = client.update_incident(link.pd_incident_id, assignee_ids=[user_id], from_email=from_email)
            self.delivery._save_link(name, incident.number, link.service, remote)

    # -- escalation --------------------------------------------------------------------------
    def escalate(
        self, client: PagerDutyClient, name: str, _: PagerDutyConfig, incident: Incident, event: TimelineEvent, __: OutboxJob
    ) -> None:
        wanted = event.data.get("level")
        for link in self._open_links(name, incident):
            pd_id = link.pd_incident_id or ""
            step = f"pd-escalate:{name}:{event.id}:{pd_id}"
            if outbox.step_done(self.im.store, step):
                continue
            remote = client.get_incident(pd_id)
            if remote.escalation_policy is None:
                self._notice(name, incident, f"PagerDuty #{remote.incident_number} has no escalation policy: not escalated", step)
                continue
            policy = client.get_escalation_policy(remote.escalation_policy.id)
            last = len(policy.escalation_rules)
            # An earlier try whose answer was lost chose the level already (one past the level of its time):
            # it is kept, and PagerDuty found there means that try was carried out.
            tried = outbox.step_done(self.im.store, f"tried:{step}")
            current = _current_level(client, remote, policy) if tried or not wanted else 0
            level = int(tried.value) if tried and tried.value else wanted or current + 1
            if level > last:
                self._notice(
                    name,
                    incident,
                    f"PagerDuty #{remote.incident_number} not escalated: level {level} is past the last level ({last}) "
                    f"of {policy.name or policy.id}",
                    step,
                )
                continue
            if tried and current == level:
                answer = remote
            else:
                outbox.record_step(self.im.store, f"tried:{step}", str(level))  # before the call: its outcome may be lost
                answer = client.update_incident(
                    pd_id, escalation_level=level, from_email=self.delivery._from(client, event.actor)
                )
            outbox.record_step(self.im.store, our_escalation_step(name, pd_id, answer.assignee_ids))
            outbox.record_step(self.im.store, step, str(level))
            self.delivery._save_link(name, incident.number, link.service, answer)
            paged = ", ".join(a.assignee.summary or a.assignee.id for a in answer.assignments) or "nobody"
            self._notice(
                name, incident, f"PagerDuty #{answer.incident_number} escalated to level {level}: now paging {paged}", step
            )

    # -- responder requests ------------------------------------------------------------------
    def page(
        self, client: PagerDutyClient, name: str, config: PagerDutyConfig, incident: Incident, event: TimelineEvent, _: OutboxJob
    ) -> None:
        step = f"pd-page:{name}:{event.id}"
        open_links = self._open_links(name, incident)
        if not open_links or outbox.step_done(self.im.store, step):
            return
        targets: list[tuple[str, str]] = []
        missed: list[str] = []
        for service in event.data.get("services") or []:
            policy_id = self._policy_for(client, config, service)
            if policy_id:
                targets.append(("escalation_policy_reference", policy_id))
            else:
                missed.append(f"{service} (no escalation policy)")
        for given in event.data.get("people") or []:
            person = self._resolve(PersonRef(slack_user_id=given.get("slack_user_id"), email=given.get("email")))
            user_id = users.pagerduty_id_of(self.im, client, person)
            if user_id:
                targets.append(("user_reference", user_id))
            else:
                missed.append(f"{PersonView.of(person).label} (not in PagerDuty)")
        if missed:
            self._notice(name, incident, f"Not paged: {', '.join(missed)}", f"{step}:missed")
        if not targets:
            return
        requester = self._requester(client, event.actor)
        message = event.data.get("message") or f"{incident.ref}: {incident.title}"
        pd_id = open_links[0].pd_incident_id or ""
        # A request whose answer was lost is looked up before asking again: the incident lists the responder
        # requests made on it, so one more like ours (requester, message) than before the first try means it
        # went out. An account without the responder-requests feature does not list them: then it is asked
        # again, as a page missed is worse than a page twice (README, Reliability).
        seen = _requests_like(client.get_incident(pd_id), requester, message)
        tried = outbox.step_done(self.im.store, f"tried:{step}")
        if tried is not None and tried.value is not None and seen is not None and seen > int(tried.value):
            outbox.record_step(self.im.store, step)
            return
        outbox.record_step(self.im.store, f"tried:{step}", None if seen is None else str(seen))  # the first try's count stays
        client.create_responder_request(pd_id, requester_id=requester, message=message, targets=targets)
        outbox.record_step(self.im.store, step)

    # -- helpers -----------------------------------------------------------------------------
    def _requester(self, client: PagerDutyClient, actor: str) -> str:
        """Who asks: the acting person when PagerDuty knows them, else the connector's From user."""
        email = self.delivery._from(client, actor) or client.from_email
        found = users.user_id_for_email(client, email) if email else None
        if found is None:
            raise GiveUp(f"the connector's from_email ({email}) is not a PagerDuty user: set custom.from_email")
        return found

    def _policy_for(self, client: PagerDutyClient, config: PagerDutyConfig, service: str) -> str | None:
        mapped = config.custom.escalation_mappings.get(service)
        if mapped:
            return mapped
        pd_service = config.custom.service_mappings.get(service)
        if not pd_service:
            return None
        found = client.get_service(pd_service)
        return found.escalation_policy.id if found.escalation_policy else None

    def _open_links(self, name: str, incident: Incident) -> list[PagerDutyLink]:
        return [link for link in self.delivery._links(name, incident.number) if link.pd_incident_id and link.status != "resolved"]

    def _person(self, person_id: int) -> Person | None:
        with self.im.store.read() as session:
            return session.get(Person, person_id)

    def _resolve(self, ref: PersonRef) -> Person:
        with self.im.store.transaction() as session:
            return people.resolve(session, ref)

    def _notice(self, name: str, incident: Incident, text: str, key: str) -> None:
        self.im.incidents.record(
            incident.number,
            "notice",
            text,
            actor=Actor(Origin.PAGERDUTY, f"connector/{name}", "PagerDuty"),
            context={"connector": name},
            once_key=f"{key}:notice",
        )


def _requests_like(remote: PDIncident, requester_id: str, message: str) -> int | None:
    """How many responder requests on the incident `requester_id` made with `message`; None when
    PagerDuty does not list them (the account lacks the responder-requests feature)."""
    if remote.responder_requests is None:
        return None
    return sum(1 for r in remote.responder_requests if r.message == message and r.requester and r.requester.id == requester_id)


def _current_level(client: PagerDutyClient, remote: PDIncident, policy: EscalationPolicy) -> int:
    """PagerDuty's incident does not say its level: the lowest level whose on-call is assigned now (1
    when none is, e.g. reassigned by hand)."""
    assigned = set(remote.assignee_ids)
    levels = [o.escalation_level for o in client.list_oncalls(escalation_policy_ids=[policy.id]) if o.user.id in assigned]
    return min(levels) if levels else 1
