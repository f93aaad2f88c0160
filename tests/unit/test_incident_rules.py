"""IncidentService's rules on a real (temporary SQLite) store: the lifecycle table as the service applies
it, same-state no-ops, reports older than what we know, and once keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import SQLModel

from bot.domain.errors import IncidentNotFound, InvalidTransition
from bot.domain.incidents import Actor, IncidentService
from bot.domain.models import Incident, Origin, Status
from bot.store import Store
from tests.unit.lifecycle import LIFECYCLE, SAME

ALICE = Actor(Origin.CLI, "alice")
T0 = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
# the one verb that brings a fresh (open) incident to each status
REACH = {"open": None, "mitigated": "acknowledge", "resolved": "resolve", "closed": "close"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IncidentService]:
    """One database for the module; each test declares incidents of its own. Tables come from the models,
    not the migrations: importing Alembic alone would cost more than these tests (the end-to-end tier
    runs every migration)."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('unit') / 'im.db'}")
    SQLModel.metadata.create_all(store.engine)
    try:
        yield IncidentService(store)
    finally:
        store.dispose()


def declare(service: IncidentService, at: datetime | None = None) -> Incident:
    incident = service.declare(title="Database slow", severity="SEV-2", services=["db"], actor=ALICE, at=at)
    assert incident is not None
    return incident


def at_status(service: IncidentService, status: str) -> Incident:
    incident = declare(service)
    verb = REACH[status]
    if verb is not None:
        service.transition(incident.id, verb, actor=ALICE)  # type: ignore[arg-type]
    return service.get(incident.ref)


def events(service: IncidentService, incident: Incident) -> int:
    return len(service.timeline(incident.ref)[1])


@pytest.mark.parametrize(("verb", "status", "expected"), [(v, s, e) for (v, s), e in LIFECYCLE.items()])
def test_service_applies_the_lifecycle(service: IncidentService, verb: str, status: str, expected: str) -> None:
    incident = at_status(service, status)
    assert incident.status == status
    before = events(service, incident)
    if expected == SAME:
        change = service.transition(incident.ref, verb, actor=ALICE)
        assert not change.changed and change.incident.status == status
        assert events(service, incident) == before
    elif expected in {s.value for s in Status}:
        change = service.transition(incident.ref, verb, actor=ALICE, note="why")
        assert change.changed and change.incident.status == expected
        assert change.event is not None and change.event.data["from"] == status and change.event.data["to"] == expected
        assert service.get(incident.ref).status == expected
    else:
        with pytest.raises(InvalidTransition) as refused:
            service.transition(incident.ref, verb, actor=ALICE)
        assert str(refused.value) == f"{incident.ref} is {status}: {expected}"
        assert service.get(incident.ref).status == status
        assert events(service, incident) == before


def test_same_state_keeps_the_time_of_the_change(service: IncidentService) -> None:
    incident = declare(service, at=T0)
    first = service.transition(incident.ref, "acknowledge", actor=ALICE, at=T0 + timedelta(minutes=1))
    again = service.transition(incident.ref, "acknowledge", actor=ALICE, at=T0 + timedelta(minutes=5))
    assert first.changed and not again.changed
    stored = service.get(incident.ref)
    assert stored.status_changed_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=1)
    assert stored.acknowledged_at is not None and stored.acknowledged_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("report_at", "applied"),
    [
        (T0 + timedelta(seconds=9, microseconds=999_999), False),  # a second older than what we know
        (T0 + timedelta(seconds=10), True),  # the same second: PagerDuty reports whole seconds
        (T0 + timedelta(seconds=10, microseconds=200_000), True),  # earlier within that second still counts
        (T0 + timedelta(seconds=11), True),
        (T0 - timedelta(days=1), False),
    ],
)
def test_reports_older_than_the_last_change_are_ignored(service: IncidentService, report_at: datetime, applied: bool) -> None:
    incident = declare(service, at=T0)
    service.transition(incident.ref, "acknowledge", actor=ALICE, at=T0 + timedelta(seconds=10, microseconds=700_000))
    change = service.transition(incident.ref, "resolve", actor=ALICE, at=report_at)
    assert change.changed is applied
    assert service.get(incident.ref).status == ("resolved" if applied else "mitigated")


def test_an_out_of_order_report_is_ignored_even_when_it_would_be_refused(service: IncidentService) -> None:
    incident = declare(service, at=T0)
    service.transition(incident.ref, "close", actor=ALICE, at=T0 + timedelta(minutes=2))
    change = service.transition(incident.ref, "acknowledge", actor=ALICE, at=T0 + timedelta(minutes=1))
    assert not change.changed and service.get(incident.ref).status == "closed"


def test_once_key_applies_a_transition_once(service: IncidentService) -> None:
    incident = declare(service)
    first = service.transition(incident.ref, "acknowledge", actor=ALICE, once_key="unit:ack-1")
    assert first.changed
    # the same request again, even for a verb that would now be allowed, has no second effect
    again = service.transition(incident.ref, "resolve", actor=ALICE, once_key="unit:ack-1")
    assert not again.changed and service.get(incident.ref).status == "mitigated"


def test_once_key_declares_once(service: IncidentService) -> None:
    first = service.declare(title="Twice?", severity="SEV-3", services=["web"], actor=ALICE, once_key="unit:declare-1")
    again = service.declare(title="Twice?", severity="SEV-3", services=["web"], actor=ALICE, once_key="unit:declare-1")
    assert first is not None and again is None
    assert [i.id for i in service.search() if i.title == "Twice?"] == [first.id]


def test_once_key_adds_a_note_once(service: IncidentService) -> None:
    incident = declare(service)
    assert service.add_note(incident.ref, "restarted", actor=ALICE, once_key="unit:note-1").changed
    assert not service.add_note(incident.ref, "restarted", actor=ALICE, once_key="unit:note-1").changed
    assert [e.text for e in service.timeline(incident.ref)[1] if e.kind == "note"] == ["restarted"]


def test_a_refused_request_does_not_spend_its_once_key(service: IncidentService) -> None:
    incident = at_status(service, "closed")
    with pytest.raises(InvalidTransition):
        service.transition(incident.ref, "acknowledge", actor=ALICE, once_key="unit:refused-1")
    assert service.transition(incident.ref, "reopen", actor=ALICE, once_key="unit:refused-1").changed


def test_an_unknown_incident_is_named(service: IncidentService) -> None:
    with pytest.raises(IncidentNotFound, match=r"^INC-999999 does not exist$"):
        service.transition("INC-999999", "acknowledge", actor=ALICE)
