"""Hooks the Slack adapter into the domain: every timeline step becomes a Slack delivery job."""

from __future__ import annotations

from sqlmodel import Session

from bot.domain.models import Incident, TimelineEvent
from bot.domain.outbox import JobSpec, Subscriber
from bot.slack.models import SlackUser

DESTINATION = "slack"


def slack_jobs(session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]:
    return [JobSpec(DESTINATION, "timeline_event", {"event_id": event.id})]


def slack_display_name(session: Session, actor: str) -> str | None:
    if not actor.startswith("slack:"):
        return None
    user = session.get(SlackUser, actor.split(":", 1)[1])
    if user is None:
        return None
    return user.real_name or user.name


def install(im, subscribers: list[Subscriber]) -> None:  # type: ignore[no-untyped-def]
    im.name_providers.append(slack_display_name)
    if im.settings.slack_bot_token is not None:
        subscribers.append(slack_jobs)
