"""PagerDuty users and im's people: who a person is in PagerDuty, and who a PagerDuty user is in im.

Invariant: PagerDuty is asked about a user at most once an hour per process (TTL caches keyed by the
account's base URL), and what it answers is kept on the person (`people.learn`), so a person matched
once is never looked up again. Lookups run in workers only (never before a Slack ack). A failed call
is not cached: the job that needed it is retried.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import select

from bot.app import Im
from bot.domain import people
from bot.domain.errors import InvalidInput
from bot.domain.people import Person, PersonRef
from bot.ttl_cache import TTLCache
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.errors import NotFoundError, PagerDutyError
from integrations.pagerduty.api.models import User

USER_TTL = 3600.0
_ID_BY_EMAIL: TTLCache[tuple[str, str], str | None] = TTLCache(USER_TTL)
_USER_BY_ID: TTLCache[tuple[str, str], User | None] = TTLCache(USER_TTL)


def user_id_for_email(client: PagerDutyClient, email: str) -> str | None:
    """`GET /users?query=email`, cached (an email PagerDuty does not know is remembered too)."""

    def load() -> str | None:
        user = client.find_user_by_email(email)
        return user.id if user else None

    return _ID_BY_EMAIL.get_or_load((client.base_url, email.strip().lower()), load)


def user_for_id(client: PagerDutyClient, user_id: str) -> User | None:
    """`GET /users/{id}`, cached; None when PagerDuty has no such user (any more)."""

    def load() -> User | None:
        try:
            return client.get_user(user_id)
        except NotFoundError:
            return None

    return _USER_BY_ID.get_or_load((client.base_url, user_id), load)


def is_pagerduty_user(client: PagerDutyClient, email: str) -> bool:
    """For a From header: an unanswered question counts as no (the connector's from_email acts)."""
    try:
        return user_id_for_email(client, email) is not None
    except PagerDutyError:
        return False


def pagerduty_id_of(im: Im, client: PagerDutyClient, person: Person) -> str | None:
    """The person's PagerDuty user id: known already, or found by their email and learnt."""
    if person.pagerduty_user_id:
        return person.pagerduty_user_id
    if not person.email or person.id is None:
        return None
    found = user_id_for_email(client, person.email)
    if found:
        with im.store.transaction() as session:
            people.learn(session, person.id, pagerduty_user_id=found)
    return found


def person_ref(im: Im, user_id: str, name: str | None, lookup: Callable[[str], User | None]) -> PersonRef:
    """A PagerDuty user as im's person: by id when im knows them already, else with the email
    PagerDuty gives (`lookup`, e.g. `user_for_id` on a client), so they meet the person Slack knows by
    that email."""
    with im.store.read() as session:
        known = session.exec(select(Person).where(Person.pagerduty_user_id == user_id)).first()
    if known is not None:
        return PersonRef(pagerduty_user_id=user_id, name=name)
    user = lookup(user_id)
    label = (user.name if user else None) or name
    try:
        return PersonRef(pagerduty_user_id=user_id, email=user.email if user else None, name=label)
    except InvalidInput:  # an email PagerDuty holds but we would not accept: matched by id only
        return PersonRef(pagerduty_user_id=user_id, name=label)
