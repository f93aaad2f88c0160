"""Terminal text of incidents from plain data (stdlib only), and the terminal's `Style`.

One formatter for both read paths of `im status`: the full path hands it a result's
`model_dump(mode="json")` (commands/render_text.py), the terminal's fast path (bot/fast_status.py) the
same JSON-shaped data read with sqlite3, so the two print the same bytes.

`Style` is what the reader's terminal allows: colour for severity and status only on a terminal that
supports it, times in local time unless `--utc`. The default style (Slack's text answers, pipes) is
plain and UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from bot.clock import as_utc, format_duration, human_duration, seconds_between
from bot.domain.texts import person_label

_RESET = "\033[0m"
SEVERITY_COLOURS = {"SEV-1": "\033[1;31m", "SEV-2": "\033[31m", "SEV-3": "\033[33m", "SEV-4": "\033[36m"}
STATUS_COLOURS = {"open": "\033[1;31m", "mitigated": "\033[33m", "resolved": "\033[32m", "closed": "\033[2m"}

View = Mapping[str, Any]  # an IncidentView as JSON-shaped data (its times ISO strings)


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


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def incident_list_text(incidents: Sequence[View], delivery_problems: Sequence[str], style: Style) -> str:
    """`status` (and `list`): a table of incidents, then the delivery problems."""
    rows = [
        [
            v["id"],
            v["severity"],
            v["status"],
            ", ".join(v["services"]),
            style.time(_when(v["declared_at"])),
            person_label(v["owner"]) if v["owner"] else "-",
            v["title"],
        ]
        for v in incidents
    ]
    paint = {1: style.severity, 2: style.status}
    columns = ["ID", "SEV", "STATUS", "SERVICES", "DECLARED", "OWNER", "TITLE"]
    text = table(columns, rows, paint) if rows else "no incidents"
    if delivery_problems:
        text += "\n\nDelivery problems (dead-lettered):\n" + "\n".join(f"  ! {p}" for p in delivery_problems)
    return text


def incident_detail_text(v: View, style: Style) -> str:
    """`status --incident`: one incident in full."""
    lines = [
        f"{v['id']}  {v['title']}",
        f"  severity:     {style.severity(v['severity'])}",
        f"  status:       {style.status(v['status'])}",
        f"  services:     {', '.join(v['services'])}",
        f"  declared:     {style.time(_when(v['declared_at']))} by {v['declared_by']}",
    ]
    lines.append(f"  owner:        {person_label(v['owner']) if v['owner'] else '(nobody)'}")
    for role, person in sorted(v["roles"].items()):
        lines.append(f"  {role + ':':<13} {person_label(person)}")
    for label, key in (("acknowledged", "acknowledged_at"), ("resolved", "resolved_at"), ("closed", "closed_at")):
        if v[key]:
            lines.append(f"  {label + ':':<13} {style.time(_when(v[key]))}")
    for label, key in (("to ack", "time_to_acknowledge_seconds"), ("to resolve", "time_to_resolve_seconds")):
        if v[key] is not None:
            lines.append(f"  {label + ':':<13} {human_duration(v[key])}")
    lines += [f"  {clock['kind'] + ' SLA:':<13} {_clock(clock, style)}" for clock in v["sla"]]
    if v["description"]:
        lines.append(f"  description:  {v['description']}")
    lines += [f"  {key + ':':<13} {value}" for key, value in v["fields"].items()]
    if v["resolution"]:
        lines.append(f"  resolution:   {v['resolution']}")
    for link in v["links"]:
        lines.append(f"  {link['system']}:    {link['label']} {link['status'] or ''} {link['url'] or ''}".rstrip())
    for problem in v["delivery_problems"]:
        lines.append(f"  ! delivery:   {problem}")
    return "\n".join(lines)


def _clock(clock: View, style: Style) -> str:
    target = f"target {format_duration(clock['target_seconds'])}"
    started, stopped = _when(clock["started_at"]), _when(clock["stopped_at"])
    if started is not None and stopped is not None:
        return f"{clock['state']} ({target}, took {human_duration(seconds_between(started, stopped) or 0)})"
    verb = "breached at" if clock["state"] == "breached" else "due"
    return f"{clock['state']} ({target}, {verb} {style.time(_when(clock['due_at']))})"
