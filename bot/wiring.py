"""The composition root: builds the store, the domain service and the adapters that subscribe to it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from bot.config import Settings
from bot.domain import outbox
from bot.domain.incidents import IncidentService
from bot.domain.models import Incident
from bot.domain.outbox import Subscriber
from bot.store import Store
from commands.results import ExternalLink, IncidentView

LinkProvider = Callable[[Session, Incident], list[ExternalLink]]
NameProvider = Callable[[Session, str], str | None]


@dataclass
class Im:
    settings: Settings
    store: Store
    incidents: IncidentService
    outbox_ready: threading.Event = field(default_factory=threading.Event)
    link_providers: list[LinkProvider] = field(default_factory=list)
    name_providers: list[NameProvider] = field(default_factory=list)
    email_providers: list[NameProvider] = field(default_factory=list)
    runtime_hooks: list[Callable[[Any], None]] = field(default_factory=list)  # adapters add routes, deliveries, jobs

    def display_name(self, session: Session, actor: str) -> str:
        for provider in self.name_providers:
            name = provider(session, actor)
            if name:
                return name
        return actor.split(":", 1)[-1]

    def actor_email(self, session: Session, actor: str) -> str | None:
        for provider in self.email_providers:
            email = provider(session, actor)
            if email:
                return email
        return None

    def describe(self, incident: Incident) -> IncidentView:
        with self.store.read() as session:
            links = [link for provider in self.link_providers for link in provider(session, incident)]
            problems = [
                f"{job.destination} {job.kind} failed (attempt {job.attempts}): {job.last_error}"
                for job in outbox.dead_jobs(session, incident.id)
            ]
            declared_by = self.display_name(session, incident.declared_by)
        return IncidentView.of(incident, declared_by=declared_by, links=links, delivery_problems=problems)


def build(settings: Settings, *, migrate: bool = True) -> Im:
    store = Store(settings.database_url)
    if migrate:
        store.upgrade()
    subscribers: list[Subscriber] = []
    service = IncidentService(store, subscribers)
    im = Im(settings=settings, store=store, incidents=service)
    service.after_commit.append(im.outbox_ready.set)

    from bot.connectors.wiring import install as install_connectors
    from bot.slack.subscriber import install as install_slack

    install_slack(im, subscribers)
    install_connectors(im, subscribers)
    return im
