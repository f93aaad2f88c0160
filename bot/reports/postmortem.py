"""A postmortem draft from the unified timeline: what happened, to what, who was involved, each step
with where it came from (Slack, terminal, PagerDuty, scheduler), the resolution, and empty sections for
people to fill in. Facts only: nothing here is guessed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bot.app import Im
from bot.clock import as_utc, short, utcnow
from bot.domain.views import EventView, IncidentView
from bot.reports.facts import gather
from bot.reports.figures import sla_outcome
from bot.reports.model import ExternalSection, duration_text
from bot.reports.sections import Link, Table
from bot.reports.targets import Targets

ORIGINS = {"slack": "Slack", "cli": "terminal", "pagerduty": "PagerDuty", "scheduler": "scheduler"}
TO_FILL = ("Contributing factors", "What went well", "What went badly", "Follow-ups (owner, due date, ticket)")


class Postmortem(BaseModel):
    incident: IncidentView
    events: list[EventView]
    reopened: bool
    ack_sla: str | None = None
    resolve_sla: str | None = None
    targets: dict[str, int] = Field(default_factory=dict)
    external: list[ExternalSection] = Field(default_factory=list)
    generated_at: datetime

    @property
    def title(self) -> str:
        return f"Postmortem draft: {self.incident.id} {self.incident.title}"


def make_postmortem(im: Im, ref: str | int, targets: Targets, *, include_external: bool = True) -> Postmortem:
    incident, events = im.incidents.timeline(ref)
    with im.store.read() as session:
        views = [EventView.of(e, actor=im.display_name(session, e.actor)) for e in events]
    view = im.describe(incident)
    now = utcnow()
    done = incident.status in ("resolved", "closed")
    elapsed = (now - as_utc(incident.declared_at)).total_seconds()
    wanted = targets.get(incident.severity, {})
    external = (
        gather(im.report_facts, {incident.number: incident.ref}, as_utc(incident.declared_at), now) if include_external else []
    )
    return Postmortem(
        incident=view,
        events=views,
        reopened=incident.reopened_at is not None,
        ack_sla=sla_outcome(view.time_to_acknowledge_seconds, elapsed, wanted.get("ack")),
        resolve_sla=sla_outcome(view.time_to_resolve_seconds if done else None, elapsed, wanted.get("resolve")),
        targets=dict(wanted),
        external=external,
        generated_at=now,
    )


def impact(pm: Postmortem) -> list[tuple[str, str]]:
    v = pm.incident
    done = v.status in ("resolved", "closed")
    sla = []
    for kind, outcome in (("acknowledge", pm.ack_sla), ("resolve", pm.resolve_sla)):
        target = pm.targets.get("ack" if kind == "acknowledge" else "resolve")
        sla.append(f"{kind} within {duration_text(target)}: {outcome}" if outcome else f"{kind}: no target")
    return [
        ("Severity", v.severity),
        ("Services", ", ".join(v.services) or "-"),
        ("Status", v.status + (" (reopened at least once)" if pm.reopened else "")),
        ("Declared", f"{short(v.declared_at)} by {v.declared_by}"),
        ("Acknowledged", f"{short(v.acknowledged_at)} (after {duration_text(v.time_to_acknowledge_seconds)})"),
        (
            "Resolved",
            f"{short(v.resolved_at if done else None)} (after {duration_text(v.time_to_resolve_seconds if done else None)})",
        ),
        ("SLA", "; ".join(sla)),
    ]


def people(pm: Postmortem) -> list[tuple[str, str]]:
    v = pm.incident
    found = [("Owner", v.owner.label if v.owner else "nobody set")]
    found += [(role.capitalize(), person.label) for role, person in sorted(v.roles.items())]
    for section in pm.external:
        for items in section.incidents.values():
            for item in items:
                if item.paged:
                    found.append((f"Paged by {section.system}", ", ".join(item.paged)))
                if item.acknowledged_by:
                    found.append((f"Acknowledged in {section.system}", ", ".join(item.acknowledged_by)))
    return found


def timeline_table(pm: Postmortem) -> Table:
    return Table(
        "Timeline",
        ["at (UTC)", "from", "who", "what"],
        [[short(e.at).removesuffix(" UTC"), ORIGINS.get(e.origin, e.origin), e.actor, e.text or e.kind] for e in pm.events],
    )


def links_of(pm: Postmortem) -> list[Link]:
    return [Link(link.label, link.url) for link in pm.incident.links if link.url]


def notes_of(pm: Postmortem) -> list[str]:
    return [f"{s.system}: {n}" for s in pm.external for n in s.notes]
