"""im -> PagerDuty: which timeline steps become PagerDuty jobs, and how each job is delivered.

Rule 3 (no echo): a step that came from PagerDuty (origin `pagerduty`) never makes a PagerDuty job.
Creates carry an incident_key derived from the connector, incident and service; once a create has been
tried, every later try looks that key up first (rule 8), so a create whose answer was lost finds the incident
it made instead of paging twice, and brings it to im's state even if im resolved the incident meanwhile.
Subscribers are pure: links are written by deliveries and by the inbound side, never by `pagerduty_jobs`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from sqlmodel import Session, select

from bot.app import Im
from bot.connectors import secrets
from bot.domain import outbox
from bot.domain.errors import DomainError
from bot.domain.incidents import Actor
from bot.domain.models import Incident, Origin, OutboxJob, TimelineEvent
from bot.domain.outbox import JobSpec, enqueue
from bot.pacing import Deferred
from bot.workers import GiveUp, Handler, JobKind, RetryLater, RetryPolicy, kind_table
from integrations.pagerduty import events_delivery, links, mapping, users
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.errors import PagerDutyError, RateLimitedError, UnavailableError
from integrations.pagerduty.api.models import Incident as PDIncident
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.links import remote_from_rest
from integrations.pagerduty.paging import Paging
from integrations.pagerduty.registry import ConnectorRegistry, outbound_connectors, pages_by_routing_key
from integrations.pagerduty.tables import PagerDutyLink, PagerDutyNoteSent, SyncRun

log = logging.getLogger(__name__)

DESTINATION_PREFIX = "pagerduty"
OUR_NOTE_MARK = " — via im"  # ends every note we post, so its webhook echo is recognised even in a race


def destination(name: str) -> str:
    return f"{DESTINATION_PREFIX}:{name}"


def incident_key(connector: str, incident_id: int, service: str, generation: int = 0) -> str:
    key = f"im:{connector}:INC-{incident_id}:{service}"
    return f"{key}:r{generation}" if generation else key


def pushed_step(connector: str, pd_incident_id: str, status: str) -> str:
    """Marks a status we put a PagerDuty incident in: read back later, it is our echo, not news (apply.py)."""
    return f"pd-pushed:{connector}:{pd_incident_id}:{status}"


def connector_actor(name: str) -> Actor:
    return Actor(Origin.PAGERDUTY, f"connector/{name}", "PagerDuty")


# -- subscriber: runs inside the domain transaction --------------------------------------------
def pagerduty_jobs(session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]:
    """Pure: reads the session, returns job specs, writes nothing."""
    if event.origin == Origin.PAGERDUTY:
        return []  # no echo
    specs: list[JobSpec] = []
    only = event.data.get("drill_connector") if event.kind == "declared" else None  # a game day pages the one it names
    for name, config in outbound_connectors(session):
        if only and name != only:
            continue
        if _concerns(session, name, config, incident):
            specs += _jobs_for(name, config, incident, event)
    return specs


def _concerns(session: Session, name: str, config: PagerDutyConfig, incident: Incident) -> bool:
    """A connector pages only for the services it covers (a dev and a prod connector do not both page for
    everything); an incident it is linked to already (one PagerDuty started) stays its own."""
    return any(config.covers(s) for s in incident.services) or bool(links.for_incident(session, incident.number, name))


def _jobs_for(name: str, config: PagerDutyConfig, incident: Incident, event: TimelineEvent) -> list[JobSpec]:
    dest, payload = destination(name), {"event_id": event.id}
    if event.kind == "declared":
        return [JobSpec(dest, "create", {**payload, "service": s}) for s in incident.services if config.covers(s)]
    if event.kind == "status":
        jobs = [JobSpec(dest, "status", payload)]
        if event.data.get("note") and config.custom.sync_notes:
            jobs.append(JobSpec(dest, "note", payload))
        return jobs
    if event.kind in ("note", "sla") and config.custom.sync_notes:
        return [JobSpec(dest, "note", payload)]
    if event.kind == "field" and config.custom.sync_notes and set(event.data["fields"]) & set(config.custom_field_mappings):
        return [JobSpec(dest, "note", payload)]  # a mapped field changed after the create: PagerDuty hears it as a note
    if event.kind == "owner" and event.data.get("person_id") is not None:
        return [JobSpec(dest, "reassign", payload)]  # clearing the owner leaves PagerDuty's assignees be
    if event.kind in ("escalate", "page"):
        return [JobSpec(dest, event.kind, payload)]
    if event.kind == "severity":
        mapping_ = config.custom.urgency_mapping
        if mapping.urgency_for(event.data["from"], mapping_) != mapping.urgency_for(event.data["to"], mapping_):
            return [JobSpec(dest, "urgency", payload)]
    return []


# -- delivery: runs in a worker, no transaction open across calls -----------------------------
# The Slack thread is usually posted seconds after the create; without Slack (or with Slack down for
# long) there is no thread to link, and that is not worth a dead letter.
THREAD_LINK_RETRY = RetryPolicy(max_attempts=5, fixed_delay=3.0, give_up_quietly=True)

# One job kind's work on one incident, once the connector, its client and the timeline step are at hand.
Step = Callable[[PagerDutyClient, str, PagerDutyConfig, Incident, TimelineEvent, OutboxJob], None]


class PagerDutyDelivery:
    def __init__(self, im: Im, registry: ConnectorRegistry) -> None:
        self.im = im
        self.registry = registry
        paging = Paging(im, self)
        self.events = events_delivery.EventsDelivery(im, registry)  # a connector with a routing key only
        # every kind of PagerDuty job; all but thread_link retry with the dispatcher's default policy
        self.kinds = kind_table(
            JobKind("create", self._on_incident(self._create)),
            JobKind("status", self._on_incident(self._status)),
            JobKind("note", self._on_incident(self._note)),
            JobKind("urgency", self._on_incident(self._urgency)),
            JobKind("thread_link", self._after_thread(self._on_incident(self._thread_link)), THREAD_LINK_RETRY),
            JobKind("reassign", self._on_incident(paging.reassign)),
            JobKind("escalate", self._on_incident(paging.escalate)),
            JobKind("page", self._on_incident(paging.page)),
        )

    def _on_incident(self, step: Step) -> Handler:
        return functools.partial(self._deliver, step)

    def _after_thread(self, handler: Handler) -> Handler:
        """`handler` once the incident's Slack thread is posted; until then each try is one read, with no
        connector opened and no SyncRun (in a storm the thread comes minutes late, at Slack's pace)."""

        def run(job: OutboxJob) -> None:
            with self.im.store.read() as session:
                incident = session.get(Incident, job.incident_id) if job.incident_id is not None else None
            if incident is not None and self.im.link_url(incident, "slack") is None:
                raise RetryLater("the Slack thread is not posted yet")  # how often, and how long: THREAD_LINK_RETRY
            handler(job)

        return run

    def _deliver(self, step: Step, job: OutboxJob) -> None:
        """Runs `step` with the connector's client and the job's timeline step, turns PagerDuty's
        errors into retry or give-up, and records the call (SyncRun) whatever the outcome."""
        name = job.destination.split(":", 1)[1]
        started = time.monotonic()
        ok, error, paced = True, None, False
        try:
            connector = self.registry.get(name)
            config = self.registry.config(connector)
            if pages_by_routing_key(connector):
                error = self.events.deliver(connector, config, job)  # a skipped job's reason, kept on its SyncRun
                return
            # a short wait at most inside the client: longer waits are the outbox's (durable, no thread held).
            # The key's turn is taken at the job's first call (or the job deferred to it), not before it starts:
            # a job that turns out to need no call (a Slack thread not posted yet, a status the create already
            # pushed) spends no turn. Later calls borrow: a job never stops halfway.
            with client_for(self.registry, connector, max_attempts=2, max_wait=2.0) as client:
                with self.im.store.read() as session:
                    event = session.get(TimelineEvent, job.payload["event_id"])
                    incident = session.get(Incident, event.incident_id) if event else None
                if event is None or incident is None:
                    raise GiveUp("the timeline step is gone")
                step(client, name, config, incident, event, job)
        except RateLimitedError as exc:
            ok, error = False, exc.user_message
            raise RetryLater(exc.user_message, delay=exc.retry_after, rate_limited=True) from None
        except UnavailableError as exc:
            ok, error = False, exc.user_message
            raise RetryLater(exc.user_message) from None
        except PagerDutyError as exc:
            ok, error = False, exc.user_message
            raise GiveUp(exc.user_message) from None
        except (secrets.SecretError, DomainError) as exc:
            ok, error = False, str(exc)
            raise GiveUp(str(exc)) from None
        except Deferred:
            paced = True
            raise
        except (RetryLater, GiveUp) as exc:
            ok, error = False, str(exc)
            raise
        finally:
            if not paced:  # a deferred job was not tried: nothing to record
                with self.im.store.transaction() as session:
                    session.add(
                        SyncRun(
                            connector=name,
                            kind=job.kind,
                            incident_id=job.incident_id,
                            ok=ok,
                            duration_ms=(time.monotonic() - started) * 1000,
                            error=error,
                        )
                    )

    # -- job kinds ---------------------------------------------------------------------------
    def _create(
        self,
        client: PagerDutyClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        event: TimelineEvent,
        job: OutboxJob,
    ) -> None:
        service = job.payload["service"]
        link = self._link(name, incident.number, service)
        linked_now = link is None or not link.pd_incident_id
        # read once: the thread can appear at any moment, and the note below must follow exactly when the
        # incident was created without it
        thread_url = self.im.link_url(incident, "slack")
        if link is None or not link.pd_incident_id:
            link = self._find_or_create(client, name, config, incident, service, thread_url)
            if link is None:
                return  # the incident ended before PagerDuty was ever asked: paging now would be wrong
        self._announce_link(name, incident, link, "created")
        target = mapping.TO_PAGERDUTY_STATUS[incident.status]
        if target != "resolved" or config.custom.auto_resolve:
            if _push_needed(link, target):
                # its own turn, not a borrowed one: in a storm nearly every create finds its incident acked
                # already, and a thousand borrowed calls overran PagerDuty's limit. Deferred here, the job
                # comes back to a link that exists: the create is not repeated, only this push is made.
                client.ready(again=True)
            self._push_status(client, name, incident, link, target, resolution=incident.resolution, actor=None)
        if linked_now and not thread_url:
            # Paging must not wait for Slack: the thread's link follows as a note once it exists, in an order
            # of its own, so the incident's later changes do not wait for Slack either (its pace, an outage)
            with self.im.store.transaction() as session:
                spec = JobSpec(job.destination, "thread_link", {"event_id": event.id, "service": service})
                enqueue(session, spec, incident.id, ordering_key=f"{job.destination}:{incident.id}:thread_link")

    def _find_or_create(
        self,
        client: PagerDutyClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        service: str,
        thread_url: str | None,
    ) -> PagerDutyLink | None:
        """Rule 8: a create whose outcome is unknown (an earlier try left; its answer never came back) is
        settled by looking the incident up by its incident_key, never by creating again blindly, and an
        incident that ended is looked for but never paged anew."""
        pd_service = mapping.pd_service_for(service, config.custom.service_mappings, config.custom.service_id)
        if not pd_service:
            raise GiveUp(
                f"no PagerDuty service for '{service}': map it (im connector map-service {name} "
                f"--im-service {service} --pd-service PXXXXXX) or set a default service_id"
            )
        key = incident_key(name, incident.number, service)
        tried = f"pd-create:{name}:{incident.id}:{service}"
        ended = incident.status in ("resolved", "closed")
        remote = (
            client.find_incident_by_key(key, service_id=pd_service) if ended or outbox.step_done(self.im.store, tried) else None
        )
        if remote is None:
            if ended:
                return None
            client.ready()  # a wait for the turn comes before the note that the call is under way
            outbox.record_step(self.im.store, tried)  # before the call: from here on its outcome may be unknown
            remote = client.create_incident(
                title=incident.title,
                service_id=pd_service,
                urgency=mapping.urgency_for(incident.severity, config.custom.urgency_mapping),
                incident_key=key,
                details=self._details(config, incident, thread_url),
                escalation_policy_id=config.custom.escalation_mappings.get(service) or config.custom.escalation_policy_id,
                from_email=self._from(client, incident.declared_by),
            )
        outbox.record_step(self.im.store, pushed_step(name, remote.id, "triggered"))
        return self._save_link(name, incident.number, service, remote)

    def _thread_link(
        self,
        client: PagerDutyClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        event: TimelineEvent,
        job: OutboxJob,
    ) -> None:
        url = self.im.link_url(incident, "slack")
        if url is None:
            raise RetryLater("the Slack thread is not posted yet")  # how often, and how long: THREAD_LINK_RETRY
        link = self._link(name, incident.number, job.payload["service"])
        if link and link.pd_incident_id:
            self._post_note(
                client, name, incident, link.pd_incident_id, f"Slack thread: {url}", None, step=f"pd-thread-link:{name}"
            )

    def _status(
        self,
        client: PagerDutyClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        event: TimelineEvent,
        job: OutboxJob,
    ) -> None:
        verb, note = event.data.get("verb"), event.data.get("note")
        if verb == "reopen":
            self._reopen(client, name, config, incident, event)
            return
        target = mapping.TO_PAGERDUTY_STATUS[event.data["to"]]
        if verb == "resolve" and not config.custom.auto_resolve:
            return  # resolved here, left to people in PagerDuty until the incident is closed
        for link in self._links(name, incident.number):
            self._push_status(client, name, incident, link, target, resolution=note, actor=event.actor)

    def _push_status(
        self,
        client: PagerDutyClient,
        name: str,
        incident: Incident,
        link: PagerDutyLink,
        target: str,
        *,
        resolution: str | None,
        actor: str | None,
    ) -> None:
        """One PagerDuty incident to `target`, unless it is there already or cannot go there: a resolved
        one cannot be reopened, and the REST API has no "unacknowledge" (triggered)."""
        if not link.pd_incident_id or not _push_needed(link, target):
            if link.pd_incident_id and link.status == target:
                outbox.record_step(self.im.store, pushed_step(name, link.pd_incident_id, target))  # where im wants it
            return
        remote = client.update_incident(
            link.pd_incident_id,
            status=target,
            resolution=resolution if target == "resolved" else None,
            from_email=self._from(client, actor) if actor else None,
        )
        outbox.record_step(self.im.store, pushed_step(name, remote.id, target))
        self._save_link(name, incident.number, link.service, remote)

    def _reopen(
        self, client: PagerDutyClient, name: str, config: PagerDutyConfig, incident: Incident, event: TimelineEvent
    ) -> None:
        """PagerDuty cannot reopen a resolved incident: page again with a new incident (keyed by this reopen's
        generation), and say so. As with creates (rule 8), a try whose outcome is unknown is settled by the
        key, and an incident that ended since is looked for, brought to im's state, never paged anew."""
        ended = incident.status in ("resolved", "closed")
        for link in self._links(name, incident.number):
            if link.status != "resolved":
                continue
            key = incident_key(name, incident.number, link.service, generation=event.id or 1)
            tried = f"pd-reopen:{name}:{event.id}:{link.service}"
            remote = (
                client.find_incident_by_key(key, service_id=link.pd_service_id)
                if ended or outbox.step_done(self.im.store, tried)
                else None
            )
            if remote is None:
                if ended:
                    continue
                client.ready()  # a wait for the turn comes before the note that the call is under way
                outbox.record_step(self.im.store, tried)  # before the call: from here on its outcome may be unknown
                remote = client.create_incident(
                    title=incident.title,
                    service_id=link.pd_service_id,
                    urgency=mapping.urgency_for(incident.severity, config.custom.urgency_mapping),
                    incident_key=key,
                    details=f"Reopened in im: {event.data.get('note') or ''}\n\n"
                    + self._details(config, incident, self.im.link_url(incident, "slack")),
                    escalation_policy_id=config.custom.escalation_mappings.get(link.service)
                    or config.custom.escalation_policy_id,
                    from_email=self._from(client, event.actor),
                )
            outbox.record_step(self.im.store, pushed_step(name, remote.id, "triggered"))
            previous = link.pd_incident_number
            link = self._save_link(name, incident.number, link.service, remote, replace=True)
            self.im.incidents.record(
                incident.number,
                "link",
                f"PagerDuty cannot reopen a resolved incident: triggered PagerDuty #{link.pd_incident_number} "
                f"on {link.pd_service_id} ({link.service}) in place of #{previous}",
                actor=connector_actor(name),
                context={"connector": name, "pd_incident_id": link.pd_incident_id},
                once_key=f"pd-link:{name}:{link.pd_incident_id}",
            )
            target = mapping.TO_PAGERDUTY_STATUS[incident.status]
            if target != "resolved" or config.custom.auto_resolve:
                self._push_status(client, name, incident, link, target, resolution=incident.resolution, actor=None)

    def _note(
        self,
        client: PagerDutyClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        event: TimelineEvent,
        job: OutboxJob,
    ) -> None:
        with self.im.store.read() as session:
            who = self.im.display_name(session, event.actor)
        text = event.data.get("note") if event.kind == "status" else event.text
        content = f"{text} ({who}){OUR_NOTE_MARK}"
        for link in self._links(name, incident.number):
            if link.pd_incident_id:
                self._post_note(
                    client, name, incident, link.pd_incident_id, content, event.actor, step=f"pd-note:{name}:{event.id}"
                )

    def _post_note(
        self,
        client: PagerDutyClient,
        name: str,
        incident: Incident,
        pd_incident_id: str,
        content: str,
        actor: str | None,
        *,
        step: str,
    ) -> None:
        """One note on one PagerDuty incident, recorded as a step: when a later link fails and the job is
        retried, the incidents that have the note already do not get it twice. A try whose outcome is
        unknown (answered late, or not at all) is settled by looking for the note among the incident's
        notes (the same content, not already known as another step's) before posting it again."""
        step = f"{step}:{pd_incident_id}"
        if outbox.step_done(self.im.store, step):
            return
        tried = f"tried:{step}"
        note = None
        if outbox.step_done(self.im.store, tried):
            with self.im.store.read() as session:
                known = set(
                    session.exec(select(PagerDutyNoteSent.note_id).where(PagerDutyNoteSent.incident_id == incident.number))
                )
            note = next((n for n in client.list_notes(pd_incident_id) if n.content == content and n.id not in known), None)
        if note is None:
            client.ready()  # a wait for the turn comes before the note that the call is under way
            outbox.record_step(self.im.store, tried)  # before the call: from here on its outcome may be unknown
            note = client.add_note(pd_incident_id, content, from_email=self._from(client, actor) if actor else None)
        outbox.record_step(self.im.store, step, note.id)
        with self.im.store.transaction() as session:
            if session.get(PagerDutyNoteSent, note.id) is None:
                session.add(PagerDutyNoteSent(note_id=note.id, connector=name, incident_id=incident.number))

    def _urgency(
        self,
        client: PagerDutyClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        event: TimelineEvent,
        job: OutboxJob,
    ) -> None:
        urgency = mapping.urgency_for(event.data["to"], config.custom.urgency_mapping)
        for link in self._links(name, incident.number):
            if link.pd_incident_id and link.status != "resolved" and link.urgency != urgency:
                remote = client.update_incident(link.pd_incident_id, urgency=urgency, from_email=self._from(client, event.actor))
                self._save_link(name, incident.number, link.service, remote)

    # -- helpers -----------------------------------------------------------------------------
    def _from(self, client: PagerDutyClient, actor: str) -> str | None:
        """The acting person's email when PagerDuty knows them, else the connector's from_email."""
        email = self.im.look_up_email(actor)
        if email and users.is_pagerduty_user(client, email):
            return email
        return None  # the client falls back on the connector's from_email

    def _details(self, config: PagerDutyConfig, incident: Incident, thread_url: str | None) -> str:
        view = self.im.describe(incident)
        lines = [
            f"{incident.ref} ({incident.severity}) declared in im by {view.declared_by}",
            f"Services: {', '.join(incident.services)}",
        ]
        if incident.description:
            lines += ["", incident.description]
        if thread_url:
            lines += ["", f"Slack thread: {thread_url}"]
        fields = {
            "id": incident.ref,
            "title": incident.title,
            "severity": incident.severity,
            "services": ", ".join(incident.services),
            "description": incident.description or "",
            "status": incident.status,
            "declared_by": view.declared_by,
            **incident.fields,
        }
        for im_field, pd_field in config.custom_field_mappings.items():
            if fields.get(im_field):
                lines.append(f"{pd_field.removeprefix('custom_details.')}: {fields[im_field]}")
        return "\n".join(lines)

    def _link(self, name: str, incident_id: int, service: str) -> PagerDutyLink | None:
        with self.im.store.read() as session:
            return links.for_service(session, name, incident_id, service)

    def _links(self, name: str, incident_id: int) -> list[PagerDutyLink]:
        with self.im.store.read() as session:
            return links.for_incident(session, incident_id, name)

    def _save_link(
        self, name: str, incident_id: int, service: str, remote: PDIncident, *, replace: bool = False
    ) -> PagerDutyLink:
        with self.im.store.transaction() as session:
            return links.upsert(session, name, incident_id, service, remote_from_rest(remote), replace=replace)

    def _announce_link(self, name: str, incident: Incident, link: PagerDutyLink, what: str) -> None:
        self.im.incidents.record(
            incident.number,
            "link",
            f"PagerDuty incident #{link.pd_incident_number} {what} on {link.pd_service_id} ({link.service})",
            actor=connector_actor(name),
            context={"connector": name, "pd_incident_id": link.pd_incident_id, "url": link.html_url},
            once_key=f"pd-link:{name}:{link.pd_incident_id}",
        )


def _push_needed(link: PagerDutyLink, target: str) -> bool:
    """Whether bringing the linked PagerDuty incident to `target` takes a call (see _push_status)."""
    return bool(link.pd_incident_id) and link.status not in (target, "resolved") and target != "triggered"
