"""PagerDuty's part of a report (`--include-pagerduty`): for each linked PagerDuty incident, its response
figures from its log entries (first notification, who was paged and how, who acknowledged, escalations),
and the on-call load per PagerDuty user.

Reads are paged and rate-limit aware (the API client), made once per PagerDuty incident for the run, and
never fail the report: a connector that cannot be reached is skipped after its first failure, with a
note saying which figures are missing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.app import Im
from bot.reports.facts import FactsProvider
from bot.reports.model import ExternalIncident, ExternalSection, PersonLoad
from integrations.pagerduty.api.errors import PagerDutyError
from integrations.pagerduty.api.models import LogEntry
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import PagerDutyLink

SYSTEM = "PagerDuty"
LOOK_BEFORE = timedelta(
    days=1
)  # a PagerDuty incident may start before ours (declared from PagerDuty), and its log is to the second
MAX_WAIT_SECONDS = 20.0  # of rate-limit and retry sleeps per call: a report waits, but not for ever


@dataclass
class _Load:
    pages: int = 0
    acks: int = 0
    ack_seconds: list[float] = field(default_factory=list)


def facts_of(
    entries: list[LogEntry], label: str, url: str | None
) -> tuple[ExternalIncident, list[tuple[str, str, float | None]]]:
    """One PagerDuty incident's figures from its log, and its (kind, person, seconds) load items."""
    entries = sorted(entries, key=lambda e: e.created_at)
    triggered = next((e.created_at for e in entries if e.type == "trigger_log_entry"), None)
    facts = ExternalIncident(system=SYSTEM, label=label, url=url)
    load: list[tuple[str, str, float | None]] = []
    for entry in entries:
        if entry.type == "notify_log_entry" and entry.user is not None:
            person = entry.user.summary or entry.user.id
            how = (entry.channel or {}).get("type") or "notification"
            facts.first_notification_at = facts.first_notification_at or entry.created_at
            if f"{person} ({how})" not in facts.paged:
                facts.paged.append(f"{person} ({how})")
            load.append(("page", person, None))
        elif entry.type == "acknowledge_log_entry" and entry.agent is not None:
            person = entry.agent.summary or entry.agent.id
            seconds = (entry.created_at - triggered).total_seconds() if triggered else None
            if facts.acknowledged_at is None:
                facts.acknowledged_at, facts.tta_seconds = entry.created_at, seconds
            if person not in facts.acknowledged_by:
                facts.acknowledged_by.append(person)
            load.append(("ack", person, seconds))
        elif entry.type == "escalate_log_entry":
            facts.escalations += 1
    return facts, load


def report_facts(im: Im, registry: ConnectorRegistry) -> FactsProvider:
    def provide(incidents: dict[int, str], start: datetime, end: datetime) -> ExternalSection:
        section = ExternalSection(system=SYSTEM)
        links: list[PagerDutyLink] = []
        ids = list(incidents)
        with im.store.read() as session:
            for offset in range(0, len(ids), 500):
                query = select(PagerDutyLink).where(col(PagerDutyLink.incident_id).in_(ids[offset : offset + 500]))
                links += session.exec(
                    query.where(col(PagerDutyLink.pd_incident_id).isnot(None)).order_by(col(PagerDutyLink.id))
                ).all()
        if not links:
            section.notes.append("no incident in this report is linked to a PagerDuty incident")
            return section
        connectors = {c.name: c for c in registry.all()}
        cache: dict[tuple[str, str], list[LogEntry]] = {}
        down: dict[str, str] = {}
        missing = 0
        load: dict[str, _Load] = defaultdict(_Load)
        for link in links:
            assert link.pd_incident_id is not None
            connector = connectors.get(link.connector)
            if connector is None or link.connector in down:
                missing += 1
                continue
            key = (link.connector, link.pd_incident_id)
            if key not in cache:
                try:
                    with client_for(registry, connector, max_wait=MAX_WAIT_SECONDS) as client:
                        cache[key] = list(client.iter_incident_log_entries(link.pd_incident_id, since=start - LOOK_BEFORE))
                except PagerDutyError as exc:
                    down[link.connector] = exc.user_message
                    missing += 1
                    continue
            label = f"#{link.pd_incident_number} ({link.service})" if link.pd_incident_number else link.pd_incident_id
            facts, items = facts_of(cache[key], label, link.html_url)
            section.incidents.setdefault(incidents[link.incident_id], []).append(facts)
            for kind, person, seconds in items:
                if kind == "page":
                    load[person].pages += 1
                else:
                    load[person].acks += 1
                    if seconds is not None:
                        load[person].ack_seconds.append(seconds)
        for name, reason in sorted(down.items()):
            section.notes.append(f"PagerDuty connector '{name}' could not be read ({reason}): its figures are missing")
        if missing:
            section.notes.append(f"{missing} linked PagerDuty incident(s) have no figures in this report")
        section.load = [
            PersonLoad(
                person=person,
                pages=item.pages,
                acknowledgements=item.acks,
                mean_tta_seconds=round(sum(item.ack_seconds) / len(item.ack_seconds), 3) if item.ack_seconds else None,
            )
            for person, item in sorted(load.items())
        ]
        return section

    provide.system = SYSTEM  # type: ignore[attr-defined]  # named in the note if the provider itself fails
    return provide
