"""`im source add|list|remove`: where monitoring sends alerts, and the key or token it sends with them."""

from __future__ import annotations

import argparse

from bot.clock import format_duration, parse_duration
from bot.connectors.secrets import mask
from bot.domain.alerts import DEFAULT_GROUP_WINDOW, SourceKind
from commands.context import Context
from commands.grammar import argument, command
from commands.results import Lines, Result, Table
from integrations.alerts.plugin import sources_for


def _window(value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{value}' is not a duration: {exc}") from None


def source_url(ctx: Context, name: str) -> str:
    base = ctx.im.settings.public_url
    return f"{base.rstrip('/')}/alerts/{name}" if base else f"<IM_PUBLIC_URL>/alerts/{name} (IM_PUBLIC_URL is not set)"


@command(
    "source add",
    summary="add an alert source: prints its URL and its routing key or token",
    description=(
        "Add a place monitoring sends alerts to: POST $IM_PUBLIC_URL/alerts/NAME.\n"
        "events-v2 takes PagerDuty's Events API v2 body, authenticated by the routing key in it;\n"
        "alertmanager takes Prometheus Alertmanager's webhook, with Authorization: Bearer TOKEN.\n"
        "The key or token is shown this once, and stored encrypted (IM_SECRET_KEY)."
    ),
    slack=False,
    group="connectors",
    examples=("source add datadog --service payments", "source add prometheus --kind alertmanager --group-window 10m"),
)
@argument("name", metavar="NAME", help="the source's name (letters, digits, - _ .), part of its URL")
@argument("--service", "-s", metavar="NAME", help="the service of every alert (default: the alert's component, else NAME)")
@argument("--kind", choices=[k.value for k in SourceKind], default=SourceKind.EVENTS_V2.value, help="body format")
@argument(
    "--group-window",
    type=_window,
    default=DEFAULT_GROUP_WINDOW,
    metavar="DURATION",
    help="alerts of a service within this of its last one join its open incident (default 5m)",
)
@argument("--no-auto-resolve", action="store_true", help="when every alert has resolved, only note it (do not resolve)")
def source_add(ctx: Context, args: argparse.Namespace) -> Result:
    row, secret = sources_for(ctx.im).add(
        args.name, args.kind, service=args.service, group_window=args.group_window, auto_resolve=not args.no_auto_resolve
    )
    what = "Routing key" if row.kind == SourceKind.EVENTS_V2 else "Bearer token"
    lines = [
        f"Alert source {row.name} added ({row.kind}, service {row.service or 'from each alert'}, "
        f"group window {format_duration(row.group_window_seconds)}, auto-resolve {'on' if row.auto_resolve else 'off'}).",
        f"URL:  {source_url(ctx, row.name)}",
        f"{what}: {secret}",
        "Shown this once: it is stored encrypted, and `im source list` shows it masked.",
    ]
    data = {"name": row.name, "kind": row.kind, "url": source_url(ctx, row.name), "secret": secret}
    return Lines(lines=lines, data=data)


@command("source list", summary="list the alert sources", group="connectors", examples=("source list",))
def source_list(ctx: Context, args: argparse.Namespace) -> Result:
    rows = [
        [
            row.name,
            row.kind,
            row.service or "(from alerts)",
            format_duration(row.group_window_seconds),
            "yes" if row.auto_resolve else "no",
            mask(row.secret),
            source_url(ctx, row.name),
        ]
        for row in sources_for(ctx.im).all()
    ]
    return Table(title="Alert sources", columns=["name", "kind", "service", "window", "auto-resolve", "key", "url"], rows=rows)


@command(
    "source remove",
    summary="remove an alert source (its URL stops taking alerts)",
    slack=False,
    group="connectors",
    examples=("source remove datadog",),
)
@argument("name", metavar="NAME", help="the source's name")
def source_remove(ctx: Context, args: argparse.Namespace) -> Result:
    sources_for(ctx.im).remove(args.name)
    return Lines(lines=[f"Alert source {args.name} removed: its URL now answers 404. Its alerts and incidents stay."])
