"""Alert events into incidents, after the intake's commit (a worker runs `apply`), and fixing a wrong
grouping by hand (`merge`, `split`). Incidents change only through IncidentService, as a person's
declare or resolve does, so Slack, PagerDuty and every subscriber follow alike (origin `alert`).

Exactly once under retries and replicas: an intake row's effect is written in the same transaction
that marks it processed (a declaration's through `on_declared`); the alert is unique per (source,
dedup key) and a service's group is one row, so two first alerts racing each other cannot both
declare: the loser's transaction fails on the unique key or finds its group moved, and starts over.
Status changes that follow (acknowledge, resolve) carry once-keys and are re-checked on a retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.clock import as_utc, utcnow
from bot.domain import alerts, runbooks
from bot.domain.alert_models import Alert, AlertBurst, AlertGroup, AlertIntake, AlertSource
from bot.domain.alerts import AlertAction, AlertEvent, AlertStatus, Burst, SourceKind, SourceRules
from bot.domain.errors import DomainError, InvalidInput, InvalidTransition
from bot.domain.incidents import Actor, IncidentService
from bot.domain.models import Incident, Origin, OutboxStep, Severity, Status
from bot.domain.outbox import JobSpec, enqueue
from bot.store import Store

DESTINATION = "alerts"  # outbox destination of alert work: `apply` an intake row, write a `burst` step
APPLY = "apply"
BURST = "burst"
ATTEMPTS = 5  # a lost race (unique key, moved group) starts over at once, this many times
T = TypeVar("T")


class StartOver(Exception):
    """Another worker changed what this one decided on (a service's group): decide again."""


def source_actor(name: str) -> Actor:
    return Actor(Origin.ALERT, f"source/{name}", name)


def rules_of(row: AlertSource) -> SourceRules:
    return SourceRules(
        name=row.name,
        kind=SourceKind(row.kind),
        service=row.service,
        group_window=row.group_window_seconds,
        auto_resolve=row.auto_resolve,
    )


def _locked(session: Session, query: SelectOfScalar[T]) -> SelectOfScalar[T]:
    return query.with_for_update() if session.get_bind().dialect.name == "postgresql" else query


@dataclass(frozen=True)
class Decision:
    """What a trigger does, decided in a transaction; a declaration happens after it, in its own."""

    outcome: str
    declare_over: int | None = None  # declare: the group's incident seen when deciding (None: no group)
    declare: bool = False
    raise_to: tuple[int, str] | None = None  # joined an incident less severe than the alert: (incident, severity)


class AlertFlow:
    def __init__(self, store: Store, incidents: IncidentService, severities: Mapping[str, str]) -> None:
        self.store = store
        self.incidents = incidents
        self.severities = severities

    # -- the worker side ---------------------------------------------------------------------
    def apply(self, intake_id: int) -> str:
        """Apply one received alert event; what happened, in words (stored on the intake row)."""
        for attempt in range(ATTEMPTS):
            try:
                return self._apply(intake_id)
            except (IntegrityError, StartOver):
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _apply(self, intake_id: int) -> str:
        with self.store.read() as session:
            intake = session.get(AlertIntake, intake_id)
            source = session.exec(select(AlertSource).where(AlertSource.name == intake.source)).first() if intake else None
        if intake is None:
            return "ignored: no such intake"
        if source is None:
            return self._finish(intake_id, "ignored: the source was removed")
        rules = rules_of(source)
        event = AlertEvent.from_json(intake.event)
        at = as_utc(intake.received_at)
        if event.action == AlertAction.TRIGGER:
            return self._trigger(intake, rules, event, at)
        if event.action == AlertAction.ACKNOWLEDGE:
            return self._acknowledge(intake, rules, event)
        return self._resolve(intake, rules, event, at)

    def _finish(self, intake_id: int, outcome: str) -> str:
        with self.store.transaction() as session:
            self._processed(session, intake_id, outcome)
        return outcome

    @staticmethod
    def _processed(session: Session, intake_id: int, outcome: str) -> bool:
        """Mark the intake applied, in the transaction of its effect; False when it already was."""
        changed = session.execute(
            update(AlertIntake)
            .where(col(AlertIntake.id) == intake_id, col(AlertIntake.processed_at).is_(None))
            .values(outcome=outcome, processed_at=utcnow())
        )
        return bool(getattr(changed, "rowcount", 0))

    @staticmethod
    def _done_before(session: Session, intake_id: int) -> str | None:
        row = session.exec(_locked(session, select(AlertIntake).where(AlertIntake.id == intake_id))).first()
        return row.outcome if row is not None and row.processed_at is not None else None

    # -- trigger -----------------------------------------------------------------------------
    def _trigger(self, intake: AlertIntake, rules: SourceRules, event: AlertEvent, at: datetime) -> str:
        assert intake.id is not None
        severity = alerts.severity_for(event.severity, self.severities)
        with self.store.transaction() as session:
            before = self._done_before(session, intake.id)
            if before is not None:
                return before
            decision = self._decide(session, intake, rules, event, severity, at)
            if not decision.declare:
                self._processed(session, intake.id, decision.outcome)
        if decision.raise_to is not None:
            incident_id, sev = decision.raise_to
            self.incidents.set_severity(
                incident_id,
                sev,
                actor=source_actor(rules.name),
                context=_context(rules, event),
                once_key=f"alert-sev:{intake.id}",
            )
        if not decision.declare:
            return decision.outcome
        return self._declare(intake, rules, event, severity, at, decision.declare_over)

    def _decide(
        self, session: Session, intake: AlertIntake, rules: SourceRules, event: AlertEvent, severity: str, at: datetime
    ) -> Decision:
        alert = session.exec(
            _locked(session, select(Alert).where(Alert.source == rules.name, Alert.dedup_key == event.dedup_key))
        ).first()
        incident = session.get(Incident, alert.incident_id) if alert else None
        if alert is not None and incident is not None and alerts.is_active(alert.status, incident.status):
            alert.count += 1
            alert.last_at = at
            session.add(alert)
            self._touch_group(session, alert.service, incident.number, at)
            self._burst(session, incident.number, repeated=1)
            return Decision(f"repeat of the alert in {incident.ref} (seen {alert.count} times)")
        if alert is not None and incident is not None and alert.status == AlertStatus.RESOLVED and _active(incident):
            alert.status, alert.count, alert.last_at, alert.resolved_at = AlertStatus.TRIGGERED.value, alert.count + 1, at, None
            session.add(alert)
            self._burst(session, incident.number, repeated=1)
            return Decision(f"the alert fired again in {incident.ref}")
        service = intake.service
        group = session.exec(_locked(session, select(AlertGroup).where(AlertGroup.service == service))).first()
        target = session.get(Incident, group.incident_id) if group else None
        state = alerts.Group(group.incident_id, target.status, as_utc(group.last_alert_at)) if group and target else None
        joined = alerts.joinable(state, at, rules.group_window)
        if joined is None or target is None or group is None:
            return Decision("declare", declare_over=group.incident_id if group else None, declare=True)
        self._place(session, alert, rules, event, target.number, service, severity, at)
        group.last_alert_at = at
        session.add(group)
        self._burst(session, target.number, joined=1)
        more_severe = Severity(severity).rank < Severity(target.severity).rank
        return Decision(f"grouped into {target.ref}", raise_to=(target.number, severity) if more_severe else None)

    def _declare(
        self, intake: AlertIntake, rules: SourceRules, event: AlertEvent, severity: str, at: datetime, over: int | None
    ) -> str:
        assert intake.id is not None
        intake_id = intake.id

        def record(session: Session, incident: Incident) -> None:
            alert = session.exec(
                _locked(session, select(Alert).where(Alert.source == rules.name, Alert.dedup_key == event.dedup_key))
            ).first()
            self._place(session, alert, rules, event, incident.number, intake.service, severity, at)
            group = session.exec(_locked(session, select(AlertGroup).where(AlertGroup.service == intake.service))).first()
            if group is None:
                if over is not None:
                    raise StartOver()
                session.add(AlertGroup(service=intake.service, incident_id=incident.number, last_alert_at=at))
            elif group.incident_id != over:
                raise StartOver()  # another alert of the service declared meanwhile: join that one instead
            else:
                group.incident_id, group.last_alert_at = incident.number, at
                session.add(group)
            session.flush()
            self._processed(session, intake_id, f"declared INC-{incident.number}")

        incident = self.incidents.declare(
            title=alerts.title_for(event),
            severity=severity,
            services=[intake.service],
            description=alerts.description_for(rules.name, event),
            actor=source_actor(rules.name),
            context={**_context(rules, event), **runbooks.alert_context(event.runbook_url, event.component, event.details)},
            at=at,
            once_key=f"alert-intake:{intake_id}",
            on_declared=record,
        )
        if incident is None:
            with self.store.read() as session:
                row = session.get(AlertIntake, intake_id)
            return (row.outcome if row else None) or "already applied"
        return f"declared {incident.ref}"

    @staticmethod
    def _place(
        session: Session,
        alert: Alert | None,
        rules: SourceRules,
        event: AlertEvent,
        incident_id: int,
        service: str,
        severity: str,
        at: datetime,
    ) -> None:
        """The alert, new or starting afresh, in this incident."""
        alert = alert or Alert(
            source=rules.name,
            dedup_key=event.dedup_key,
            incident_id=incident_id,
            service=service,
            severity=severity,
            summary="",
            status=AlertStatus.TRIGGERED.value,
            count=0,
            first_at=at,
        )
        alert.incident_id, alert.service, alert.severity = incident_id, service, severity
        alert.summary = alerts.title_for(event, alerts.MAX_SUMMARY)
        alert.status, alert.count, alert.first_at, alert.last_at, alert.resolved_at = AlertStatus.TRIGGERED.value, 1, at, at, None
        alert.runbook_url = event.runbook_url
        session.add(alert)
        session.flush()  # a twin inserting the same (source, dedup key) fails here, and its transaction starts over

    @staticmethod
    def _touch_group(session: Session, service: str, incident_id: int, at: datetime) -> None:
        session.execute(
            update(AlertGroup)
            .where(col(AlertGroup.service) == service, col(AlertGroup.incident_id) == incident_id)
            .values(last_alert_at=at)
        )

    def _burst(self, session: Session, incident_id: int, *, joined: int = 0, repeated: int = 0, resolved: int = 0) -> None:
        """Counted now; one timeline step for the whole burst, written by a job when it is over."""
        row = session.exec(_locked(session, select(AlertBurst).where(AlertBurst.incident_id == incident_id))).first()
        if row is None:
            now = utcnow()
            session.add(AlertBurst(incident_id=incident_id, joined=joined, repeated=repeated, resolved=resolved, started_at=now))
            job = enqueue(
                session,
                JobSpec(DESTINATION, BURST, {"incident_id": incident_id}),
                incident_id,
                ordering_key=f"{DESTINATION}:burst:{incident_id}",
            )
            job.available_at = now + alerts.BURST
        else:
            row.joined, row.repeated, row.resolved = row.joined + joined, row.repeated + repeated, row.resolved + resolved
            session.add(row)
        session.flush()

    # -- acknowledge, resolve ----------------------------------------------------------------
    def _active_alert(self, session: Session, rules: SourceRules, key: str) -> tuple[Alert, Incident] | None:
        alert = session.exec(_locked(session, select(Alert).where(Alert.source == rules.name, Alert.dedup_key == key))).first()
        incident = session.get(Incident, alert.incident_id) if alert else None
        return (alert, incident) if alert is not None and incident is not None else None

    def _acknowledge(self, intake: AlertIntake, rules: SourceRules, event: AlertEvent) -> str:
        assert intake.id is not None
        with self.store.transaction() as session:
            found = self._active_alert(session, rules, event.dedup_key)
            if found is None or not alerts.is_active(found[0].status, found[1].status):
                outcome = "ignored: no open alert with this dedup key"
                self._processed(session, intake.id, outcome)
                return outcome
            alert, incident = found
            alert.status = AlertStatus.ACKNOWLEDGED.value
            session.add(alert)
            self._processed(session, intake.id, f"acknowledged in {incident.ref}")
        note = f"Alert acknowledged: {alert.summary}"[:3000]
        try:
            change = self.incidents.transition(
                incident.number,
                "acknowledge",
                actor=source_actor(rules.name),
                note=note,
                context=_context(rules, event),
                once_key=f"alert-intake:{intake.id}",
            )
        except InvalidTransition:
            return f"alert acknowledged; {incident.ref} is {incident.status}"
        return f"acknowledged {incident.ref}" if change.changed else f"alert acknowledged; {incident.ref} already was"

    def _resolve(self, intake: AlertIntake, rules: SourceRules, event: AlertEvent, at: datetime) -> str:
        assert intake.id is not None
        with self.store.transaction() as session:
            before = self._done_before(session, intake.id)
            found = self._active_alert(session, rules, event.dedup_key)
            if found is None:
                outcome = "ignored: no alert with this dedup key"
                self._processed(session, intake.id, outcome)
                return before or outcome
            alert, incident = found
            if before is None:
                if alert.status != AlertStatus.RESOLVED:
                    alert.status, alert.resolved_at = AlertStatus.RESOLVED.value, at
                    session.add(alert)
                    self._burst(session, incident.number, resolved=1)
                self._processed(session, intake.id, f"alert resolved in {incident.ref}")
        # after the commit, so of two last alerts resolved at once the later one sees both resolved
        return self.settle(incident.number, rules, event, once_key=f"alert-intake:{intake.id}")

    def settle(self, incident_id: int, rules: SourceRules, event: AlertEvent, *, once_key: str) -> str:
        """Resolve the incident (or note it) once every alert in it has resolved."""
        with self.store.read() as session:
            incident = session.get(Incident, incident_id)
            statuses = list(session.exec(select(Alert.status).where(Alert.incident_id == incident_id)))
        if incident is None or not _active(incident):
            return "alert resolved"
        firing = alerts.still_firing(statuses)
        if firing:
            return f"alert resolved; {firing} still firing in {incident.ref}"
        actor, context = source_actor(rules.name), _context(rules, event)
        if not rules.auto_resolve:
            self.incidents.record(
                incident_id,
                "alert",
                f"All {len(statuses)} alerts resolved; {rules.name} leaves resolving to people",
                actor=actor,
                context=context,
                once_key=once_key,
            )
            return f"every alert of {incident.ref} resolved (noted)"
        note = f"All {len(statuses)} alert{'' if len(statuses) == 1 else 's'} resolved"
        change = self.incidents.transition(incident_id, "resolve", actor=actor, note=note, context=context, once_key=once_key)
        return f"resolved {incident.ref}" if change.changed else f"every alert of {incident.ref} resolved"

    # -- bursts --------------------------------------------------------------------------------
    def write_burst(self, incident_id: int, job_id: int) -> str:
        """The burst's counts, taken from its row and kept under the job's step key in one transaction,
        then written as one timeline step under the same key: a retried job writes it once."""
        key = f"alert-burst:{job_id}"
        with self.store.transaction() as session:
            step = session.get(OutboxStep, key)
            if step is None:
                row = session.exec(_locked(session, select(AlertBurst).where(AlertBurst.incident_id == incident_id))).first()
                counts = {"joined": row.joined, "repeated": row.repeated, "resolved": row.resolved} if row else {}
                if row is not None:
                    session.delete(row)
                step = OutboxStep(key=key, value=json.dumps(counts))
                session.add(step)
        counts = json.loads(step.value or "{}")
        with self.store.read() as session:
            firing = session.exec(
                select(func.count()).select_from(Alert).where(Alert.incident_id == incident_id, Alert.status != "resolved")
            ).one()
        text = Burst(**counts).text(firing) if counts else None
        if text is None:
            return "nothing to say"
        actor = Actor(Origin.ALERT, "alerts", "alerts")
        self.incidents.record(incident_id, "alert", text, actor=actor, context={"burst": counts}, once_key=key)
        return text

    # -- by hand -------------------------------------------------------------------------------
    def merge(self, source_ref: str, target_ref: str, *, actor: Actor, context: dict[str, Any]) -> tuple[Incident, Incident, int]:
        """Close `source_ref` as merged into `target_ref`, its alerts (and its services' grouping) moved over."""
        source, target = self.incidents.get(source_ref), self.incidents.get(target_ref)
        if source.id == target.id:
            raise InvalidInput(f"{source.ref} cannot be merged into itself")
        if target.status == Status.CLOSED:
            raise InvalidInput(f"{target.ref} is closed: reopen it first, or merge it into {source.ref} instead")
        if source.status == Status.CLOSED:
            raise InvalidInput(f"{source.ref} is closed already")
        self.incidents.transition(
            source.number, "close", actor=actor, note=f"Merged into {target.ref}", context={**context, "merged_into": target.ref}
        )
        with self.store.transaction() as session:
            moved = _moved(session, Alert, source.number, target.number)
            _moved(session, AlertGroup, source.number, target.number)
        text = f"{source.ref} merged into this incident: {source.title}" + (
            f" ({moved} alert{'' if moved == 1 else 's'} moved)" if moved else ""
        )
        self.incidents.record(
            target.number, "merge", text, actor=actor, context={**context, "merged_from": source.ref, "alerts": moved}
        )
        return self.incidents.get(source.number), self.incidents.get(target.number), moved

    def split(
        self, ref: str, dedup_key: str, *, source: str | None, actor: Actor, context: dict[str, Any], once_key: str | None = None
    ) -> tuple[Incident, Incident | None]:
        """Move one alert out of an incident into a new incident of its own."""
        incident = self.incidents.get(ref)
        with self.store.read() as session:
            query = select(Alert).where(Alert.incident_id == incident.number, Alert.dedup_key == dedup_key)
            found = list(session.exec(query.where(Alert.source == source) if source else query))
            keys = list(session.exec(select(Alert.dedup_key).where(Alert.incident_id == incident.number).limit(6)))
        if not found:
            hint = f" (its alerts: {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})" if keys else " (it has no alerts)"
            raise InvalidInput(f"{incident.ref} has no alert with dedup key '{dedup_key[:80]}'{hint}")
        if len(found) > 1:
            raise InvalidInput(
                f"several sources sent '{dedup_key[:80]}': say which with --source ({', '.join(a.source for a in found)})"
            )
        alert = found[0]

        def move(session: Session, new: Incident) -> None:
            moved = session.execute(
                update(Alert)
                .where(col(Alert.id) == alert.id, col(Alert.incident_id) == incident.number)
                .values(incident_id=new.number)
            )
            if not getattr(moved, "rowcount", 0):
                raise DomainError(f"the alert '{dedup_key[:80]}' is no longer in {incident.ref}")

        new = self.incidents.declare(
            title=alerts.title_for(AlertEvent(AlertAction.TRIGGER, alert.dedup_key, alert.summary)),
            severity=alert.severity,
            services=[alert.service],
            description=f"Split from {incident.ref}: alert {alert.dedup_key} of {alert.source}.",
            actor=actor,
            context={**context, "split_from": incident.ref, "dedup_key": alert.dedup_key, "alert_source": alert.source},
            once_key=once_key,
            on_declared=move,
        )
        if new is None:
            return incident, None
        self.incidents.record(
            incident.number,
            "split",
            f"Alert {alert.dedup_key} ({alert.summary}) split out into {new.ref}",
            actor=actor,
            context={**context, "split_into": new.ref, "dedup_key": alert.dedup_key, "alert_source": alert.source},
        )
        return incident, new


def _moved(session: Session, table: type[Alert] | type[AlertGroup], source: int, target: int) -> int:
    result = session.execute(update(table).where(col(table.incident_id) == source).values(incident_id=target))
    return int(getattr(result, "rowcount", 0))


def _active(incident: Incident) -> bool:
    return incident.status in alerts.ACTIVE_INCIDENT


def _context(rules: SourceRules, event: AlertEvent) -> dict[str, Any]:
    return {"alert_source": rules.name, "dedup_key": event.dedup_key}
