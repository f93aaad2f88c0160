"""The seed's "management notification for critical incidents": every SEV-1 (declared so, or raised to it
later) is told once to the channels and people of IM_MANAGEMENT_NOTIFY, with the incident's link."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.domain.models import Incident, OutboxJob, Severity, TimelineEvent
from bot.domain.outbox import JobSpec, Subscriber
from bot.slack import render
from bot.slack.subscriber import DESTINATION, slack_links
from bot.workers import GiveUp

if TYPE_CHECKING:
    from bot.slack.delivery import SlackDelivery

KIND = "management"


def management_jobs(session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]:
    """One notice per incident, when it first becomes SEV-1 (lowered and raised again: no second one);
    never for a drill (a game day must not wake management)."""
    if incident.drill:
        return []
    became = (event.kind == "declared" and incident.severity == Severity.SEV1) or (
        event.kind == "severity" and event.data.get("to") == Severity.SEV1
    )
    if not became:
        return []
    earlier = session.exec(
        select(OutboxJob.id).where(
            OutboxJob.destination == DESTINATION, OutboxJob.kind == KIND, col(OutboxJob.incident_id) == incident.id
        )
    ).first()
    return [] if earlier is not None else [JobSpec(DESTINATION, KIND, {"event_id": event.id})]


def subscriber(targets: tuple[str, ...]) -> Subscriber | None:
    return management_jobs if targets else None


class ManagementNotice:
    """Delivers a management job: a message in each channel, a direct message to each person, each once
    (a retry after one target failed does not repeat the others)."""

    def __init__(self, delivery: SlackDelivery) -> None:
        self.delivery = delivery

    def __call__(self, job: OutboxJob) -> None:
        store = self.delivery.store
        with store.read() as session:
            event = session.get(TimelineEvent, job.payload["event_id"])
            incident = session.get(Incident, event.incident_id) if event else None
            if event is None or incident is None:
                raise GiveUp(f"timeline event {job.payload['event_id']} is gone")
            who = render.actor_mention(event.actor, self.delivery.im.display_name(session, event.actor))
            thread_url = next((link.url for link in slack_links(session, incident)), None)
        text = render.management_text(incident, thread_url, who, raised=event.kind == "severity")
        for target in self.delivery.settings.management_notify:
            step = f"slack-management:{incident.id}:{target}"
            if target[0] in "UW":
                self.delivery.dm_once(step, target, text)
            else:
                self.delivery._post_once(step, channel=target, text=text)
