"""PagerDuty jobs of a connector that pages by routing key only: Events API v2 events instead of REST calls.

`PagerDutyDelivery` (outbound.py) hands each job of such a connector here, inside its own error
handling, so retries, dead letters and the SyncRun figures are the same as for REST jobs.

- declare: a `trigger` per covered service, dedup_key `im:<connector>:INC-n:<service>` (the REST path's
  incident_key, so if a REST key is added later its webhooks recognise these incidents as im's own),
  payload.severity mapped from the im severity, the Slack thread in `links`, custom fields in
  `custom_details`. Without a thread yet, the link follows in a second trigger, which PagerDuty files
  into the same open alert.
- Each trigger that pages (declare, reopen) is one timeline step "Sent to PagerDuty by routing key ... dedup
  key ...", not a link: PagerDuty's answer names no incident, so no PagerDuty link row is written and no
  "PagerDuty #n" is shown anywhere (reconciliation and webhooks, which would learn it, need a REST key).
- acknowledge, resolve (and close): `acknowledge` / `resolve` with the same dedup_key; reopen triggers it
  again, which opens a new PagerDuty incident for the key once the old one is resolved.
- Retries are safe: PagerDuty keeps one open alert per dedup_key, so a trigger sent twice (its answer
  lost, then retried) is deduplicated into it, and acknowledge/resolve are idempotent, or ignored for a
  key PagerDuty does not know.
- Notes, urgency changes, reassigning, escalating and paging more responders have no Events API v2
  counterpart: those jobs complete at once as skipped, their reason kept on the job's SyncRun, never
  retried or dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.app import Im
from bot.connectors.models import Connector
from bot.domain.models import Incident, OutboxJob, TimelineEvent
from bot.domain.outbox import JobSpec, enqueue
from bot.pacing import Limit
from bot.workers import GiveUp, RetryLater
from integrations.pagerduty import mapping, outbound
from integrations.pagerduty.api.events import Action, EventsClient, Link, Payload
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.connection import call_recorder, turns_for
from integrations.pagerduty.registry import ConnectorRegistry

log = logging.getLogger(__name__)

SOURCE = "im"
EVENTS_BUDGET = Limit(120, 60)  # PagerDuty takes about 120 events a minute per routing key (IM_RATE_LIMITS=pagerduty-events=N/1m)
NO_EVENTS = "Events API v2 has no {what}; it stays in im (a REST API key would send it)"
SKIPPED = {
    "note": NO_EVENTS.format(what="notes"),
    "urgency": NO_EVENTS.format(what="urgency"),
    "reassign": NO_EVENTS.format(what="assignments"),
    "escalate": NO_EVENTS.format(what="escalation"),
    "page": NO_EVENTS.format(what="responder requests"),
}

# the timeline step of an event sent: not a "link" (Events API v2 answers no incident id, number or URL, so
# im shows no PagerDuty link for it anywhere: root message, status, reports)
SENT_KIND = "paged"

STATUS_ACTIONS: dict[str, Action] = {"mitigated": "acknowledge", "resolved": "resolve", "closed": "resolve"}

EventStep = Callable[[EventsClient, str, PagerDutyConfig, Incident, TimelineEvent, OutboxJob], None]


class EventsDelivery:
    def __init__(self, im: Im, registry: ConnectorRegistry) -> None:
        self.im = im
        self.registry = registry
        self.steps: dict[str, EventStep] = {"create": self._create, "status": self._status, "thread_link": self._thread_link}

    def deliver(self, connector: Connector, config: PagerDutyConfig, job: OutboxJob) -> str | None:
        """Send the job's events -> None, or why it was skipped. PagerDuty's errors are raised as the REST
        client's are (rate limited, unavailable, rejected), for the caller to retry or give up."""
        step = self.steps.get(job.kind)
        if step is None:
            reason = SKIPPED.get(job.kind, f"'{job.kind}' has no Events API v2 counterpart")
            log.info("PagerDuty %s job %s skipped: %s", job.kind, job.id, reason)
            return f"skipped: {reason}"
        with self.im.store.read() as session:
            event = session.get(TimelineEvent, job.payload["event_id"])
            incident = session.get(Incident, event.incident_id) if event else None
        if event is None or incident is None:
            raise GiveUp("the timeline step is gone")
        routing_key = self.registry.routing_key(connector)
        # admitted before it starts (or deferred to the key's next turn), as REST jobs are
        turns = turns_for(self.registry, routing_key, admit=True, name="pagerduty-events", budget=EVENTS_BUDGET)
        with EventsClient(
            routing_key,
            url=config.events_url,
            timeout=float(config.request_timeout),
            on_response=call_recorder(self.im.store, connector.name, turns.hold_off),
            before_request=turns,
        ) as client:
            step(client, connector.name, config, incident, event, job)
        return None

    # -- job kinds ---------------------------------------------------------------------------
    def _create(
        self, client: EventsClient, name: str, config: PagerDutyConfig, incident: Incident, event: TimelineEvent, job: OutboxJob
    ) -> None:
        service = job.payload["service"]
        if incident.status in ("resolved", "closed"):
            return  # ended before PagerDuty was paged: paging now would be wrong (as for REST creates)
        thread_url = self.im.link_url(incident, "slack")
        self._trigger(client, name, config, incident, service, thread_url, once=f"pd-events:{name}:{incident.id}:{service}")
        if incident.status == "mitigated":  # a create requeued after its acknowledge went by
            client.send("acknowledge", outbound.incident_key(name, incident.number, service))
        if not thread_url:
            with self.im.store.transaction() as session:
                enqueue(session, JobSpec(job.destination, "thread_link", {"event_id": event.id, "service": service}), incident.id)

    def _status(
        self, client: EventsClient, name: str, config: PagerDutyConfig, incident: Incident, event: TimelineEvent, job: OutboxJob
    ) -> None:
        verb, target = event.data.get("verb"), event.data["to"]
        if verb == "resolve" and not config.custom.auto_resolve:
            return  # resolved here, left to people in PagerDuty until the incident is closed
        action = STATUS_ACTIONS.get(target)
        for service in self._services(config, incident):
            if verb == "reopen":
                once = f"pd-events:{name}:{incident.id}:{service}:reopen:{event.id}"
                self._trigger(client, name, config, incident, service, self.im.link_url(incident, "slack"), once=once)
            elif action is not None:
                client.send(action, outbound.incident_key(name, incident.number, service))
            # unacknowledge: Events API v2 cannot take an alert back to triggered; nothing is sent

    def _thread_link(
        self, client: EventsClient, name: str, config: PagerDutyConfig, incident: Incident, event: TimelineEvent, job: OutboxJob
    ) -> None:
        url = self.im.link_url(incident, "slack")
        if url is None:
            raise RetryLater("the Slack thread is not posted yet")  # how often, and how long: THREAD_LINK_RETRY
        if incident.status in ("open", "mitigated"):  # only into an open alert: a trigger after a resolve would page again
            self._trigger(client, name, config, incident, job.payload["service"], url, once=None)

    # -- helpers -----------------------------------------------------------------------------
    def _trigger(
        self,
        client: EventsClient,
        name: str,
        config: PagerDutyConfig,
        incident: Incident,
        service: str,
        thread_url: str | None,
        *,
        once: str | None,
    ) -> None:
        key = outbound.incident_key(name, incident.number, service)
        payload = Payload(
            summary=incident.title[:1024],
            source=SOURCE,
            severity=mapping.event_severity_for(incident.severity, config.custom.severity_mapping),
            component=service,
            timestamp=incident.declared_at,
            custom_details=self._details(config, incident),
        )
        links = [Link(href=thread_url, text=f"Slack thread of {incident.ref}")] if thread_url else []
        client.send("trigger", key, payload=payload, links=links)
        if once is not None:
            again = " again" if ":reopen:" in once else ""
            self.im.incidents.record(
                incident.number,
                SENT_KIND,
                f"Sent to PagerDuty{again} by routing key for {service} (Events API v2, dedup key {key}); "
                "PagerDuty does not say which incident it opened, so there is no PagerDuty link",
                actor=outbound.connector_actor(name),
                context={"connector": name, "dedup_key": key, "service": service},
                once_key=once,
            )

    def _details(self, config: PagerDutyConfig, incident: Incident) -> dict[str, Any]:
        """The incident's facts and custom fields; a field named in custom_field_mappings goes under that name."""
        view = self.im.describe(incident)
        details: dict[str, Any] = {
            "incident": incident.ref,
            "severity": incident.severity,
            "services": list(incident.services),
            "declared_by": view.declared_by,
        }
        if incident.description:
            details["description"] = incident.description
        for field, value in incident.fields.items():
            target = config.custom_field_mappings.get(field, field)
            details[target.removeprefix("custom_details.")] = value
        return details

    @staticmethod
    def _services(config: PagerDutyConfig, incident: Incident) -> list[str]:
        return [s for s in incident.services if config.covers(s)]
