"""Results as terminal text (tables, lines) or JSON for scripts."""

from __future__ import annotations

import json

from bot.clock import short
from bot.domain.views import IncidentView
from commands.results import (
    Done,
    FileOutput,
    HelpText,
    IncidentDetail,
    IncidentList,
    Lines,
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
            rows = [[v.id, v.severity, v.status, ", ".join(v.services), short(v.declared_at), v.title] for v in result.incidents]
            text = table(["ID", "SEV", "STATUS", "SERVICES", "DECLARED", "TITLE"], rows) if rows else "no incidents"
            if result.delivery_problems:
                text += "\n\nDelivery problems (dead-lettered):\n" + "\n".join(f"  ! {p}" for p in result.delivery_problems)
            return text
        case Timeline():
            head = f"{result.incident.id} {result.incident.severity} [{result.incident.status}] {result.incident.title}"
            rows = [[short(e.at), e.origin, e.actor, e.text or e.kind] for e in result.events]
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
        case OpenDeclareModal():
            return "declare needs --sev, --title and --service"
    raise TypeError(f"cannot render {type(result).__name__}")


def _detail(v: IncidentView) -> str:
    lines = [
        f"{v.id}  {v.title}",
        f"  severity:     {v.severity}",
        f"  status:       {v.status}",
        f"  services:     {', '.join(v.services)}",
        f"  declared:     {short(v.declared_at)} by {v.declared_by}",
    ]
    for label, value in (("acknowledged", v.acknowledged_at), ("resolved", v.resolved_at), ("closed", v.closed_at)):
        if value:
            lines.append(f"  {label + ':':<13} {short(value)}")
    if v.description:
        lines.append(f"  description:  {v.description}")
    if v.resolution:
        lines.append(f"  resolution:   {v.resolution}")
    for link in v.links:
        lines.append(f"  {link.system}:    {link.label} {link.status or ''} {link.url or ''}".rstrip())
    for problem in v.delivery_problems:
        lines.append(f"  ! delivery:   {problem}")
    return "\n".join(lines)


def table(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*columns).rstrip()]
    out += [fmt.format(*[str(x) for x in row]).rstrip() for row in rows]
    return "\n".join(out)
