"""`report` and `postmortem`: figures over a range of days, and a draft for one incident, as documents.

Bad input (an end before the start, an unknown service, severity or format, an output path that cannot
be written) is refused before anything is computed or written; a range without incidents is a report
that says so."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.app import Im
from bot.clock import utcnow
from bot.domain.errors import InvalidInput
from bot.domain.models import Severity
from bot.reports.figures import ReportRequest, known_services, make_report
from bot.reports.model import Report
from bot.reports.postmortem import Postmortem, make_postmortem
from bot.reports.sections import headline_sentence
from commands.context import Context
from commands.grammar import UsageError, argument, command
from commands.results import DocumentRequest, FileOutput, Result

FORMATS = ("text", "json", "csv", "md", "html", "pdf")
POSTMORTEM_FORMATS = ("md", "html", "pdf")
MEDIA = {
    "text": "text/plain",
    "json": "application/json",
    "csv": "text/csv",
    "md": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
}
EXTENSIONS = {"text": "txt"}
LISTED = {"data": 1000, "document": 250}  # a printed list past a few pages is read by nobody; JSON and CSV feed tools
_RELATIVE = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def local_zone() -> tuple[tzinfo, str]:
    """The machine's zone: $TZ, else /etc/localtime's name, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError, IndexError):
        candidates.append(str(Path("/etc/localtime").resolve()).split("zoneinfo/", 1)[1])
    for name in filter(None, candidates):
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC"), "UTC"


def _zone(name: str | None) -> tuple[tzinfo, str]:
    if not name:
        return local_zone()
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"'{name}' is not a time zone (expected a name such as Europe/Paris or UTC)") from None


def _moment(value: str, tz: tzinfo, *, end: bool) -> datetime:
    """A day (YYYY-MM-DD: its start, or for an end the start of the next day, so the day is included)
    or a time (ISO, in `tz` unless it says its offset)."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.fromisoformat(text).replace(tzinfo=tz)
            return day + timedelta(days=1) if end else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"'{value}' is not a date (expected YYYY-MM-DD or an ISO time such as 2026-08-01T09:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _range(args: argparse.Namespace, tz: tzinfo) -> tuple[datetime, datetime]:
    now = utcnow()
    end = _moment(args.end, tz, end=True) if args.end else now
    if args.since and args.start:
        raise UsageError("give --since or --start, not both")
    if args.since:
        match = _RELATIVE.match(args.since.strip().lower())
        if match is None:
            raise UsageError(f"'{args.since}' is not a duration (expected 24h, 7d or 4w)")
        start = end - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    elif args.start:
        start = _moment(args.start, tz, end=False)
    else:
        start = end - timedelta(days=7)
    if end <= start:
        raise UsageError(f"the end ({end:%Y-%m-%d %H:%M}) is not after the start ({start:%Y-%m-%d %H:%M})")
    return start, end


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _severities(values: list[str] | None) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(Severity.parse(v).value for v in _split(values)))
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None


def _output(ctx: Context, given: str | None, default_name: str, fmt: str) -> str | None:
    """Where the terminal writes the document; refused now (nothing computed, nothing written) when it
    cannot be written. PDF has a default name; text formats print when no file is given."""
    if ctx.frontend != "cli":
        return None
    path = given or (default_name if fmt == "pdf" else None)
    if path is None:
        return None
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")
    return path


def render_report(report: Report, fmt: str, paper: str) -> bytes:
    if fmt == "json":
        return report.model_dump_json(indent=2).encode()
    if fmt == "csv":
        from bot.reports.render_csv import report_csv

        return report_csv(report).encode()
    if fmt == "md":
        from bot.reports.render_text import report_md

        return report_md(report).encode()
    if fmt == "html":
        from bot.reports.render_html import report_html

        return report_html(report, paper).encode()
    if fmt == "pdf":
        from bot.reports.render_pdf import report_pdf

        return report_pdf(report, paper)
    from bot.reports.render_text import report_text

    return report_text(report).encode()


def render_postmortem(pm: Postmortem, fmt: str, paper: str) -> bytes:
    from bot.reports import render_postmortem as r

    if fmt == "pdf":
        return r.postmortem_pdf(pm, paper)
    if fmt == "html":
        return r.postmortem_html(pm, paper).encode()
    return r.postmortem_md(pm).encode()


FORMAT = argument("--format", "-f", choices=FORMATS, help="text (default; pdf in Slack), json, csv, md, html or pdf")
OUTPUT = argument("--output", "-o", metavar="FILE", help="write the document to FILE (pdf: a default name)")
PAPER = argument("--paper", choices=("a4", "letter"), default="a4", help="paper size of pdf and html (default a4)")


def _no_output_in_slack(ctx: Context, given: str | None) -> None:
    if given and ctx.frontend != "cli":
        raise UsageError("--output is for the terminal: in Slack the file is uploaded to the conversation")


@command(
    "report",
    summary="MTTA, MTTR, SLA compliance and trends over a range, as text, JSON, CSV, Markdown, HTML or PDF",
    examples=(
        "report --start 2026-08-01 --end 2026-08-31 --format pdf --output august.pdf",
        "report --since 7d --severity SEV-1,SEV-2 --service db",
    ),
)
@argument("--start", metavar="DATE", help="first day (YYYY-MM-DD, included) or an ISO time")
@argument("--end", metavar="DATE", help="last day (YYYY-MM-DD, included) or an ISO time (excluded); default now")
@argument("--since", metavar="AGE", help="instead of --start: 24h, 7d, 4w before the end")
@argument("--tz", metavar="ZONE", help="time zone of the days (default the local one)")
@argument("--service", action="append", metavar="NAME[,NAME...]", help="only incidents touching these services")
@argument("--severity", "--sev", dest="severity", action="append", metavar="SEV[,SEV...]", help="only these severities")
@argument("--include-pagerduty", action="store_true", help="add PagerDuty's response figures and on-call load")
@argument("--include-drills", action="store_true", help="count game day drills too (left out by default)")
@argument(
    "--max-incidents",
    type=int,
    metavar="N",
    help=f"list at most N incidents (0: all; default {LISTED['data']}, pdf and html {LISTED['document']}); figures count all",
)
@FORMAT
@OUTPUT
@PAPER
def report(ctx: Context, args: argparse.Namespace) -> Result:
    """Everything is checked here, before anything is computed: in Slack the report is computed by a
    worker after the ack, from `params`."""
    fmt = args.format or ("pdf" if ctx.frontend == "slack" else "text")
    _no_output_in_slack(ctx, args.output)
    tz, tz_name = _zone(args.tz)
    start, end = _range(args, tz)
    severities = _severities(args.severity)
    services = tuple(dict.fromkeys(s.lower() for s in _split(args.service)))
    if args.max_incidents is None:
        args.max_incidents = LISTED["document" if fmt in ("pdf", "html") else "data"]
    if args.max_incidents < 0:
        raise UsageError("--max-incidents must be 0 (all) or more")
    output = _output(ctx, args.output, _report_name(start, end, fmt), fmt)
    if services:
        with ctx.im.store.read_engine.connect() as conn:
            unknown = sorted(set(services) - known_services(conn))
        if unknown:
            raise UsageError(f"unknown service(s): {', '.join(unknown)} (no incident has ever named them)")
    params: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "tz": tz_name,
        "services": list(services),
        "severities": list(severities),
        "max_listed": args.max_incidents,
        "include_pagerduty": bool(args.include_pagerduty),
        "include_drills": bool(args.include_drills),
        "format": fmt,
        "paper": args.paper,
    }
    if ctx.frontend == "slack":
        return DocumentRequest(document="report", params=params)
    return report_document(ctx.im, params, output)


def _report_name(start: datetime, end: datetime, fmt: str) -> str:
    return f"im-report-{start:%Y%m%d}-{end:%Y%m%d}.{EXTENSIONS.get(fmt, fmt)}"


def report_document(im: Im, params: dict[str, Any], output: str | None = None) -> FileOutput:
    """The report `report` checked and described in `params`, rendered."""
    tz, tz_name = _zone(params["tz"])
    start, end = datetime.fromisoformat(params["start"]), datetime.fromisoformat(params["end"])
    fmt = params["format"]
    request = ReportRequest(
        start=start,
        end=end,
        tz=tz,
        tz_name=tz_name,
        services=tuple(params["services"]),
        severities=tuple(params["severities"]),
        targets=im.sla_targets(),
        max_listed=params["max_listed"] or None,
        include_external=params["include_pagerduty"],
        include_drills=params.get("include_drills", False),
    )
    result = make_report(im, request)
    if params["include_pagerduty"] and not result.external:
        result.notes.append("PagerDuty was asked for, but no PagerDuty connector is configured.")
    return FileOutput(
        filename=_report_name(start, end, fmt),
        media_type=MEDIA[fmt],
        content=render_report(result, fmt, params["paper"]),
        printable=fmt != "pdf",
        summary=headline_sentence(result),
        output=output,
    )


@command(
    "postmortem",
    summary="a postmortem draft for one incident from its timeline (Markdown, HTML or PDF)",
    examples=("postmortem INC-3", "postmortem INC-3 --format pdf --output inc-3.pdf"),
)
@argument("incident", nargs="?", metavar="INCIDENT", help="e.g. INC-3 (in Slack: the thread's incident)")
@argument("--format", "-f", choices=POSTMORTEM_FORMATS, default="md", help="md (default), html or pdf")
@OUTPUT
@PAPER
def postmortem(ctx: Context, args: argparse.Namespace) -> Result:
    _no_output_in_slack(ctx, args.output)
    number = ctx.im.incidents.get(ctx.incident(args.incident)).number  # an unknown incident is refused now
    output = _output(ctx, args.output, _postmortem_name(number, args.format), args.format)
    params: dict[str, Any] = {"incident": number, "format": args.format, "paper": args.paper}
    if ctx.frontend == "slack":
        return DocumentRequest(document="postmortem", params=params, incident=number)
    return postmortem_document(ctx.im, params, output)


def _postmortem_name(number: int, fmt: str) -> str:
    return f"postmortem-INC-{number}.{fmt}"


def postmortem_document(im: Im, params: dict[str, Any], output: str | None = None) -> FileOutput:
    number, fmt = int(params["incident"]), params["format"]
    pm = make_postmortem(im, number, im.sla_targets())
    return FileOutput(
        filename=_postmortem_name(number, fmt),
        media_type=MEDIA[fmt],
        content=render_postmortem(pm, fmt, params["paper"]),
        printable=fmt != "pdf",
        summary=f"{pm.title} ({len(pm.events)} timeline steps)",
        output=output,
    )


def build_document(im: Im, request: DocumentRequest) -> FileOutput:
    """What a DocumentRequest asked for (run by the worker that uploads it)."""
    if request.document == "postmortem":
        return postmortem_document(im, request.params)
    return report_document(im, request.params)
