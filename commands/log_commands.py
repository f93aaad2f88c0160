"""`im logs`: what `im serve` did, from every replica (the `log_entry` table, bot/log_store.py)."""

from __future__ import annotations

import argparse
import logging
import time
from datetime import timedelta

from bot.clock import parse_duration, utcnow
from bot.domain.incidents import parse_ref
from bot.log_store import COMPONENTS, LEVELS, OVERLAP, LogEntry, LogQuery, after, latest, top_id
from commands.context import Context
from commands.grammar import UsageError, argument, command
from commands.results import LogLine, LogLines, Result

FOLLOW_POLL_SECONDS = 1.0


def _component(value: str) -> str:
    if value.lower() not in COMPONENTS:
        raise argparse.ArgumentTypeError(f"'{value}' is not a component (expected one of: {', '.join(COMPONENTS)})")
    return value.lower()


def _since(value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a duration (expected e.g. 30s, 10m, 2h, 1d)") from None


def _level(value: str) -> int:
    name = value.lower()
    level = LEVELS.get("warning" if name == "warn" else name)
    if level is None:
        raise argparse.ArgumentTypeError(f"'{value}' is not a log level (expected one of: {', '.join(LEVELS)})")
    return level


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 10_000:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number of lines from 1 to 10000")
    return int(value)


def _line(row: LogEntry) -> LogLine:
    assert row.id is not None
    return LogLine(
        id=row.id,
        at=row.at,
        level=logging.getLevelName(row.level).lower(),
        component=row.component,
        logger=row.logger,
        replica=row.replica,
        message=row.message,
        fields=row.fields,
    )


@command(
    "logs",
    summary="what `im serve` did, from every replica, newest last",
    description=(
        "What every `im serve` replica logged (kept in the database: IM_LOG_MAX_RECORDS, IM_LOG_RETENTION),\n"
        "newest last. Filters combine. With --follow, new lines are shown as they come until Ctrl-C.\n"
        "--json prints one JSON object a line. Secrets are masked before anything is stored."
    ),
    slack=False,
    examples=(
        "logs --component webhook --filter pagerduty",
        "logs --incident INC-12 --since 1h",
        "logs --level warning --follow",
        "logs --component pagerduty --since 10m --json",
    ),
)
@argument(
    "--component", "-c", type=_component, action="append", metavar="NAME", help=f"only these parts: {', '.join(COMPONENTS)}"
)
@argument("--filter", "-f", dest="text", metavar="TEXT", help="only lines mentioning TEXT (message, logger or a field; any case)")
@argument("--incident", "-i", metavar="INC-n", help="only lines about this incident")
@argument("--level", "-l", type=_level, metavar="LEVEL", help="this level and above: debug, info, warning, error, critical")
@argument("--since", "-s", type=_since, metavar="DURATION", help="only the last DURATION, e.g. 10m, 2h")
@argument("--lines", "-n", type=_limit, default=100, metavar="N", help="at most N lines (default 100)")
@argument("--follow", "-F", action="store_true", help="keep showing new lines as they are written (Ctrl-C stops)")
def logs(ctx: Context, args: argparse.Namespace) -> Result:
    query = LogQuery(
        components=tuple(args.component or ()),
        text=args.text or None,
        incident_id=parse_ref(args.incident) if args.incident else None,
        min_level=args.level or 0,
        since=utcnow() - timedelta(seconds=args.since) if args.since else None,
        limit=args.lines,
    )
    if args.follow and ctx.follow is None:
        raise UsageError("--follow needs a terminal that shows lines as they come", ctx.usage)
    store = ctx.im.store
    with store.read() as session:
        cursor = top_id(session)  # first, so a line written meanwhile is shown by the loop, not lost between
        seen = {row.id for row in after(session, query, cursor, set()) if row.id is not None}
        rows = [row for row in latest(session, query) if (row.id or 0) <= cursor]
    first = LogLines(records=[_line(row) for row in rows])
    if not args.follow or ctx.follow is None:
        return first
    ctx.follow(first)
    while True:
        time.sleep(FOLLOW_POLL_SECONDS)
        with store.read() as session:
            fresh = after(session, query, cursor, seen)
        if fresh:
            ctx.follow(LogLines(records=[_line(row) for row in fresh]))
            cursor = max(cursor, *(row.id or 0 for row in fresh))
            seen = {i for i in seen | {row.id for row in fresh if row.id is not None} if i > cursor - OVERLAP}
