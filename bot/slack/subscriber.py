"""Hooks the Slack adapter into the domain: every timeline step becomes a Slack delivery job."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.app import Im
from bot.domain.models import Incident, TimelineEvent
from bot.domain.outbox import JobSpec, Subscriber
from bot.domain.views import ExternalLink
from bot.slack.models import SlackThread, SlackUser

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


def slack_email(session: Session, actor: str) -> str | None:
    if not actor.startswith("slack:"):
        return None
    user = session.get(SlackUser, actor.split(":", 1)[1])
    return user.email if user else None


def slack_links(session: Session, incident: Incident) -> list[ExternalLink]:
    thread = session.get(SlackThread, incident.id)
    return _thread_links(thread) if thread is not None else []


def slack_links_bulk(session: Session, incident_ids: list[int]) -> dict[int, list[ExternalLink]]:
    threads = session.exec(select(SlackThread).where(col(SlackThread.incident_id).in_(incident_ids))).all()
    return {thread.incident_id: _thread_links(thread) for thread in threads}


def _thread_links(thread: SlackThread) -> list[ExternalLink]:
    if not thread.ts:
        return []
    url = f"https://slack.com/archives/{thread.channel}/p{thread.ts.replace('.', '')}"
    return [ExternalLink(system="slack", label="Slack thread", url=url)]


def install(im: Im, subscribers: list[Subscriber]) -> None:
    im.name_providers.append(slack_display_name)
    im.email_providers.append(slack_email)
    im.link_providers.append(slack_links)
    im.bulk_link_providers.append(slack_links_bulk)
    if im.settings.slack_bot_token is not None:
        subscribers.append(slack_jobs)
