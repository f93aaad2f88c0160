"""Reconciliation: read what changed in PagerDuty since the last sync and apply the differences.

Heals what webhooks missed. PagerDuty's change log (`/log_entries`, with incidents included) is read in
pages of 100, so 100 changed incidents cost one call however many incidents the account holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from bot.app import Im
from bot.clock import as_utc, utcnow
from bot.connectors.models import Connector
from bot.domain.incidents import parse_ref
from bot.domain.models import JobStatus, OutboxJob
from bot.store import note_enqueued, rows_changed
from integrations.pagerduty import links, users
from integrations.pagerduty.api.errors import PagerDutyError
from integrations.pagerduty.api.models import Incident as PDIncident
from integrations.pagerduty.api.models import User
from integrations.pagerduty.apply import RemoteApplier, Report, agent_actor, waiting_in_outbox
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.links import remote_from_rest
from integrations.pagerduty.outbound import destination
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import PagerDutyLink, SyncRun

FIRST_SYNC_WINDOW = timedelta(days=1)
Progress = Callable[[int, str], None]


@dataclass
class SyncResult:
    seen: int = 0
    changed: int = 0
    errors: int = 0
    error: str | None = None
    duration_ms: float = 0.0
    requeued: int = 0  # dead-lettered outbound jobs given another chance


class Reconciler:
    def __init__(self, im: Im, registry: ConnectorRegistry) -> None:
        self.im = im
        self.registry = registry
        self.applier = RemoteApplier(im)

    def sync(
        self, name: str, *, incident: str | None = None, progress: Progress | None = None, requeue_dead: bool = False
    ) -> SyncResult:
        """Read PagerDuty's changes; with `requeue_dead` (a person ran `connector sync`), also give the
        connector's dead-lettered jobs another chance. The scheduler never requeues: a job that failed
        for good would be retried forever."""
        started = time.monotonic()
        connector = self.registry.get(name)
        config = self.registry.config(connector)
        result = SyncResult()
        until = utcnow()
        result.requeued = self._requeue_dead(name, incident) if requeue_dead else 0
        if not config.inbound:
            self._record(name, result, None)
            return result
        try:
            with client_for(self.registry, connector) as client:
                remotes: Iterable[PDIncident]
                if incident is not None:
                    remotes = [
                        client.get_incident(link.pd_incident_id) for link in self._links(name, incident) if link.pd_incident_id
                    ]
                else:
                    since = as_utc(connector.last_sync_until) if connector.last_sync_until else until - FIRST_SYNC_WINDOW
                    remotes = client.iter_changed_incidents(since=since, until=until)
                for remote in remotes:
                    result.seen += 1
                    if progress:
                        progress(result.seen, f"PagerDuty #{remote.incident_number}")
                    try:
                        if self._apply(name, config, remote, lambda uid: users.user_for_id(client, uid)):
                            result.changed += 1
                    except Exception as exc:  # noqa: BLE001 - one bad incident must not stop the sync
                        result.errors += 1
                        result.error = f"#{remote.incident_number}: {exc}"
        except PagerDutyError as exc:
            result.errors += 1
            result.error = exc.user_message
        result.duration_ms = (time.monotonic() - started) * 1000
        self._record(name, result, until if incident is None and result.error is None else None)
        return result

    def _apply(self, name: str, config: PagerDutyConfig, incident: PDIncident, lookup: Callable[[str], User | None]) -> bool:
        if not config.inbound:
            return False  # outbound-only: PagerDuty's side never flows back
        remote = remote_from_rest(incident)
        key = f"pd-sync:{name}:{remote.id}:{remote.status}:{remote.changed_at.isoformat() if remote.changed_at else ''}"
        report = Report(name, config, remote, key, agent_actor(None, "PagerDuty (sync)"), remote.changed_at)
        link, created = self.applier.ensure_incident(report)
        if link is None:
            return False
        outcome = self.applier.apply_status(report, link)
        owner = self._owner(name, incident, link, report, lookup)
        return bool(created) or not outcome.startswith(("no change", "ignored", "held")) or owner

    def _owner(
        self, name: str, incident: PDIncident, link: PagerDutyLink, report: Report, lookup: Callable[[str], User | None]
    ) -> bool:
        """The first assignee as the owner, as of when PagerDuty assigned them; unless a reassignment
        of ours still waits in the outbox (PagerDuty has not heard of im's newer owner yet)."""
        if (
            not incident.assignments
            or incident.status == "resolved"
            or waiting_in_outbox(self.im, name, link.incident_id, "reassign")
        ):
            return False
        first = incident.assignments[0]
        times = [as_utc(a.at) for a in incident.assignments if a.at is not None]
        at = max(times) if times else report.at
        person = users.person_ref(self.im, first.assignee.id, first.assignee.summary, lookup)
        key = f"pd-sync-owner:{name}:{incident.id}:{first.assignee.id}:{at.isoformat() if at else ''}"
        return not self.applier.apply_owner(report, link, person, at=at, key=key).endswith("no change")

    def _requeue_dead(self, name: str, incident: str | None) -> int:
        query = update(OutboxJob).where(col(OutboxJob.destination) == destination(name), col(OutboxJob.status) == JobStatus.DEAD)
        if incident is not None:
            query = query.where(col(OutboxJob.incident_id) == parse_ref(incident))
        with self.im.store.transaction() as session:
            count = rows_changed(session.execute(query.values(status=JobStatus.PENDING, attempts=0, available_at=utcnow())))
            if count:
                note_enqueued(session)  # due again: the commit wakes the workers, other replicas' too
        return count

    def _links(self, name: str, ref: str) -> list[PagerDutyLink]:
        with self.im.store.read() as session:
            return links.for_incident(session, parse_ref(ref), name)

    def _record(self, name: str, result: SyncResult, until: datetime | None) -> None:
        with self.im.store.transaction() as session:
            row = session.exec(select(Connector).where(Connector.name == name)).first()
            if row is not None:
                if result.error is None:  # "Last Sync" is the last one that worked; a failed one shows as its error
                    row.last_sync_at = utcnow()
                row.last_sync_error = result.error
                if until is not None:
                    row.last_sync_until = until
                session.add(row)
            session.add(
                SyncRun(
                    connector=name, kind="reconcile", ok=result.errors == 0, duration_ms=result.duration_ms, error=result.error
                )
            )
