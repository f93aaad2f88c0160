"""Runbooks attached by service (and optionally by alert attributes): `im runbook set --service payments URL
--match class=db`. When an incident declares, the runbooks that match it are written as one `runbook`
timeline step in the declaration's own transaction, so its links are fixed at declaration (a runbook
changed later does not rewrite old incidents) and reach the root message, the first thread reply and
`im status` through that one step.

What a runbook's `--match` is compared with: the incident's severity and custom fields, and the
attributes an alert gave (`alert_attributes` in the declaration's context: class, component, group,
labels). An alert's own runbook link (`runbook_url` in the context, e.g. an Alertmanager annotation) is
added first when it is a safe URL.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, Column, Text, UniqueConstraint, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

from bot.clock import utcnow
from bot.domain.errors import InvalidInput
from bot.domain.models import Incident, TimelineEvent
from bot.domain.views import ExternalLink
from bot.store import Store

KIND = "runbook"  # the timeline step that carries an incident's runbooks
RUNBOOK_URL = "runbook_url"  # declaration context: a link the alert itself gave
ALERT_ATTRIBUTES = "alert_attributes"  # declaration context: what a runbook's --match is compared with
MAX_URL = 2000
MAX_PER_INCIDENT = 10
_KEY = re.compile(r"[a-z0-9_.-]{1,64}")
# a URL is shown as a link in Slack (<url|label>) and in terminals: nothing that could end or split a
# token, no quotes, no whitespace or control characters
_NOT_IN_URL = re.compile(r"[\s<>|\"'`\\\x00-\x1f\x7f]")


class Runbook(SQLModel, table=True):
    __tablename__ = "runbook"
    __table_args__ = (UniqueConstraint("service", "match_key", name="uq_runbook_service_match"),)

    id: int | None = Field(default=None, primary_key=True)
    service: str = Field(index=True)
    match_key: str = ""  # the match in its one written form ("class=db,component=api"; "" matches all)
    match: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    set_by: str
    set_at: datetime = Field(default_factory=utcnow)


_COLUMNS = Runbook.__table__.c  # type: ignore[attr-defined]  # SQLModel declares __table__ at runtime
_BY_SERVICES = sa_select(_COLUMNS.service, _COLUMNS.match_key, _COLUMNS.match, _COLUMNS.url).where(
    _COLUMNS.service.in_(bindparam("services", expanding=True))
)


def check_url(url: str) -> str:
    """An http(s) URL with a host, and nothing in it that could become markup: else InvalidInput, saying why."""
    text = (url or "").strip()
    shown = text[:80]
    if not text:
        raise InvalidInput("the runbook URL is empty")
    if len(text) > MAX_URL:
        raise InvalidInput(f"the runbook URL is {len(text)} characters long; at most {MAX_URL} are allowed")
    if _NOT_IN_URL.search(text):
        raise InvalidInput(f"'{shown}' is not a usable URL: no spaces, quotes, <, >, | or backslashes")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidInput(f"'{shown}' is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"'{shown}' is not an http(s) URL (expected https://host/path)")
    return text


def parse_match(text: str | None) -> dict[str, str]:
    """`class=db,component=api` -> {"class": "db", "component": "api"}; keys lowercase, values compared
    without case. Empty: matches every incident of the service."""
    found: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not _KEY.fullmatch(key) or not value or len(value) > 200:
            raise InvalidInput(f"'{part.strip()[:60]}' is not a match (expected key=value, e.g. class=db)")
        if key in found and found[key] != value:
            raise InvalidInput(f"'{key}' is given twice in the match")
        found[key] = value
    return found


def match_key(match: Mapping[str, str]) -> str:
    return ",".join(f"{k}={match[k]}" for k in sorted(match))


def _service(name: str) -> str:
    text = (name or "").strip().lower()
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_." for c in text):
        raise InvalidInput(f"'{name[:60]}' is not a service name (letters, digits, - _ . up to 64)")
    return text


# -- configuration: set, list, remove ------------------------------------------------------------
def set_runbook(store: Store, *, service: str, url: str, match: str | None, actor: str) -> tuple[Runbook, str | None]:
    """The runbook of (service, match), replacing the URL it had: (the runbook, its former URL or None)."""
    name, link, wanted = _service(service), check_url(url), parse_match(match)
    key = match_key(wanted)
    with store.transaction() as session:
        row = session.exec(select(Runbook).where(Runbook.service == name, Runbook.match_key == key)).first()
        before = row.url if row else None
        row = row or Runbook(service=name, match_key=key, match=wanted, url=link, set_by=actor)
        row.url, row.set_by, row.set_at = link, actor, utcnow()
        session.add(row)
        session.flush()
        session.expunge(row)
    return row, before


def list_runbooks(store: Store, service: str | None = None) -> list[Runbook]:
    query = select(Runbook).order_by(col(Runbook.service), col(Runbook.match_key))
    if service:
        query = query.where(Runbook.service == _service(service))
    with store.read() as session:
        return list(session.exec(query))


def remove_runbook(store: Store, *, service: str, match: str | None) -> Runbook | None:
    name, key = _service(service), match_key(parse_match(match))
    with store.transaction() as session:
        row = session.exec(select(Runbook).where(Runbook.service == name, Runbook.match_key == key)).first()
        if row is not None:
            session.delete(row)
    return row


# -- at declaration ------------------------------------------------------------------------------
def alert_context(runbook_url: str | None, component: str | None, details: Mapping[str, Any]) -> dict[str, Any]:
    """What an alert adds to its incident's declaration for runbooks: its own link, and its attributes (the
    component, scalar details such as class and group, Alertmanager's labels) for `--match`."""
    found: dict[str, str] = {"component": component} if component else {}
    for key, value in details.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            found[str(key)] = str(value)
    labels = details.get("labels")
    if isinstance(labels, Mapping):
        found |= {str(k): str(v) for k, v in labels.items() if isinstance(v, str)}
    return {RUNBOOK_URL: runbook_url, ALERT_ATTRIBUTES: found}


def attributes(incident: Incident, context: Mapping[str, Any]) -> dict[str, str]:
    """What a match is compared with: severity, custom fields, then an alert's attributes."""
    found = {"severity": incident.severity, **{k.lower(): str(v) for k, v in (incident.fields or {}).items()}}
    given = context.get(ALERT_ATTRIBUTES)
    if isinstance(given, Mapping):
        found |= {str(k).lower(): str(v) for k, v in given.items() if isinstance(v, str | int | float) and str(v)}
    return found


def matches(wanted: Mapping[str, str], values: Mapping[str, str]) -> bool:
    """Whether every key=value of a runbook's match holds (case-insensitively) in the incident's values."""
    return all(values.get(k, "").lower() == v.lower() for k, v in wanted.items())


def runbooks_for(session: Session, incident: Incident, context: Mapping[str, Any]) -> list[dict[str, str]]:
    """The incident's runbook links, most specific first: the alert's own, then by match size."""
    found: list[dict[str, str]] = []
    alert_url = context.get(RUNBOOK_URL)
    if isinstance(alert_url, str) and alert_url.strip():
        with contextlib.suppress(InvalidInput):  # an alert's bad link is dropped, never shown as a link
            found.append({"url": check_url(alert_url), "label": "Runbook (from the alert)"})
    if incident.services:
        values = attributes(incident, context)
        # a Core read on the declaration's connection (this runs inside every declare's write), built once
        rows = session.connection().execute(_BY_SERVICES, {"services": list(incident.services)}).all()
        for row in sorted(rows, key=lambda r: (-len(r.match), r.service, r.match_key)):
            if matches(row.match, values):
                label = f"Runbook ({row.service}{', ' + row.match_key if row.match_key else ''})"
                found.append({"url": row.url, "label": label})
    unique: dict[str, dict[str, str]] = {}
    for item in found:
        unique.setdefault(item["url"], item)  # the most specific label of a URL wins
    return list(unique.values())[:MAX_PER_INCIDENT]


def declare_extra(session: Session, incident: Incident, context: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """IncidentService.declare_extras: one `runbook` step when any runbook matches."""
    found = runbooks_for(session, incident, context)
    if not found:
        return []
    text = "Runbook: " + " · ".join(f"{item['label']} {item['url']}" for item in found)
    return [(KIND, text, {"runbooks": found})]


# -- reading them back: links of an incident -----------------------------------------------------
def _links(event: TimelineEvent) -> list[ExternalLink]:
    items = event.data.get("runbooks") or []
    return [ExternalLink(system="runbook", label=str(i.get("label") or "Runbook"), url=str(i.get("url"))) for i in items]


def runbook_links(session: Session, incident: Incident) -> list[ExternalLink]:
    event = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.number, TimelineEvent.kind == KIND)
        .order_by(col(TimelineEvent.id))
    ).first()
    return _links(event) if event is not None else []


def runbook_links_bulk(session: Session, incident_ids: list[int]) -> dict[int, list[ExternalLink]]:
    events = session.exec(
        select(TimelineEvent)
        .where(col(TimelineEvent.incident_id).in_(incident_ids), TimelineEvent.kind == KIND)
        .order_by(col(TimelineEvent.id))
    ).all()
    found: dict[int, list[ExternalLink]] = {}
    for event in events:
        found.setdefault(event.incident_id, _links(event))
    return found
