"""Hooks the Slack adapter into the domain: every timeline step becomes a Slack delivery job."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session, col, select

from bot.app import Im, PersonCheck, RuntimeParts
from bot.domain.errors import DomainError
from bot.domain.models import Incident, TimelineEvent
from bot.domain.outbox import JobSpec, Subscriber
from bot.domain.people import Person, PersonRef
from bot.domain.views import ExternalLink
from bot.slack.links import thread_url
from bot.slack.models import SlackThread, SlackUser
from bot.store import Store

DESTINATION = "slack"


def slack_jobs(session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]:
    jobs = [JobSpec(DESTINATION, "timeline_event", {"event_id": event.id})]
    if event.kind == "owner" and event.data.get("person_id") and not _took_it(session, event):
        # the new owner is told directly, once per change of owner (not who took it themselves)
        jobs.append(JobSpec(DESTINATION, "dm", {"event_id": event.id}))
    return jobs


def _took_it(session: Session, event: TimelineEvent) -> bool:
    person = session.get(Person, event.data["person_id"])
    return person is not None and person.slack_user_id is not None and event.actor == f"slack:{person.slack_user_id}"


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
    return [ExternalLink(system="slack", label="Slack thread", url=thread_url(thread.channel, thread.ts))]


def slack_person_check(store: Store) -> PersonCheck:
    """Someone Slack told us has left the workspace cannot be given an incident (a local read)."""

    def check(ref: PersonRef) -> None:
        if not ref.slack_user_id:
            return
        with store.read() as session:
            user = session.get(SlackUser, ref.slack_user_id)
        if user is not None and user.deleted:
            raise DomainError(f"{user.real_name or user.name or user.user_id} has left the workspace")

    return check


def install(im: Im, subscribers: list[Subscriber]) -> None:
    im.person_checks.append(slack_person_check(im.store))
    im.name_providers.append(slack_display_name)
    im.email_providers.append(slack_email)
    im.link_providers.append(slack_links)
    im.bulk_link_providers.append(slack_links_bulk)
    if im.settings.slack_bot_token is not None:
        subscribers.append(slack_jobs)
        from bot.slack.management import subscriber as management

        if notices := management(im.settings.management_notify):
            subscribers.append(notices)  # after slack_jobs: the thread it links to is posted first
        im.runtime_hooks.append(lambda runtime: runtime_hook(im, runtime))


def runtime_hook(im: Im, runtime: RuntimeParts) -> None:
    """Admins named by user group are checked against the members the workspace last read; those
    are read in the background: on start, then every 10 minutes."""
    delivery = runtime.deliveries.get("slack")
    if delivery is not None:
        im.email_lookups.append(delivery.email_of)
    workspace = getattr(runtime, "slack_workspace", None)  # made by `im serve` with its Slack client
    if workspace is None:
        return
    im.incidents.policy = replace(im.incidents.policy, group_members=workspace.members)
    if runtime.scheduler_enabled:
        from bot.scheduler import Scheduler
        from bot.slack.workspace import Starter

        runtime.background += [Starter(workspace), Scheduler([workspace.periodic()])]
