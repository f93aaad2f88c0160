"""What `escalate` and `page` check before they write anything: only what the database knows.

Invariant: a request refused here writes nothing and answers at once (exit 2, or an ephemeral answer);
what only PagerDuty can tell (a level past the policy's last, an email it does not know) is found by the
job and recorded as a notice on the incident, never dropped silently.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import select

from bot.app import Im
from bot.domain.errors import InvalidInput
from bot.domain.models import Incident
from bot.domain.people import Person, PersonRef
from integrations.pagerduty import links
from integrations.pagerduty.registry import outbound_connectors

_SLACK_USER = re.compile(r"^<?@?(?P<id>[UW][A-Z0-9]{2,30})(\|[^>]*)?>?$")


def pageable(im: Im, ref: str | int) -> Incident:
    """The incident, if it is still going and linked to a PagerDuty incident a connector pushes to."""
    incident: Incident = im.incidents.get(ref)
    if incident.status in ("resolved", "closed"):
        raise InvalidInput(f"{incident.ref} is {incident.status}: reopen it before paging anyone")
    with im.store.read() as session:
        pushed = {name for name, _ in outbound_connectors(session)}
        linked = [
            link for link in links.for_incident(session, incident.number) if link.connector in pushed and link.pd_incident_id
        ]
    if not linked:
        raise InvalidInput(f"{incident.ref} has no PagerDuty incident (yet): nothing to escalate or page")
    if all(link.status == "resolved" for link in linked):
        raise InvalidInput(f"{incident.ref}'s PagerDuty incidents are resolved: nothing to escalate or page")
    return incident


def known_services(im: Im, names: list[str]) -> list[str]:
    """Services some outbound connector maps (to a PagerDuty service or an escalation policy)."""
    with im.store.read() as session:
        configs = [config for _, config in outbound_connectors(session)]
    known = {s for c in configs for s in (*c.custom.service_mappings, *c.custom.escalation_mappings)}
    wanted: list[str] = []
    for raw in names:
        for part in raw.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in known:
                choices = ", ".join(sorted(known)) or "none yet: im connector map-service ..."
                raise InvalidInput(f"unknown service '{part.strip()}' (PagerDuty knows: {choices})")
            if name not in wanted:
                wanted.append(name)
    return wanted


def people(im: Im, given: list[str]) -> list[dict[str, Any]]:
    """Each `--user`: an email, or a Slack user im knows an email or PagerDuty id of."""
    found: list[dict[str, Any]] = []
    for raw in given:
        text = raw.strip()
        slack = _SLACK_USER.match(text)
        if slack:
            with im.store.read() as session:
                person = session.exec(select(Person).where(Person.slack_user_id == slack.group("id"))).first()
            if person is None or not (person.email or person.pagerduty_user_id):
                raise InvalidInput(f"unknown user {text}: im does not know their email yet (use --user their@email)")
            found.append({"slack_user_id": person.slack_user_id, "email": person.email, "name": person.name or person.email})
        elif "@" in text.strip("@"):
            ref = PersonRef(email=text)  # refuses what is not an email
            found.append({"email": (ref.email or "").lower(), "name": None})
        else:
            raise InvalidInput(f"unknown user '{text}': give a Slack mention (@name) or an email")
    return found
