"""PagerDuty Webhooks v3 in: `POST /connectors/{name}/webhook`.

Before anything else, the source address is checked against IM_WEBHOOK_ALLOWED_NETWORKS (403) and the
delivery against the connector's rate cap (429 with Retry-After); see bot/connectors/webhook_guard.py.
Then the endpoint checks the signature on the raw body against every secret (401, nothing stored, when
none matches), parses the envelope (400 with the reason when it is not an event: PagerDuty would retry
a 5xx for 48 hours), stores the delivery under its event id (a redelivery is answered 200 and does
nothing) together with an outbox job, and answers 202. A worker applies it afterwards.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Im
from bot.clock import as_utc, utcnow
from bot.connectors import secrets
from bot.connectors.models import Connector
from bot.connectors.webhook_guard import WebhookGuard
from bot.domain.errors import InvalidInput
from bot.domain.incidents import Actor
from bot.domain.models import OutboxJob
from bot.domain.outbox import JobSpec, enqueue_driver, job_values
from bot.store import note_enqueued
from bot.workers import GiveUp, JobKind, RetryLater, kind_table
from integrations.pagerduty import links, users
from integrations.pagerduty.api.errors import PagerDutyError, RateLimitedError, UnavailableError
from integrations.pagerduty.api.models import Reference, User
from integrations.pagerduty.api.webhook_models import (
    IncidentData,
    IncidentNoteData,
    InvalidWebhookPayload,
    WebhookEvent,
    parse_event,
)
from integrations.pagerduty.api.webhook_signature import verify
from integrations.pagerduty.apply import INBOUND_PREFIX as INBOUND_PREFIX  # the inbound destination, as plugin.py knows it
from integrations.pagerduty.apply import SETTLE, RemoteApplier, Report, agent_actor, inbound_destination
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.links import RemoteIncident, remote_from_rest
from integrations.pagerduty.outbound import OUR_NOTE_MARK
from integrations.pagerduty.registry import ConnectorNotFound, ConnectorRegistry
from integrations.pagerduty.tables import PagerDutyNoteSent, WebhookDelivery

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at runtime
WEBHOOK = "webhook"  # the one job kind of an inbound destination: apply a stored delivery


class WebhookReceiver:
    def __init__(self, im: Im, registry: ConnectorRegistry) -> None:
        self.im = im
        self.registry = registry
        self.guard = WebhookGuard.from_settings(im.settings)

    def route(self) -> Route:
        return Route("/connectors/{name}/webhook", self.endpoint, methods=["POST"])

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        refused = self._refused(name, request)
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        status, answer = await run_in_threadpool(self.receive, name, body, request.headers.get("x-pagerduty-signature"))
        return JSONResponse(answer, status_code=status)

    def _refused(self, name: str, request: Request) -> Response | None:
        """The source allowlist, then the connector's rate cap: before the body is even read."""
        peer = request.client.host if request.client else None
        refusal = self.guard.check(name, peer, request.headers.get("x-forwarded-for"))
        if refusal is None:
            return None
        if refusal.status == 403:
            log.warning("connector %s: webhook from %s refused (IM_WEBHOOK_ALLOWED_NETWORKS)", name, peer)
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        return JSONResponse({"error": refusal.error}, status_code=refusal.status, headers=headers)

    def _signed(self, name: str, body: bytes, signature: str | None) -> bool:
        """Checked against the cached secrets first; on a mismatch, against the stored ones (a secret
        changed since), so only forged or stale deliveries pay for the database read."""
        if verify(body, signature, self.registry.cached_webhook_secrets(name)):
            return True
        return verify(body, signature, self.registry.cached_webhook_secrets(name, fresh=True))

    def receive(self, name: str, body: bytes, signature: str | None) -> tuple[int, dict[str, object]]:
        try:
            if not self._signed(name, body, signature):
                log.warning("connector %s: PagerDuty webhook refused (401): invalid signature", name)
                return 401, {"error": "invalid signature"}
        except ConnectorNotFound:
            return 404, {"error": f"no connector named {name}"}
        except secrets.SecretError:
            log.error("connector %s: webhook secret cannot be opened (IM_SECRET_KEY?)", name)
            return 503, {"error": "webhook secret unavailable"}
        try:
            event = parse_event(body)
        except InvalidWebhookPayload as exc:
            log.warning("connector %s: webhook refused (400): %s", name, exc.reason)
            return 400, {"error": exc.reason}
        destination = inbound_destination(name)
        delivery = {
            "connector": name,
            "event_id": event.id,
            "event_type": event.event_type,
            "occurred_at": as_utc(event.occurred_at),
            "received_at": utcnow(),
            "body": body.decode("utf-8", "replace"),
        }
        ordering_key = f"{destination}:{event.incident_id or '-'}"  # the im incident is known once it is applied
        try:
            # plain Core (no ORM unit of work): this endpoint's whole job is to store fast and answer
            if self.im.store.is_sqlite:  # straight to the driver (bot/store_driver.py): 2.5x less CPU than Core
                with self.im.store.driver_write() as write:
                    delivery_id = write.insert(DELIVERIES, delivery, returning="id")
                    enqueue_driver(
                        write, JobSpec(destination, WEBHOOK, {"delivery_id": delivery_id}), None, ordering_key=ordering_key
                    )
            else:
                with self.im.store.single_statement() as conn:  # one statement, its own transaction
                    conn.execute(_STORE, {**delivery, **_job_params(destination, ordering_key)})
                    note_enqueued(conn)
        except IntegrityError:
            log.info("connector %s: PagerDuty webhook %s %s is a duplicate", name, event.event_type, event.id)
            return 200, {"status": "duplicate", "event_id": event.id}
        log.info("connector %s: PagerDuty webhook %s %s accepted", name, event.event_type, event.id)
        return 202, {"status": "accepted", "event_id": event.id}


def _job_params(destination: str, ordering_key: str) -> dict[str, object]:
    values = job_values(JobSpec(destination, WEBHOOK), None, ordering_key)
    # str(): a StrEnum (the status) bound as its value, as the ORM binds it
    return {
        f"job_{column}": str(value) if isinstance(value, str) else value
        for column, value in values.items()
        if column not in ("payload", "incident_id")
    }


# PostgreSQL: the delivery and its job in one statement, committed as it returns: one round trip (other
# replicas' workers are told after it, by the store's Notifier: a NOTIFY in this transaction would
# serialise every ingest commit on PostgreSQL's notify lock)
_JOB_COLUMNS = ("destination", "kind", "ordering_key", "status", "attempts", "available_at", "created_at")
_STORE = text(
    "WITH delivery AS ("
    " INSERT INTO webhook_delivery (connector, event_id, event_type, occurred_at, received_at, body)"
    " VALUES (:connector, :event_id, :event_type, :occurred_at, :received_at, :body) RETURNING id)"
    f" INSERT INTO outbox_job ({', '.join(_JOB_COLUMNS)}, payload)"
    f" SELECT {', '.join(':job_' + c for c in _JOB_COLUMNS)}, json_build_object('delivery_id', delivery.id) FROM delivery"
)


def remote_from_webhook(data: IncidentData, occurred_at: datetime) -> RemoteIncident:
    """Every incident event carries the incident as it was at `occurred_at`, its status included."""
    return RemoteIncident(
        id=data.id,
        number=data.number,
        title=data.title or "",
        status=data.status,
        urgency=data.urgency,
        service_id=data.service.id if data.service else "",
        service_name=data.service.summary if data.service else None,
        html_url=data.html_url,
        incident_key=data.incident_key,
        assignees=[(a.id, a.summary) for a in data.assignees],
        changed_at=occurred_at,
        created_at=data.created_at,
        as_of=occurred_at,
    )


class WebhookProcessor:
    """The worker side: apply one stored delivery."""

    def __init__(self, im: Im, registry: ConnectorRegistry) -> None:
        self.im = im
        self.registry = registry
        self.applier = RemoteApplier(im)
        self.kinds = kind_table(JobKind(WEBHOOK, self._webhook), JobKind(SETTLE, self._settle))  # default retry policy

    def _webhook(self, job: OutboxJob) -> None:
        """A job that can never succeed (no delivery, a body we cannot read, input the domain refuses) is
        given up at once: retrying it would only hold back the jobs queued behind it for its incident."""
        delivery_id = job.payload.get("delivery_id") if isinstance(job.payload, dict) else None
        if not isinstance(delivery_id, int):
            raise GiveUp("the job names no stored webhook delivery")
        with self.im.store.read() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise GiveUp("the stored webhook delivery is gone")
        try:
            # surrogatepass: a stored lone surrogate reaches parse_event, which refuses it with a reason
            event = parse_event(delivery.body.encode("utf-8", "surrogatepass"))
        except InvalidWebhookPayload as exc:
            raise GiveUp(f"the stored webhook body cannot be read: {exc.reason}") from None
        try:
            outcome = self.apply(delivery.connector, event)
        except ConnectorNotFound:
            outcome = "ignored: connector removed"
        except InvalidInput as exc:
            raise GiveUp(f"refused: {exc}") from None
        with self.im.store.transaction() as session:
            row = session.get(WebhookDelivery, delivery.id)
            if row is not None:
                row.outcome, row.processed_at = outcome, utcnow()
                session.add(row)

    def _settle(self, job: OutboxJob) -> None:
        """Reports held while im's changes were on their way (apply.py): read each linked PagerDuty incident
        afresh now that they are there, and take in what is new."""
        name = job.destination.split(":", 1)[1]
        try:
            connector = self.registry.get(name)
        except ConnectorNotFound:
            return
        config = self.registry.config(connector)
        if not config.inbound or job.incident_id is None:
            return
        with self.im.store.read() as session:
            held = [link for link in links.for_incident(session, job.incident_id, name) if link.pd_incident_id]
        try:
            with client_for(self.registry, connector, admit=True, max_attempts=2, max_wait=2.0) as client:
                for link in held:
                    remote = remote_from_rest(client.get_incident(link.pd_incident_id or ""))
                    changed = remote.changed_at.isoformat() if remote.changed_at else ""
                    key = f"pd-settle:{name}:{remote.id}:{remote.status}:{changed}"
                    actor = agent_actor(None, "PagerDuty")
                    self.applier.settle(Report(name, config, remote, key, actor, remote.changed_at), link)
        except (RateLimitedError, UnavailableError) as exc:
            raise RetryLater(exc.user_message, delay=exc.retry_after, rate_limited=isinstance(exc, RateLimitedError)) from None
        except PagerDutyError as exc:
            raise GiveUp(exc.user_message) from None
        except secrets.SecretError as exc:
            raise GiveUp(str(exc)) from None

    def apply(self, name: str, event: WebhookEvent) -> str:
        connector = self.registry.get(name)
        config = self.registry.config(connector)
        if event.event_type == "pagey.ping":
            return "ping received"
        if not config.inbound:
            return "ignored: connector is outbound-only"
        actor = agent_actor(event.agent.id if event.agent else None, event.agent.summary if event.agent else None)
        at: datetime = as_utc(event.occurred_at)
        key = f"pd-event:{name}:{event.id}"
        if isinstance(event.data, IncidentNoteData):
            return self._annotated(name, event.data, actor, at, key)
        if not isinstance(event.data, IncidentData):
            return f"ignored: {event.event_type} is not used"
        report = Report(name, config, remote_from_webhook(event.data, at), key, actor, at)
        link, created = self.applier.ensure_incident(report)
        if link is None:
            return created or "ignored: no incident"
        kind = event.event_type.removeprefix("incident.")
        # whatever the event, its status is the incident's at that time: applied, unless we know newer
        outcome = self.applier.apply_status(report, link, note="Reopened in PagerDuty" if kind == "reopened" else None)
        owner = self._new_owner(kind, event, outcome)
        if kind in ("escalated", "reassigned"):
            outcome = f"{self.applier.apply_assignment(report, link, kind)}; {outcome}"
        if owner is not None:
            person = users.person_ref(self.im, owner.id, owner.summary, lambda uid: self._user(connector, uid))
            outcome = f"{outcome}; {self.applier.apply_owner(report, link, person, at=at, key=f'{key}:owner')}"
        return f"{created}; {outcome}" if created else outcome

    @staticmethod
    def _new_owner(kind: str, event: WebhookEvent, status_outcome: str) -> Reference | None:
        """Who PagerDuty now has on it: the first assignee of a reassignment or escalation, or whoever
        acknowledged. The echo of an acknowledgement made in im (no change here) names nobody new."""
        data = event.data
        if kind in ("reassigned", "escalated") and isinstance(data, IncidentData) and data.assignees:
            return data.assignees[0]
        acknowledged_here = kind == "acknowledged" and not status_outcome.startswith(("no change", "ignored", "partial", "held"))
        if acknowledged_here and event.agent is not None and event.agent.type in (None, "user_reference", "user"):
            return event.agent
        return None

    def _user(self, connector: Connector, user_id: str) -> User | None:
        """`GET /users/{id}` (cached) for a user im does not know yet; PagerDuty away: retried later."""
        try:
            with client_for(self.registry, connector, max_attempts=2, max_wait=2.0) as client:
                return users.user_for_id(client, user_id)
        except (RateLimitedError, UnavailableError) as exc:
            raise RetryLater(exc.user_message, delay=exc.retry_after) from None
        except (PagerDutyError, secrets.SecretError):
            return None  # known by id and name only; the email may come with a later report

    def _annotated(self, name: str, note: IncidentNoteData, actor: Actor, at: datetime, key: str) -> str:
        link = self.applier.find_link(name, note.incident.id)
        if link is None:
            return "ignored: note on an incident we do not know"
        with self.im.store.read() as session:
            if session.get(PagerDutyNoteSent, note.id) is not None:
                return "no change (our own note)"
        if note.content.endswith(OUR_NOTE_MARK):
            return "no change (our own note, reported before its answer was recorded)"
        change = self.im.incidents.add_note(
            link.incident_id, note.content, actor=actor, at=at, once_key=key, context={"connector": name}
        )
        return "note added" if change.changed else "no change (seen before)"
