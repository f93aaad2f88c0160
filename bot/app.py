"""The running app as commands and adapters see it: settings, store, the incident service, and what
adapters contribute (names, emails and links of people and incidents in their systems)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session

import bot.sla as sla
from bot.clock import utcnow
from bot.config import Settings
from bot.domain import outbox
from bot.domain.gameday import DrillHooks
from bot.domain.incidents import IncidentService
from bot.domain.models import Incident
from bot.domain.people import PersonRef
from bot.domain.views import ExternalLink, IncidentView
from bot.reports.facts import FactsProvider
from bot.store import Store

if TYPE_CHECKING:
    from bot.scheduler import Periodic


class Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class RuntimeParts(Protocol):
    """What an adapter may add to `im serve` (bot/server.py Runtime) from its runtime hook."""

    deliveries: dict[str, Any]  # destination -> its delivery (bot/workers.py)
    extra_routes: list[Any]  # HTTP routes (Starlette's; the core does not import Starlette)
    background: list[Startable]  # started with the workers, stopped with them
    periodic: list[Periodic]  # run by the scheduler of every `im serve` (claimed in the database)
    scheduler_enabled: bool


LinkProvider = Callable[[Session, Incident], list[ExternalLink]]
NameProvider = Callable[[Session, str], str | None]
TargetProvider = Callable[[], sla.Targets]  # a connector's own SLA targets (PagerDuty's sla_mapping)
PersonCheck = Callable[[PersonRef], None]  # raises a DomainError for someone who cannot be named (left, say)
BulkLinkProvider = Callable[[Session, list[int]], dict[int, list[ExternalLink]]]  # incident ids -> their links


@dataclass
class Im:
    settings: Settings
    store: Store
    incidents: IncidentService
    outbox_ready: threading.Event = field(default_factory=threading.Event)
    link_providers: list[LinkProvider] = field(default_factory=list)
    bulk_link_providers: list[BulkLinkProvider] = field(default_factory=list)  # the same links, many incidents a query
    name_providers: list[NameProvider] = field(default_factory=list)
    email_providers: list[NameProvider] = field(default_factory=list)
    sla_target_providers: list[TargetProvider] = field(default_factory=list)
    person_checks: list[PersonCheck] = field(default_factory=list)  # local reads only: they run before the ack
    runtime_hooks: list[Callable[[RuntimeParts], None]] = field(default_factory=list)  # adapters add to `im serve`
    report_facts: list[FactsProvider] = field(default_factory=list)  # adapters' per-incident facts for reports
    drill_hooks: DrillHooks = field(default_factory=DrillHooks)  # what proves each game day hop (bot/domain/gameday.py)

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

    def sla_targets(self) -> dict[str, dict[str, int]]:
        """The SLA targets in force: the settings' and every connector's, the tightest winning."""
        own = sla.per_kind(self.settings.sla_ack, self.settings.sla_resolve)
        return sla.tightest([own, *(provider() for provider in self.sla_target_providers)])

    def describe(self, incident: Incident) -> IncidentView:
        with self.store.read() as session:
            links = [link for provider in self.link_providers for link in provider(session, incident)]
            problems = [
                f"{job.destination} {job.kind} failed (attempt {job.attempts}): {job.last_error}"
                for job in outbox.dead_jobs(session, incident.id)
            ]
            declared_by = self.display_name(session, incident.declared_by)
            owner, roles = self.incidents.owner_and_roles(session, incident)
            times = sla.clock_times(session, incident)
        clocks = sla.clocks(times, self.sla_targets(), self.settings.sla_warn_fraction, utcnow())
        return IncidentView.of(
            incident, declared_by=declared_by, links=links, delivery_problems=problems, owner=owner, roles=roles, sla=clocks
        )
