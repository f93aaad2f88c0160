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

from bot.clock import as_utc, short
from bot.domain.views import IncidentView
from commands.results import Done, HelpText, IncidentDetail, IncidentList, Lines, OpenDeclareModal, Result, Table, Timeline

_RESET = "\033[0m"
SEVERITY_COLOURS = {"SEV-1": "\033[1;31m", "SEV-2": "\033[31m", "SEV-3": "\033[33m", "SEV-4": "\033[36m"}
STATUS_COLOURS = {"open": "\033[1;31m", "mitigated": "\033[33m", "resolved": "\033[32m", "closed": "\033[2m"}


@dataclass(frozen=True)
class Style:
    colour: bool = False
    local_time: bool = False

    def time(self, value: datetime | None) -> str:
        if value is None or not self.local_time:
            return short(value)
        local = as_utc(value).astimezone()
        return local.strftime("%Y-%m-%d %H:%M ") + (local.strftime("%Z") or local.strftime("%z"))

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
                [v.id, v.severity, v.status, ", ".join(v.services), style.time(v.declared_at), v.title] for v in result.incidents
            ]
            paint = {1: style.severity, 2: style.status}
            text = table(["ID", "SEV", "STATUS", "SERVICES", "DECLARED", "TITLE"], rows, paint) if rows else "no incidents"
            if result.delivery_problems:
                text += "\n\nDelivery problems (dead-lettered):\n" + "\n".join(f"  ! {p}" for p in result.delivery_problems)
            return text
        case Timeline():
            v = result.incident
            head = f"{v.id} {style.severity(v.severity)} [{style.status(v.status)}] {v.title}"
            rows = [[style.time(e.at), e.origin, e.actor, e.text or e.kind] for e in result.events]
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
    raise TypeError(f"cannot render {type(result).__name__}")


def _detail(v: IncidentView, style: Style) -> str:
    lines = [
        f"{v.id}  {v.title}",
        f"  severity:     {style.severity(v.severity)}",
        f"  status:       {style.status(v.status)}",
        f"  services:     {', '.join(v.services)}",
        f"  declared:     {style.time(v.declared_at)} by {v.declared_by}",
    ]
    for label, value in (("acknowledged", v.acknowledged_at), ("resolved", v.resolved_at), ("closed", v.closed_at)):
        if value:
            lines.append(f"  {label + ':':<13} {style.time(value)}")
    if v.description:
        lines.append(f"  description:  {v.description}")
    if v.resolution:
        lines.append(f"  resolution:   {v.resolution}")
    for link in v.links:
        lines.append(f"  {link.system}:    {link.label} {link.status or ''} {link.url or ''}".rstrip())
    for problem in v.delivery_problems:
        lines.append(f"  ! delivery:   {problem}")
    return "\n".join(lines)


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
