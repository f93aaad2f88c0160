"""Results as terminal text (tables, lines) or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from bot.clock import as_utc, format_duration, human_duration, short, with_seconds
from bot.domain.views import IncidentView, SlaClockView
from commands.results import (
    Done,
    HelpText,
    IncidentDetail,
    IncidentList,
    Lines,
    OnCallResult,
    OnCallShift,
    OpenDeclareModal,
    Result,
    Table,
    Timeline,
)


def render(result: Result, *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(result.model_dump(mode="json"), indent=2)
    match result:
        case Done():
            lines = [result.message]
            if result.incident is not None and result.incident.links:
                lines += [f"  {link.label}: {link.status or ''} {link.url or ''}".rstrip() for link in result.incident.links]
            return "\n".join(lines)
        case IncidentDetail():
            return _detail(result.incident)
        case IncidentList():
            rows = [
                [
                    v.id,
                    v.severity,
                    v.status,
                    ", ".join(v.services),
                    short(v.declared_at),
                    v.owner.label if v.owner else "-",
                    v.title,
                ]
                for v in result.incidents
            ]
            text = table(["ID", "SEV", "STATUS", "SERVICES", "DECLARED", "OWNER", "TITLE"], rows) if rows else "no incidents"
            if result.delivery_problems:
                text += "\n\nDelivery problems (dead-lettered):\n" + "\n".join(f"  ! {p}" for p in result.delivery_problems)
            return text
        case Timeline():
            head = f"{result.incident.id} {result.incident.severity} [{result.incident.status}] {result.incident.title}"
            rows = [[with_seconds(e.at), e.origin, e.actor, e.text or e.kind] for e in result.events]
            return head + "\n" + table(["AT", "ORIGIN", "ACTOR", "WHAT"], rows)
        case Table():
            text = table(result.columns, result.rows) if result.rows else "(none)"
            return f"{result.title}\n{text}" if result.title else text
        case Lines():
            return "\n".join(result.lines)
        case HelpText():
            return result.text
        case OpenDeclareModal():
            return "declare needs --sev, --title and --service"
        case OnCallResult():
            return "\n".join(oncall_lines(result, lambda t: _local_time(t, utc=result.utc), lambda name: name))
    raise TypeError(f"cannot render {type(result).__name__}")


def _local_time(value: datetime, *, utc: bool) -> str:
    """A terminal shows its own local time (TZ), or UTC when asked."""
    shown = as_utc(value) if utc else as_utc(value).astimezone()
    return shown.strftime("%Y-%m-%d %H:%M ") + (shown.tzname() or "")


def oncall_lines(result: OnCallResult, when: Callable[[datetime], str], name: Callable[[str], str]) -> list[str]:
    """The seed's on-call lines, for any front end: `when` renders a time, `name` a name we did not write."""

    def who(shifts: list[OnCallShift], *, upcoming: bool) -> str:
        if not shifts:
            return "nobody"
        parts = []
        for shift in shifts:
            if upcoming:
                span = f" ({when(shift.start)})" if shift.start else ""
            else:
                span = f" (until {when(shift.end)})" if shift.end else " (always)"
            parts.append(name(shift.name) + span)
        return ", ".join(parts)

    lines: list[str] = []
    for service in result.services:
        if lines:
            lines.append("")
        lines += [f"Service: {name(service.service)}", f"Escalation policy: {name(service.policy)}"]
        if not service.levels:
            lines.append("Current On-Call: nobody")
        for level in service.levels:
            if level.level == service.levels[0].level:
                lines.append(f"Current On-Call: {who(level.now, upcoming=False)}")
                if level.next:
                    lines.append(f"Next On-Call: {who(level.next, upcoming=True)}")
                continue
            after = f"After {level.after_minutes} minutes" if level.after_minutes else f"Level {level.level}"
            lines.append(f"Escalation: {after} → {who(level.now, upcoming=False)}")
            if level.next:
                lines.append(f"  then: {who(level.next, upcoming=True)}")
    return lines


def _detail(v: IncidentView) -> str:
    lines = [
        f"{v.id}  {v.title}",
        f"  severity:     {v.severity}",
        f"  status:       {v.status}",
        f"  services:     {', '.join(v.services)}",
        f"  declared:     {short(v.declared_at)} by {v.declared_by}",
    ]
    lines.append(f"  owner:        {v.owner.label if v.owner else '(nobody)'}")
    for role, person in sorted(v.roles.items()):
        lines.append(f"  {role + ':':<13} {person.label}")
    for label, value in (("acknowledged", v.acknowledged_at), ("resolved", v.resolved_at), ("closed", v.closed_at)):
        if value:
            lines.append(f"  {label + ':':<13} {short(value)}")
    for label, seconds in (("to ack", v.time_to_acknowledge_seconds), ("to resolve", v.time_to_resolve_seconds)):
        if seconds is not None:
            lines.append(f"  {label + ':':<13} {human_duration(seconds)}")
    lines += [f"  {clock.kind + ' SLA:':<13} {_clock(clock)}" for clock in v.sla]
    if v.description:
        lines.append(f"  description:  {v.description}")
    if v.resolution:
        lines.append(f"  resolution:   {v.resolution}")
    for link in v.links:
        lines.append(f"  {link.system}:    {link.label} {link.status or ''} {link.url or ''}".rstrip())
    for problem in v.delivery_problems:
        lines.append(f"  ! delivery:   {problem}")
    return "\n".join(lines)


def _clock(clock: SlaClockView) -> str:
    target = f"target {format_duration(clock.target_seconds)}"
    if clock.stopped_at is not None:
        return f"{clock.state} ({target}, took {human_duration(clock.elapsed_seconds or 0)})"
    verb = "breached at" if clock.state == "breached" else "due"
    return f"{clock.state} ({target}, {verb} {short(clock.due_at)})"


def table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*columns).rstrip()]
    out += [fmt.format(*[str(x) for x in row]).rstrip() for row in rows]
    return "\n".join(out)
