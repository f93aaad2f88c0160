"""Incident commands: declare, ack, resolve, close, reopen, note, severity, status, list, timeline."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from bot.clock import as_utc, utcnow
from bot.domain import outbox
from bot.domain.errors import InvalidInput
from bot.domain.models import Incident, Severity, Status, TimelineEvent
from bot.domain.texts import NOT_CLOSED_TITLE, waiting_problem
from bot.domain.views import EventView, IncidentView
from commands.context import Context
from commands.grammar import UsageError, argument, command
from commands.results import Done, IncidentDetail, IncidentList, OpenDeclareModal, Result, Timeline

STATUSES = [s.value for s in Status]


def _severity(value: str) -> str:
    try:
        return Severity.parse(value).value
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _date(value: str) -> datetime:
    text = value.strip().lower()
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text[:-1].isdigit() and text[-1:] in units:
        return utcnow() - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a date (expected YYYY-MM-DD, an ISO time, or 24h / 7d)") from None


def _done(ctx: Context, change_incident: Incident, event: TimelineEvent | None, message: str, unchanged: str) -> Done:
    view = ctx.im.describe(change_incident)
    return Done(message=message if event else unchanged, incident=view, changed=event is not None)


INCIDENT = argument("--incident", "-i", metavar="ID", help="incident ID, e.g. INC-12")


@command(
    "declare",
    summary="declare a new incident",
    examples=(
        'declare --sev SEV-2 --title "Database slow" --service db',
        'declare --sev 1 -t "Checkout down" -s web,api --json',
        'declare --sev 1 -t "Payment API down" -s payments --field environment=production --field customer_impact=high',
    ),
)
@argument(
    "--sev", "--severity", dest="sev", type=_severity, metavar="SEV", required_in_terminal=True, help="SEV-1 (worst) .. SEV-4"
)
@argument("--title", "-t", metavar="TEXT", required_in_terminal=True, help="what is wrong, in a few words")
@argument("--service", "-s", action="append", metavar="NAME[,NAME...]", required_in_terminal=True, help="affected service(s)")
@argument("--description", "-d", metavar="TEXT", help="more context")
@argument("--field", "-f", action="append", default=[], metavar="KEY=VALUE", help="a custom field (repeatable)")
def declare(ctx: Context, args: argparse.Namespace) -> Result:
    if ctx.frontend == "slack" and not (args.sev or args.title or args.service or args.description or args.field):
        return OpenDeclareModal()
    missing = [flag for flag, value in (("--sev", args.sev), ("--title", args.title), ("--service", args.service)) if not value]
    if missing:
        raise UsageError(f"missing required option(s): {', '.join(missing)}", ctx.usage)
    incident = ctx.im.incidents.declare(
        title=args.title,
        severity=args.sev,
        services=args.service,
        description=args.description,
        fields=args.field,
        actor=ctx.actor,
        context=ctx.origin_context,
        once_key=ctx.once_key,
    )
    if incident is None:
        return Done(message="That request was already handled.", changed=False)
    settings = ctx.im.settings
    if ctx.frontend == "cli" and settings.slack_bot_token is not None and not settings.slack_channel:
        ctx.warnings.append("Slack is configured but IM_SLACK_CHANNEL is not set: this incident cannot be announced in Slack")
    # a new incident has no links and no delivery problems yet: no need to read them back
    view = IncidentView.of(incident, declared_by=ctx.actor.name or ctx.actor.id)
    return Done(
        message=f"{incident.ref} declared: {incident.severity} {incident.title} ({', '.join(incident.services)})", incident=view
    )


def _transition(ctx: Context, args: argparse.Namespace, verb: str, done: str, already: str) -> Done:
    change = ctx.im.incidents.transition(
        ctx.incident(args.incident),
        verb,
        actor=ctx.actor,
        note=getattr(args, "note", None),
        context=ctx.origin_context,
        once_key=ctx.once_key,
    )
    ref = change.incident.ref
    return _done(ctx, change.incident, change.event, f"{ref} {done}", f"{ref} is already {already}: nothing changed")


@command(
    "ack",
    aliases=("acknowledge",),
    summary="acknowledge: someone is working on it (status mitigated)",
    examples=('ack --incident INC-12 --note "rolling back"',),
)
@INCIDENT
@argument("--note", "-n", metavar="TEXT", help="what you are doing")
def ack(ctx: Context, args: argparse.Namespace) -> Result:
    return _transition(ctx, args, "acknowledge", "acknowledged (mitigated)", "mitigated")


@command("resolve", summary="resolve an incident, with a resolution note", examples=('resolve -i INC-12 -n "index rebuilt"',))
@INCIDENT
@argument("--note", "-n", metavar="TEXT", required=True, help="how it was resolved")
def resolve(ctx: Context, args: argparse.Namespace) -> Result:
    return _transition(ctx, args, "resolve", "resolved", "resolved")


@command("close", summary="close an incident (final)", examples=("close --incident INC-12",))
@INCIDENT
def close(ctx: Context, args: argparse.Namespace) -> Result:
    return _transition(ctx, args, "close", "closed", "closed")


@command("reopen", summary="reopen a resolved or closed incident", examples=('reopen -i INC-12 -n "errors are back"',))
@INCIDENT
@argument("--note", "-n", metavar="TEXT", required=True, help="why it is back")
def reopen(ctx: Context, args: argparse.Namespace) -> Result:
    return _transition(ctx, args, "reopen", "reopened", "open")


@command("note", summary="add a note to the incident's timeline", examples=("note --incident INC-3 restarted the primary",))
@INCIDENT
@argument("text", nargs="+", metavar="TEXT", help="the note")
def note(ctx: Context, args: argparse.Namespace) -> Result:
    change = ctx.im.incidents.add_note(
        ctx.incident(args.incident), " ".join(args.text), actor=ctx.actor, context=ctx.origin_context, once_key=ctx.once_key
    )
    return _done(ctx, change.incident, change.event, f"Note added to {change.incident.ref}", "That note was already added.")


@command("severity", aliases=("sev",), summary="change an incident's severity", examples=("severity -i INC-12 --sev SEV-1",))
@INCIDENT
@argument("--sev", "--severity", dest="sev", type=_severity, required=True, metavar="SEV", help="SEV-1 .. SEV-4")
def severity(ctx: Context, args: argparse.Namespace) -> Result:
    change = ctx.im.incidents.set_severity(
        ctx.incident(args.incident), args.sev, actor=ctx.actor, context=ctx.origin_context, once_key=ctx.once_key
    )
    ref = change.incident.ref
    return _done(ctx, change.incident, change.event, f"{ref} is now {args.sev}", f"{ref} is already {args.sev}: nothing changed")


@command(
    "field",
    aliases=("fields",),
    summary="set an incident's custom fields (key=value; key= clears one)",
    examples=("field INC-3 environment=production customer_impact=high", "field -i INC-3 root_cause=", "field INC-3"),
)
@INCIDENT
@argument("words", nargs="*", metavar="[INC-N] KEY=VALUE", help="the incident (optional in its thread), then fields")
def field(ctx: Context, args: argparse.Namespace) -> Result:
    words = ctx.split_incident(args.incident, args.words)
    ref = ctx.incident(words.incident)
    if not words.rest:  # no assignment: show the fields it has
        return IncidentDetail(incident=ctx.im.describe(ctx.im.incidents.get(ref)))
    change = ctx.im.incidents.set_fields(ref, words.rest, actor=ctx.actor, context=ctx.origin_context, once_key=ctx.once_key)
    inc = change.incident
    return _done(ctx, inc, change.event, f"{inc.ref}: {change.event.text if change.event else ''}", f"{inc.ref}: nothing changed")


@command(
    "status",
    summary="one incident in full, or every incident that is not closed",
    examples=("status", "status --incident INC-12", "status --json --utc"),
)
@INCIDENT
def status(ctx: Context, args: argparse.Namespace) -> Result:
    ref = args.incident or ctx.default_incident()
    if ref is not None:
        return IncidentDetail(incident=ctx.im.describe(ctx.im.incidents.get(ref)))
    open_ones = ctx.im.incidents.search(statuses=[s for s in STATUSES if s != Status.CLOSED])
    views = ctx.im.describe_many(open_ones)
    problems = [p for v in views for p in v.delivery_problems]
    with ctx.im.store.read() as session:
        waiting = outbox.waiting_count(session, older_than=timedelta(minutes=1))
    if waiting:
        problems.append(waiting_problem(waiting))
    return IncidentList(title=NOT_CLOSED_TITLE, incidents=views, delivery_problems=problems)


LATEST = 20  # `im list` with no filter: the incidents still being worked on, and this many of the newest
ACTIVE = [Status.OPEN.value, Status.MITIGATED.value]


@command(
    "list",
    aliases=("ls",),
    summary="list incidents, newest first (by default: those still open and the latest 20)",
    examples=("list --status open --sev SEV-1", "list --service web --since 7d --json", "list --limit 100", "list --all"),
)
@argument("--status", choices=STATUSES, help="only this status")
@argument("--sev", "--severity", dest="sev", type=_severity, metavar="SEV", help="only this severity")
@argument("--service", metavar="NAME", help="only incidents touching this service")
@argument("--since", type=_date, metavar="DATE", help="declared at or after (YYYY-MM-DD, ISO time, 24h, 7d)")
@argument("--limit", type=int, metavar="N", help=f"at most N incidents, newest first (default {LATEST})")
@argument("--all", dest="everything", action="store_true", help="every matching incident, however many")
def list_(ctx: Context, args: argparse.Namespace) -> Result:
    if args.everything and args.limit is not None:
        raise UsageError("give --all or --limit, not both", ctx.usage)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be 1 or more", ctx.usage)
    limit = None if args.everything else (args.limit or LATEST)
    filters = {
        "statuses": [args.status] if args.status else None,
        "severity": args.sev,
        "service": args.service.lower() if args.service else None,
        "since": args.since,
    }
    found = ctx.im.incidents.search(**filters, limit=limit + 1 if limit else 10**12)  # one more: to tell whether any were cut
    cut = limit is not None and len(found) > limit
    found = found[:limit]
    title = f"{len(found)} incident(s)"
    if limit is not None and not any(filters.values()):  # what needs attention is never cut off by the default
        active = ctx.im.incidents.search(statuses=ACTIVE)
        shown = {i.number for i in found}
        found = sorted([*found, *(i for i in active if i.number not in shown)], key=lambda i: i.number, reverse=True)
        title = f"{len(found)} incident(s)"
        if cut:
            title += f": every one still open and the latest {limit} (--limit N or --all for more)"
    elif cut:
        title += f": the newest {limit} (--limit N or --all for more)"
    return IncidentList(title=title, incidents=ctx.im.describe_many(found))


@command(
    "timeline", summary="every step of an incident, oldest first", examples=("timeline -i INC-12", "timeline -i INC-12 --utc")
)
@INCIDENT
def timeline(ctx: Context, args: argparse.Namespace) -> Result:
    incident, events = ctx.im.incidents.timeline(ctx.incident(args.incident))
    with ctx.im.store.read() as session:
        views = [EventView.of(e, actor=ctx.im.display_name(session, e.actor)) for e in events]
    return Timeline(incident=ctx.im.describe(incident), events=views)
