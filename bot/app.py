"""The running app as commands and adapters see it: settings, store, the incident service, and what
adapters contribute (names, emails and links of people and incidents in their systems)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session, col, select

import bot.sla as sla
from bot.clock import utcnow
from bot.config import Settings
from bot.domain import outbox
from bot.domain.gameday import DrillHooks
from bot.domain.incidents import IncidentService
from bot.domain.models import Incident, JobStatus, OutboxJob
from bot.domain.people import IncidentRole, Person, PersonRef
from bot.domain.texts import actor_fallback_name, dead_job_problem
from bot.domain.views import ExternalLink, IncidentView
from bot.store import Store

if TYPE_CHECKING:
    from bot.reports.facts import FactsProvider
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
    email_lookups: list[Callable[[str], str | None]] = field(default_factory=list)  # remote, slow: workers only
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
        return actor_fallback_name(actor)

    def actor_email(self, session: Session, actor: str) -> str | None:
        for provider in self.email_providers:
            email = provider(session, actor)
            if email:
                return email
        return None

    def look_up_email(self, actor: str) -> str | None:
        """`actor_email`, asking the actor's own system when no email is known here yet (Slack's users.info):
        a worker acting for someone must not depend on whether another worker learnt them first."""
        with self.store.read() as session:
            known = self.actor_email(session, actor)
        if known:
            return known
        for lookup in self.email_lookups:
            email = lookup(actor)
            if email:
                return email
        return None

    def sla_targets(self) -> dict[str, dict[str, int]]:
        """The SLA targets in force: the settings' and every connector's, the tightest winning."""
        own = sla.per_kind(self.settings.sla_ack, self.settings.sla_resolve)
        return sla.tightest([own, *(provider() for provider in self.sla_target_providers)])

    def links(self, session: Session, incident: Incident) -> list[ExternalLink]:
        """The incident's links elsewhere (its chat thread, remote incidents, runbooks): `describe`'s links
        without the rest of its view (for a worker that wants one link, many times a second in a storm)."""
        return [link for provider in self.link_providers for link in provider(session, incident)]

    def link_url(self, incident: Incident, system: str) -> str | None:
        """The address of the incident's first link into `system` (its Slack thread, once posted), if any."""
        with self.store.read() as session:
            found = [link.url for link in self.links(session, incident) if link.system == system and link.url]
        return found[0] if found else None

    def describe(self, incident: Incident) -> IncidentView:
        with self.store.read() as session:
            links = self.links(session, incident)
            problems = [
                dead_job_problem(job.destination, job.kind, job.attempts, job.last_error)
                for job in outbox.dead_jobs(session, incident.id)
            ]
            declared_by = self.display_name(session, incident.declared_by)
            owner, roles = self.incidents.owner_and_roles(session, incident)
            times = sla.clock_times(session, incident)
        clocks = sla.clocks(times, self.sla_targets(), self.settings.sla_warn_fraction, utcnow())
        return IncidentView.of(
            incident, declared_by=declared_by, links=links, delivery_problems=problems, owner=owner, roles=roles, sla=clocks
        )

    def describe_many(self, incidents: Sequence[Incident]) -> list[IncidentView]:
        """`describe` for a page of incidents in a few queries (per 500), not a few per incident."""
        targets, now = self.sla_targets(), utcnow()
        views: list[IncidentView] = []
        with self.store.read() as session:
            names: dict[str, str] = {}
            for start in range(0, len(incidents), 500):  # bounded IN lists
                page = incidents[start : start + 500]
                ids = [i.number for i in page]
                links: dict[int, list[ExternalLink]] = {}
                for provider in self.bulk_link_providers:
                    for number, found in provider(session, ids).items():
                        links.setdefault(number, []).extend(found)
                problems: dict[int, list[str]] = {}
                for job in _dead_jobs(session, ids):
                    text = dead_job_problem(job.destination, job.kind, job.attempts, job.last_error)
                    problems.setdefault(job.incident_id or 0, []).append(text)
                roles = _roles(session, ids)
                owners = _people(session, {i.owner_id for i in page if i.owner_id})
                for incident in page:
                    if incident.declared_by not in names:
                        names[incident.declared_by] = self.display_name(session, incident.declared_by)
                    clocks = sla.clocks(sla.clock_times(session, incident), targets, self.settings.sla_warn_fraction, now)
                    views.append(
                        IncidentView.of(
                            incident,
                            declared_by=names[incident.declared_by],
                            links=links.get(incident.number, []),
                            delivery_problems=problems.get(incident.number, []),
                            owner=owners.get(incident.owner_id) if incident.owner_id else None,
                            roles=roles.get(incident.number, {}),
                            sla=clocks,
                        )
                    )
        return views


def _dead_jobs(session: Session, incident_ids: list[int]) -> list[OutboxJob]:
    query = select(OutboxJob).where(col(OutboxJob.status) == JobStatus.DEAD, col(OutboxJob.incident_id).in_(incident_ids))
    return list(session.exec(query.order_by(col(OutboxJob.id))))


def _people(session: Session, ids: Collection[int]) -> dict[int, Person]:
    if not ids:
        return {}
    return {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(list(ids)))) if p.id is not None}


def _roles(session: Session, incident_ids: list[int]) -> dict[int, dict[str, Person]]:
    """Each incident's roles (people.roles_of), for many incidents in two queries."""
    rows = session.exec(select(IncidentRole).where(col(IncidentRole.incident_id).in_(incident_ids))).all()
    persons = _people(session, {row.person_id for row in rows})
    found: dict[int, dict[str, Person]] = {}
    for row in rows:
        if row.person_id in persons:
            found.setdefault(row.incident_id, {})[row.role] = persons[row.person_id]
    return found
