"""People: who someone is in each system we know them in, one row a person.

A person is found by any identifier a front end or PagerDuty gives (a Slack user id, an email, a
PagerDuty user id) and learns the others as adapters find them, so an owner set from PagerDuty can be
mentioned in Slack once the Slack adapter has matched the email, and the other way round. Someone with
no match on the other side is still a person: shown by name, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, select

from bot.clock import utcnow
from bot.domain.errors import InvalidInput
from bot.domain.texts import person_label


class Person(SQLModel, table=True):
    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = None
    email: str | None = Field(default=None, unique=True)  # lowercased
    slack_user_id: str | None = Field(default=None, unique=True)
    pagerduty_user_id: str | None = Field(default=None, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class IncidentRole(SQLModel, table=True):
    """A person in a named role on an incident (commander, communications, ...): one person a role."""

    __tablename__ = "incident_role"
    __table_args__ = (UniqueConstraint("incident_id", "role", name="uq_incident_role"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    role: str
    person_id: int = Field(foreign_key="person.id")
    at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class PersonRef:
    """Who someone is, as far as the caller knows: any one identifier is enough."""

    slack_user_id: str | None = None
    email: str | None = None
    pagerduty_user_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not (self.slack_user_id or self.email or self.pagerduty_user_id):
            raise InvalidInput("a person needs a Slack user, an email or a PagerDuty user")
        if self.email is not None and ("@" not in self.email or len(self.email) > 254 or any(c.isspace() for c in self.email)):
            raise InvalidInput(f"'{self.email}' is not an email address")


class PersonView(BaseModel):
    name: str | None = None
    email: str | None = None
    slack_user_id: str | None = None
    pagerduty_user_id: str | None = None

    @property
    def label(self) -> str:
        return person_label(self.model_dump())

    @classmethod
    def of(cls, person: Person) -> PersonView:
        return cls(
            name=person.name,
            email=person.email,
            slack_user_id=person.slack_user_id,
            pagerduty_user_id=person.pagerduty_user_id,
        )


def resolve(session: Session, ref: PersonRef) -> Person:
    """The person `ref` names: found by Slack id, then email, then PagerDuty id; identifiers it did not
    know yet are added (never overwritten), and an unknown person is created."""
    email = ref.email.strip().lower() if ref.email else None
    person: Person | None = None
    if ref.slack_user_id:
        person = session.exec(select(Person).where(Person.slack_user_id == ref.slack_user_id)).first()
    if person is None and email:
        person = session.exec(select(Person).where(Person.email == email)).first()
    if person is None and ref.pagerduty_user_id:
        person = session.exec(select(Person).where(Person.pagerduty_user_id == ref.pagerduty_user_id)).first()
    if person is None:
        person = Person()
    person.slack_user_id = person.slack_user_id or ref.slack_user_id
    person.email = person.email or email
    person.pagerduty_user_id = person.pagerduty_user_id or ref.pagerduty_user_id
    person.name = person.name or ref.name
    person.updated_at = utcnow()
    session.add(person)
    session.flush()
    return person


def learn(
    session: Session,
    person_id: int,
    *,
    slack_user_id: str | None = None,
    email: str | None = None,
    pagerduty_user_id: str | None = None,
    name: str | None = None,
) -> Person | None:
    """An adapter found another identifier of a known person (a Slack id for an email, say)."""
    person = session.get(Person, person_id)
    if person is None:
        return None
    if slack_user_id and not person.slack_user_id:
        taken = session.exec(select(Person).where(Person.slack_user_id == slack_user_id)).first()
        if taken is None:
            person.slack_user_id = slack_user_id
    if email and not person.email:
        person.email = email.lower()
    if pagerduty_user_id and not person.pagerduty_user_id:
        person.pagerduty_user_id = pagerduty_user_id
    if name and not person.name:
        person.name = name
    person.updated_at = utcnow()
    session.add(person)
    return person


def roles_of(session: Session, incident_id: int) -> dict[str, Person]:
    rows = session.exec(select(IncidentRole).where(IncidentRole.incident_id == incident_id)).all()
    found: dict[str, Person] = {}
    for row in rows:
        person = session.get(Person, row.person_id)
        if person is not None:
            found[row.role] = person
    return found
