"""Results as terminal text (tables, lines) or JSON for scripts.

`Style` is what the reader's terminal allows: colour for severity and status only on a terminal that
supports it, times in local time unless `--utc`. The default style (Slack's text answers, pipes) is
plain and UTC; JSON never carries either (its times are ISO UTC, its text uncoloured).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from bot.clock import as_utc, format_duration, human_duration
from bot.domain.views import IncidentView, SlaClockView
from commands.results import (
    DocumentRequest,
    Done,
    FileOutput,
    HelpText,
    IncidentDetail,
    IncidentList,
    Lines,
    LogLine,
    LogLines,
    OnCallResult,
    OnCallShift,
    OpenDeclareModal,
    OutboxJobs,
    Result,
    Table,
    Timeline,
)

_RESET = "\033[0m"
SEVERITY_COLOURS = {"SEV-1": "\033[1;31m", "SEV-2": "\033[31m", "SEV-3": "\033[33m", "SEV-4": "\033[36m"}
STATUS_COLOURS = {"open": "\033[1;31m", "mitigated": "\033[33m", "resolved": "\033[32m", "closed": "\033[2m"}


@dataclass(frozen=True)
class Style:
    colour: bool = False
    local_time: bool = False

    def time(self, value: datetime | None, *, seconds: bool = False) -> str:
        if value is None:
            return "-"
        shown = as_utc(value).astimezone() if self.local_time else as_utc(value)
        return shown.strftime("%Y-%m-%d %H:%M:%S " if seconds else "%Y-%m-%d %H:%M ") + (shown.tzname() or shown.strftime("%z"))

    def severity(self, text: str) -> str:
        return self._paint(text, SEVERITY_COLOURS.get(text.strip()))

    def status(self, text: str) -> str:
        return self._paint(text, STATUS_COLOURS.get(text.strip()))

    def _paint(self, text: str, code: str | None) -> str:
        return f"{code}{text}{_RESET}" if self.colour and code else text


PLAIN = Style()


def terminal_style(stream: TextIO, environ: Mapping[str, str], *, utc: bool) -> Style:
    """Colour only on a terminal that shows it: a tty, no NO_COLOR (https://no-color.org), TERM not dumb."""
    colour = stream.isatty() and not environ.get("NO_COLOR") and environ.get("TERM", "") not in ("", "dumb")
    return Style(colour=colour, local_time=not utc)


def render(result: Result, *, as_json: bool = False, style: Style = PLAIN) -> str:
    if as_json and isinstance(result, LogLines):  # JSON lines: what `jq` and log shippers read, also while following
        return "\n".join(json.dumps(record.model_dump(mode="json")) for record in result.records)
    if as_json:
        return json.dumps(result.model_dump(mode="json"), indent=2)
    match result:
        case Done():
            lines = [result.message]
            if result.incident is not None and result.incident.links:
                lines += [f"  {link.label}: {link.status or ''} {link.url or ''}".rstrip() for link in result.incident.links]
            return "\n".join(lines)
        case IncidentDetail():
            return _detail(result.incident, style)
        case IncidentList():
            rows = [
                [
                    v.id,
                    v.severity,
                    v.status,
                    ", ".join(v.services),
                    style.time(v.declared_at),
                    v.owner.label if v.owner else "-",
                    v.title,
                ]
                for v in result.incidents
            ]
            paint = {1: style.severity, 2: style.status}
            columns = ["ID", "SEV", "STATUS", "SERVICES", "DECLARED", "OWNER", "TITLE"]
            text = table(columns, rows, paint) if rows else "no incidents"
            if result.delivery_problems:
                text += "\n\nDelivery problems (dead-lettered):\n" + "\n".join(f"  ! {p}" for p in result.delivery_problems)
            return text
        case Timeline():
            v = result.incident
            head = f"{v.id} {style.severity(v.severity)} [{style.status(v.status)}] {v.title}"
            rows = [[style.time(e.at, seconds=True), e.origin, e.actor, e.text or e.kind] for e in result.events]
            return head + "\n" + table(["AT", "ORIGIN", "ACTOR", "WHAT"], rows)
        case Table():
            text = table(result.columns, result.rows) if result.rows else "(none)"
            return f"{result.title}\n{text}" if result.title else text
        case Lines():
            return "\n".join(result.lines)
        case HelpText():
            return result.text
        case FileOutput():
            return result.content.decode() if result.printable else result.summary
        case DocumentRequest():
            return f"The {result.document} is being prepared: it will be uploaded here in a moment."
        case OpenDeclareModal():
            return "declare needs --sev, --title and --service"
        case OnCallResult():
            return "\n".join(oncall_lines(result, Style(local_time=not result.utc).time, lambda name: name))
        case LogLines():
            return "\n".join(_log_line(record, style) for record in result.records) or "(no log records)"
        case OutboxJobs():
            return _outbox(result, style)
    raise TypeError(f"cannot render {type(result).__name__}")


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


def _detail(v: IncidentView, style: Style) -> str:
    lines = [
        f"{v.id}  {v.title}",
        f"  severity:     {style.severity(v.severity)}",
        f"  status:       {style.status(v.status)}",
        f"  services:     {', '.join(v.services)}",
        f"  declared:     {style.time(v.declared_at)} by {v.declared_by}",
    ]
    lines.append(f"  owner:        {v.owner.label if v.owner else '(nobody)'}")
    for role, person in sorted(v.roles.items()):
        lines.append(f"  {role + ':':<13} {person.label}")
    for label, value in (("acknowledged", v.acknowledged_at), ("resolved", v.resolved_at), ("closed", v.closed_at)):
        if value:
            lines.append(f"  {label + ':':<13} {style.time(value)}")
    for label, seconds in (("to ack", v.time_to_acknowledge_seconds), ("to resolve", v.time_to_resolve_seconds)):
        if seconds is not None:
            lines.append(f"  {label + ':':<13} {human_duration(seconds)}")
    lines += [f"  {clock.kind + ' SLA:':<13} {_clock(clock, style)}" for clock in v.sla]
    if v.description:
        lines.append(f"  description:  {v.description}")
    lines += [f"  {key + ':':<13} {value}" for key, value in v.fields.items()]
    if v.resolution:
        lines.append(f"  resolution:   {v.resolution}")
    for link in v.links:
        lines.append(f"  {link.system}:    {link.label} {link.status or ''} {link.url or ''}".rstrip())
    for problem in v.delivery_problems:
        lines.append(f"  ! delivery:   {problem}")
    return "\n".join(lines)


def _log_line(record: LogLine, style: Style) -> str:
    fields = " ".join(f"{k}={v}" for k, v in record.fields.items() if k not in ("method", "path") or record.component == "http")
    return (
        f"{style.time(record.at, seconds=True)} {record.level.upper():<7} {record.component:<9} {record.replica} {record.logger}: {record.message}"
        + (f" [{fields}]" if fields else "")
    )


def _outbox(result: OutboxJobs, style: Style) -> str:
    if result.detail:
        job = result.jobs[0]
        lines = [
            f"job {job.id}: {job.destination} {job.kind} ({job.status}, {job.attempts} attempt{'' if job.attempts == 1 else 's'})",
            f"  incident:   {job.incident or '-'}",
            f"  created:    {style.time(job.created_at, seconds=True)}",
            f"  {'next try:' if job.status == 'pending' else 'lease end:' if job.status == 'running' else 'finished:':<11} "
            + style.time(job.available_at if job.status in ("pending", "running") else job.finished_at, seconds=True),
            f"  last error: {job.last_error or '-'}",
            f"  payload:    {json.dumps(job.payload, sort_keys=True)}",
        ]
        return "\n".join(lines)
    rows = [
        [
            str(j.id),
            j.destination,
            j.kind,
            j.incident or "-",
            j.status,
            str(j.attempts),
            style.time(j.finished_at if j.status == "dead" else j.available_at),
            (j.last_error or "").splitlines()[0][:60] if j.last_error else "",
        ]
        for j in result.jobs
    ]
    columns = ["JOB", "DESTINATION", "KIND", "INCIDENT", "STATUS", "TRIES", "WHEN", "LAST ERROR"]
    return f"{result.title}\n" + (table(columns, rows) if rows else "(none)")


def _clock(clock: SlaClockView, style: Style) -> str:
    target = f"target {format_duration(clock.target_seconds)}"
    if clock.stopped_at is not None:
        return f"{clock.state} ({target}, took {human_duration(clock.elapsed_seconds or 0)})"
    verb = "breached at" if clock.state == "breached" else "due"
    return f"{clock.state} ({target}, {verb} {style.time(clock.due_at)})"


def table(columns: list[str], rows: list[list[str]], paint: Mapping[int, Callable[[str], str]] | None = None) -> str:
    """Columns padded to the widest plain cell; `paint` colours a column's cells after padding, so
    escape codes never shift the alignment."""
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    paint = paint or {}

    def line(cells: list[str], painted: bool) -> str:
        padded = [f"{cell:<{w}}" for cell, w in zip(cells, widths, strict=True)]
        if painted:
            padded = [paint[i](cell) if i in paint else cell for i, cell in enumerate(padded)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(columns, False), *(line([str(x) for x in row], True) for row in rows)])
