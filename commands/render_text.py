"""Results as terminal text (tables, lines) or JSON for scripts.

`Style` is what the reader's terminal allows: colour for severity and status only on a terminal that
supports it, times in local time unless `--utc`. The default style (Slack's text answers, pipes) is
plain and UTC; JSON never carries either (its times are ISO UTC, its text uncoloured).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from commands.render_plain import PLAIN as PLAIN
from commands.render_plain import Style as Style
from commands.render_plain import incident_detail_text, incident_list_text
from commands.render_plain import table as table
from commands.render_plain import terminal_style as terminal_style
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
            return incident_detail_text(result.incident.model_dump(mode="json"), style)
        case IncidentList():
            shown = result.model_dump(mode="json")
            return incident_list_text(shown["incidents"], shown["delivery_problems"], style)
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
