"""The incident lifecycle: every change is one transaction of incident row + timeline event + outbox jobs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, col, select

from bot.clock import as_utc, utcnow
from bot.domain import fields as custom_fields
from bot.domain import people
from bot.domain.errors import DomainError, IncidentNotFound, InvalidInput, InvalidTransition
from bot.domain.models import InboundKey, Incident, Origin, Severity, Status, TimelineEvent
from bot.domain.outbox import JOBS, Subscriber, job_values
from bot.domain.people import IncidentRole, Person, PersonRef
from bot.domain.permissions import Policy
from bot.store import OUTBOX_CHANNEL, Store, note_enqueued, rows_changed

# The hot paths (declare, a status change from a button) write with Core statements on one connection:
# no unit of work, no object validation; rows read back (RETURNING) become model objects unvalidated.
INCIDENTS = Incident.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at runtime
EVENTS = TimelineEvent.__table__  # type: ignore[attr-defined]
KEYS = InboundKey.__table__  # type: ignore[attr-defined]

MAX_TITLE = 200
MAX_TEXT = 3000
DRILL_PREFIX = "[DRILL] "  # every game day incident's title starts so, wherever it is shown

# Timeline steps that follow a declaration in its own transaction (kind, text, data), e.g. the runbooks
# that match it; given the declaration's context (what an alert said, say).
DeclareExtra = Callable[[Session, Incident, dict[str, Any]], list[tuple[str, str, dict[str, Any]]]]


@dataclass(frozen=True)
class Actor:
    origin: Origin
    id: str
    name: str | None = None
    external: bool = False  # from another workspace in a shared channel (Slack Connect): may read only

    @property
    def key(self) -> str:
        return f"{self.origin.value}:{self.id}"


@dataclass(frozen=True)
class Change:
    incident: Incident
    event: TimelineEvent | None  # None when the change was a no-op

    @property
    def changed(self) -> bool:
        return self.event is not None


@dataclass(frozen=True)
class Transition:
    verb: str
    target: Status
    allowed_from: frozenset[Status]
    refusal: str  # "{ref} is {status}: ..." when the current status is not allowed


TRANSITIONS: dict[str, Transition] = {
    t.verb: t
    for t in (
        Transition("acknowledge", Status.MITIGATED, frozenset({Status.OPEN}), "it cannot be acknowledged (reopen it first)"),
        Transition(
            "unacknowledge", Status.OPEN, frozenset({Status.MITIGATED}), "only an acknowledged incident can be unacknowledged"
        ),
        Transition(
            "resolve", Status.RESOLVED, frozenset({Status.OPEN, Status.MITIGATED}), "it cannot be resolved (reopen it first)"
        ),
        Transition("close", Status.CLOSED, frozenset({Status.OPEN, Status.MITIGATED, Status.RESOLVED}), "it cannot be closed"),
        Transition(
            "reopen",
            Status.OPEN,
            frozenset({Status.RESOLVED, Status.CLOSED}),
            "only a resolved or closed incident can be reopened",
        ),
    )
}


MAX_INCIDENT_ID = 2**31 - 1  # incident.id is an INTEGER column: signed 32-bit on PostgreSQL


def parse_ref(ref: str | int) -> int:
    """`INC-12`, `inc-12` or `12` -> 12; refused (InvalidInput) unless it is a number the incident table can hold."""
    text = str(ref).strip()
    number = text[4:] if text.upper().startswith("INC-") else text
    digits = number.lstrip("0")
    # ASCII digits only: str.isdigit() also takes "²" and other scripts' digits
    if not (number.isascii() and number.isdigit()) or not digits:
        raise InvalidInput(f"'{text[:40]}' is not an incident ID (expected INC-<number>)")
    if len(digits) > len(str(MAX_INCIDENT_ID)) or int(digits) > MAX_INCIDENT_ID:  # length first: int() of 5000 digits fails
        raise InvalidInput(f"'{text[:40]}' is not an incident ID (numbers go up to {MAX_INCIDENT_ID})")
    return int(digits)


@dataclass
class IncidentService:
    store: Store
    subscribers: Sequence[Subscriber] = ()
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)
    field_names: tuple[str, ...] = custom_fields.DEFAULT_FIELDS  # custom fields an incident may carry
    declare_extras: list[DeclareExtra] = field(default_factory=list)

    def __post_init__(self) -> None:
        configure_mappers()  # objects made with model_construct need the mappers set up (normally done by the first query)

    # -- reads -------------------------------------------------------------------------------
    def get(self, ref: str | int) -> Incident:
        with self.store.read() as session:
            return self._load(session, ref)

    def timeline(self, ref: str | int) -> tuple[Incident, list[TimelineEvent]]:
        with self.store.read() as session:
            incident = self._load(session, ref)
            events = session.exec(
                select(TimelineEvent).where(TimelineEvent.incident_id == incident.id).order_by(col(TimelineEvent.id))
            ).all()
            return incident, list(events)

    def search(
        self,
        *,
        statuses: Sequence[str] | None = None,
        severity: str | None = None,
        service: str | None = None,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[Incident]:
        query = select(Incident)
        if statuses:
            query = query.where(col(Incident.status).in_(list(statuses)))
        if severity:
            query = query.where(Incident.severity == severity)
        if since:
            query = query.where(Incident.declared_at >= as_utc(since))
        query = query.order_by(col(Incident.id).desc()).limit(limit if not service else limit * 10)
        with self.store.read() as session:
            incidents = list(session.exec(query))
        if service:
            incidents = [i for i in incidents if service in i.services][:limit]
        return incidents

    # -- changes -----------------------------------------------------------------------------
    def declare(
        self,
        *,
        title: str,
        severity: str,
        services: Sequence[str],
        actor: Actor,
        description: str | None = None,
        fields: Sequence[str] = (),
        context: dict[str, Any] | None = None,
        at: datetime | None = None,
        once_key: str | None = None,
        on_declared: Callable[[Session, Incident], None] | None = None,
        drill: bool = False,
    ) -> Incident | None:
        """A new incident; None when `once_key` says this very request was applied before.

        `on_declared` runs in the declaration's own transaction once the incident has its id (an adapter
        recording its side of an incident born elsewhere), before the subscribers see the event. A `drill` (game day) is marked so, and its title says it."""
        self.policy.check_may_change(actor, "declare incidents")
        title = _clean(title, "title", MAX_TITLE - (len(DRILL_PREFIX) if drill else 0), required=True)
        if drill and not title.startswith(DRILL_PREFIX.strip()):
            title = DRILL_PREFIX + title
        sev = _severity(severity)
        names = _services(services)
        description = _clean(description, "description", MAX_TEXT) if description else None
        values = custom_fields.merged({}, custom_fields.parse_assignments(fields, self.field_names))
        now = as_utc(at) if at else utcnow()
        row = {
            "title": title,
            "severity": sev,
            "status": Status.OPEN.value,
            "services": names,
            "description": description,
            "fields": values,
            "drill": drill,
            "declared_by": actor.key,
            "declared_origin": actor.origin.value,
            "declared_at": now,
            "status_changed_at": now,
            "updated_at": now,
        }
        with self._writing() as (conn, session):
            if not claim_key(conn, once_key):
                return None
            number = conn.execute(_INSERT_INCIDENT, row).scalar_one()
            incident = _incident({**dict.fromkeys(INCIDENTS.c.keys()), **row, "id": number})
            if on_declared is not None:
                on_declared(session, incident)
                session.flush()
            text = f"Declared {sev}: {title}" + (f" ({custom_fields.summary(values)})" if values else "")
            self._record(session, incident, actor, "declared", text, context or {}, at=now, conn=conn)
            for extra in self.declare_extras:
                for kind, extra_text, data in extra(session, incident, context or {}):
                    self._record(session, incident, actor, kind, extra_text, data, at=now, conn=conn)
        self._notify()
        return incident

    def transition(
        self,
        ref: str | int,
        verb: str,
        *,
        actor: Actor,
        note: str | None = None,
        at: datetime | None = None,
        context: dict[str, Any] | None = None,
        once_key: str | None = None,
    ) -> Change:
        rule = TRANSITIONS[verb]
        note = _clean(note, "note", MAX_TEXT) if note else None
        number = parse_ref(ref)
        when = as_utc(at) if at else utcnow()
        with self._writing() as (conn, session):
            row: Row[Any] | None = None
            previous = next(iter(rule.allowed_from)).value
            if at is None and once_key is None and len(rule.allowed_from) == 1 and self._may_without_reading(actor, verb):
                # the usual click: one conditional UPDATE decides and writes (RETURNING the row)
                row = self._stamp(conn, number, rule, when, note, guarded=True)
            if row is None:  # not changed yet: read it (locked) to say why, or change it after the checks
                incident = self._select(conn, number, for_update=True)
                if not claim_key(conn, once_key):
                    return Change(incident, None)
                current = Status(incident.status)
                if current == rule.target:
                    return Change(incident, None)  # already there: not an error, not an event
                self._check(session, incident, actor, verb)
                if at is not None and when.replace(microsecond=0) < as_utc(incident.status_changed_at).replace(microsecond=0):
                    # a report older than what we know: out of order. Compared to the second, because
                    # other systems (PagerDuty) report times to the second.
                    return Change(incident, None)
                if current not in rule.allowed_from:
                    raise InvalidTransition(f"{incident.ref} is {current.value}: {rule.refusal}")
                row, previous = self._stamp(conn, number, rule, when, note), current.value
            assert row is not None  # the row was read, locked, above
            incident = _incident(row._mapping)
            text = _status_text(rule.verb, note)
            data = {"from": previous, "to": rule.target.value, "verb": verb, "note": note, **(context or {})}
            event = self._record(session, incident, actor, "status", text, data, at=when, conn=conn)
        self._notify()
        return Change(incident, event)

    def add_note(
        self,
        ref: str | int,
        text: str,
        *,
        actor: Actor,
        context: dict[str, Any] | None = None,
        at: datetime | None = None,
        once_key: str | None = None,
    ) -> Change:
        return self.record(
            ref, "note", _clean(text, "note", MAX_TEXT, required=True), actor=actor, context=context, at=at, once_key=once_key
        )

    def set_severity(
        self, ref: str | int, severity: str, *, actor: Actor, context: dict[str, Any] | None = None, once_key: str | None = None
    ) -> Change:
        sev = _severity(severity)
        with self.store.transaction() as session:
            incident = self._load(session, ref, for_update=True)
            if incident.severity == sev or not first_time(session, once_key):
                return Change(incident, None)
            self._check(session, incident, actor, "lower" if self.policy.lowers(incident.severity, sev) else "severity")
            old, incident.severity = incident.severity, sev
            incident.updated_at = utcnow()
            event = self._record(
                session, incident, actor, "severity", f"Severity {old} -> {sev}", {"from": old, "to": sev, **(context or {})}
            )
        self._notify()
        return Change(incident, event)

    def set_fields(
        self,
        ref: str | int,
        assignments: Sequence[str],
        *,
        actor: Actor,
        context: dict[str, Any] | None = None,
        once_key: str | None = None,
    ) -> Change:
        """Set custom fields (`key=value`; `key=` clears one). Values it already has change nothing."""
        self.policy.check_may_change(actor, "change incidents")
        wanted = custom_fields.parse_assignments(assignments, self.field_names, clearing=True)
        if not wanted:
            raise InvalidInput("which field? (key=value, e.g. environment=production)")
        with self.store.transaction() as session:
            incident = self._load(session, ref, for_update=True)
            current = dict(incident.fields or {})
            changes = {k: v for k, v in wanted.items() if current.get(k) != v}
            if not changes or not first_time(session, once_key):
                return Change(incident, None)
            incident.fields = custom_fields.merged(current, changes)
            incident.updated_at = utcnow()
            text = "Field " + custom_fields.describe_changes(current, changes)
            data = {"fields": changes, "previous": {k: current.get(k) for k in changes}, **(context or {})}
            event = self._record(session, incident, actor, "field", text, data)
        self._notify()
        return Change(incident, event)

    def record(
        self,
        ref: str | int,
        kind: str,
        text: str,
        *,
        actor: Actor,
        context: dict[str, Any] | None = None,
        at: datetime | None = None,
        once_key: str | None = None,
    ) -> Change:
        """A timeline entry that does not change the status: a note, an assignment, a notice."""
        self.policy.check_may_change(actor, "change incidents")
        with self.store.transaction() as session:
            incident = self._load(session, ref, for_update=True)
            if not first_time(session, once_key):
                return Change(incident, None)
            incident.updated_at = utcnow()
            event = self._record(session, incident, actor, kind, text, context or {}, at=as_utc(at) if at else None)
        self._notify()
        return Change(incident, event)

    # -- people ------------------------------------------------------------------------------
    def assign(
        self,
        ref: str | int,
        person: PersonRef | None,
        *,
        actor: Actor,
        context: dict[str, Any] | None = None,
        at: datetime | None = None,
        once_key: str | None = None,
        only_if_unowned: bool = False,
    ) -> Change:
        """Make `person` the incident's owner (None: nobody). A report older than the last change of
        owner (PagerDuty's events may arrive out of order) changes nothing; with `only_if_unowned`, an
        incident someone owns already (two people clicking "Take it" at once) changes nothing either."""
        self.policy.check_may_change(actor, "assign incidents")
        when = as_utc(at) if at else utcnow()
        with self.store.transaction() as session:
            incident = self._load(session, ref, for_update=True)
            if not first_time(session, once_key):
                return Change(incident, None)
            if at is not None and incident.owner_changed_at and when < as_utc(incident.owner_changed_at):
                return Change(incident, None)
            if only_if_unowned and incident.owner_id is not None:
                return Change(incident, None)
            new = people.resolve(session, person) if person else None
            if incident.owner_id == (new.id if new else None):
                return Change(incident, None)
            old = session.get(Person, incident.owner_id) if incident.owner_id else None
            incident.owner_id = new.id if new else None
            incident.owner_changed_at = when
            incident.updated_at = utcnow()
            text = f"Owner: {_label(new)}" if new else "Owner cleared"
            if old is not None:
                text += f" (was {_label(old)})"
            data = {"person_id": new.id if new else None, "previous_person_id": old.id if old else None, **(context or {})}
            event = self._record(session, incident, actor, "owner", text, data, at=when)
        self._notify()
        return Change(incident, event)

    def set_role(
        self,
        ref: str | int,
        role: str,
        person: PersonRef | None,
        *,
        actor: Actor,
        context: dict[str, Any] | None = None,
        once_key: str | None = None,
    ) -> Change:
        """Put `person` in `role` on the incident (None: clear the role)."""
        name = self.policy.check_role(role)
        self.policy.check_may_change(actor, "change roles")
        with self.store.transaction() as session:
            incident = self._load(session, ref, for_update=True)
            if not first_time(session, once_key):
                return Change(incident, None)
            row = session.exec(
                select(IncidentRole).where(IncidentRole.incident_id == incident.number, IncidentRole.role == name)
            ).first()
            new = people.resolve(session, person) if person else None
            if (row.person_id if row else None) == (new.id if new else None):
                return Change(incident, None)
            if new is None:
                assert row is not None
                session.delete(row)
                text = f"{name.title()} cleared"
            else:
                assert new.id is not None
                row = row or IncidentRole(incident_id=incident.number, role=name, person_id=new.id)
                row.person_id = new.id
                row.at = utcnow()
                session.add(row)
                text = f"{name.title()}: {_label(new)}"
            incident.updated_at = utcnow()
            data = {"role": name, "person_id": new.id if new else None, **(context or {})}
            event = self._record(session, incident, actor, "role", text, data)
        self._notify()
        return Change(incident, event)

    def snooze_reminders(self, ref: str | int, until: datetime, *, actor: Actor, once_key: str | None = None) -> Change:
        self.policy.check_may_change(actor, "snooze reminders")
        with self.store.transaction() as session:
            incident = self._load(session, ref, for_update=True)
            if not first_time(session, once_key):
                return Change(incident, None)
            incident.reminders_snoozed_until = as_utc(until)
            incident.updated_at = utcnow()
            text = f"Status-update reminders snoozed until {as_utc(until).strftime('%H:%M UTC')}"
            event = self._record(session, incident, actor, "snooze", text, {"until": as_utc(until).isoformat()})
        self._notify()
        return Change(incident, event)

    def owner_and_roles(self, session: Session, incident: Incident) -> tuple[Person | None, dict[str, Person]]:
        owner = session.get(Person, incident.owner_id) if incident.owner_id else None
        return owner, people.roles_of(session, incident.number)

    # -- internals ---------------------------------------------------------------------------
    def _check(self, session: Session, incident: Incident, actor: Actor, action: str) -> None:
        """Permissions of a status or severity change (see bot/domain/permissions.py)."""
        what = {"close": "closing", "reopen": "reopening", "lower": "lowering the severity of"}.get(action)
        if what is None:
            self.policy.check_may_change(actor, "change incidents")
            return
        owner, roles = self.owner_and_roles(session, incident)
        self.policy.check_protected(actor, severity=incident.severity, what=what, owner=owner, commander=roles.get("commander"))

    def _load(self, session: Session, ref: str | int, for_update: bool = False) -> Incident:
        number = parse_ref(ref)
        query = select(Incident).where(Incident.id == number)
        if for_update and session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        incident = session.exec(query).first()
        if incident is None:
            raise IncidentNotFound(f"INC-{number}")
        return incident

    def _select(self, conn: Connection, number: int, for_update: bool = False) -> Incident:
        query = INCIDENTS.select().where(INCIDENTS.c.id == number)
        if for_update and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise IncidentNotFound(f"INC-{number}")
        return _incident(row._mapping)

    def _may_without_reading(self, actor: Actor, verb: str) -> bool:
        """Whether the permission check of `verb` needs nothing stored (see `_check`) and passes."""
        if verb in ("close", "reopen"):
            return False
        try:
            self.policy.check_may_change(actor, "change incidents")
        except DomainError:
            return False  # refused: the slow path says so, after the checks that come first
        return True

    @staticmethod
    def _stamp(
        conn: Connection, number: int, rule: Transition, when: datetime, note: str | None, *, guarded: bool = False
    ) -> Row[Any] | None:
        """A status change as one UPDATE, RETURNING the row; `guarded`: only from an allowed status (else None)."""
        statement = _stamp_statement(rule.verb, bool(note), guarded)
        return conn.execute(statement, {"number": number, "when": when, "now": utcnow(), "note": note}).first()

    @contextmanager
    def _writing(self) -> Iterator[tuple[Connection, Session]]:
        """One transaction on one connection: Core statements on `conn`; `session` (on the same
        connection) for subscribers and hooks that read, or add rows, through the ORM."""
        with self.store.core() as conn, Session(bind=conn, expire_on_commit=False) as session:
            yield conn, session
            session.flush()

    def _record(
        self,
        session: Session,
        incident: Incident,
        actor: Actor,
        kind: str,
        text: str | None,
        data: dict[str, Any],
        at: datetime | None = None,
        *,
        conn: Connection | None = None,
    ) -> TimelineEvent:
        """The timeline event and the jobs the subscribers choose for it. `conn`: the connection of a
        change written with Core statements (`_writing`); without it, the session's changes are flushed
        first and the session's commit wakes the workers."""
        holder: Session | Connection
        if conn is None:
            session.add(incident)
            session.flush()
            conn, holder = session.connection(), session
        else:
            holder = conn
        values: dict[str, Any] = {
            "incident_id": incident.number,
            "kind": kind,
            "origin": actor.origin.value,
            "actor": actor.key,
            "actor_name": actor.name,
            "at": at or utcnow(),
            "text": text,
            "data": data,
        }
        event_id = conn.execute(_INSERT_EVENT, values).scalar_one()
        event = TimelineEvent.model_construct(None, **{**values, "id": event_id})
        jobs = [job_values(spec, incident.id) for subscriber in self.subscribers for spec in subscriber(session, incident, event)]
        if not jobs:
            return event
        if conn.dialect.name == "postgresql":  # the jobs and the workers' NOTIFY in one round trip
            written = insert(JOBS).values(jobs).returning(JOBS.c.id).cte("job")
            conn.execute(select(func.pg_notify(OUTBOX_CHANNEL, "")).select_from(written).limit(1))
            note_enqueued(holder, notified=True)
        else:
            conn.execute(insert(JOBS), jobs)
            note_enqueued(holder)
        return event

    def _notify(self) -> None:
        for callback in self.after_commit:
            callback()


def claim_key(conn: Connection, once_key: str | None) -> bool:
    """`first_time` as one statement: INSERT .. ON CONFLICT DO NOTHING (a twin waits for ours, then finds it)."""
    if once_key is None:
        return True
    # the dialect modules are imported by a writer that needs them, not by every reader
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]
    statement = dialect.insert(KEYS).values(key=once_key, at=utcnow()).on_conflict_do_nothing()
    return rows_changed(conn.execute(statement)) > 0


@functools.cache
def _stamp_statement(verb: str, with_note: bool, guarded: bool) -> Any:
    """Built once per kind of change; executed with :number, :when, :now and :note."""
    rule, c = TRANSITIONS[verb], INCIDENTS.c
    when = bindparam("when", type_=c.status_changed_at.type)
    values: dict[str, Any] = {"status": rule.target.value, "status_changed_at": when, "updated_at": bindparam("now")}
    if rule.target == Status.MITIGATED:
        values |= {"acknowledged_at": func.coalesce(c.acknowledged_at, when), "mitigated_at": func.coalesce(c.mitigated_at, when)}
    elif rule.target == Status.RESOLVED:
        values |= {"resolved_at": when, **({"resolution": bindparam("note")} if with_note else {})}
    elif rule.target == Status.CLOSED:
        values |= {"resolved_at": func.coalesce(c.resolved_at, when), "closed_at": when}
    elif rule.verb == "reopen":
        values |= {"reopened_at": when, "closed_at": None}
    statement = update(INCIDENTS).where(c.id == bindparam("number"))
    if guarded:
        statement = statement.where(c.status.in_([s.value for s in rule.allowed_from]))
    return statement.values(values).returning(*c)


_INSERT_INCIDENT = insert(INCIDENTS).returning(INCIDENTS.c.id)
_INSERT_EVENT = insert(EVENTS).returning(EVENTS.c.id)


def _incident(values: Any) -> Incident:
    """A stored row as an Incident, without validation (it was valid when written)."""
    return Incident.model_construct(**dict(values))


def first_time(session: Session, once_key: str | None) -> bool:
    """Claim an inbound request's key inside the change's own transaction (False: seen before)."""
    if once_key is None:
        return True
    if session.get(InboundKey, once_key) is not None:
        return False
    session.add(InboundKey(key=once_key))
    session.flush()  # a concurrent twin fails here on the primary key and rolls back whole
    return True


def _clean(value: str | None, what: str, limit: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"the {what} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"the {what} is {len(text)} characters long; at most {limit} are allowed")
    return text


def _severity(value: str) -> str:
    return Severity.parse(value).value


def _services(values: Sequence[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if not all(c.isalnum() or c in "-_." for c in name) or len(name) > 64:
                raise InvalidInput(f"'{part.strip()}' is not a service name (letters, digits, - _ . up to 64)")
            if name not in names:
                names.append(name)
    if not names:
        raise InvalidInput("at least one service is required (--service NAME[,NAME...])")
    return names


def _label(person: Person) -> str:
    return person.name or person.email or person.slack_user_id or person.pagerduty_user_id or "someone"


def _status_text(verb: str, note: str | None) -> str:
    words = {
        "acknowledge": "Acknowledged",
        "unacknowledge": "Unacknowledged (back to open)",
        "resolve": "Resolved",
        "close": "Closed",
        "reopen": "Reopened",
    }[verb]
    return f"{words}: {note}" if note else words
