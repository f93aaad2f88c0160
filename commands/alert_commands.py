"""Fixing a wrong grouping of alerts by hand: `merge` and `split`, both on the incidents' timelines."""

from __future__ import annotations

import argparse

from bot.domain.alert_flow import AlertFlow
from commands.context import Context
from commands.grammar import argument, command
from commands.results import Done, Result


def _flow(ctx: Context) -> AlertFlow:
    return AlertFlow(ctx.im.store, ctx.im.incidents, ctx.im.settings.alert_severities)


@command(
    "merge",
    summary="merge an incident into another (its alerts move; it is closed as merged)",
    group="incidents",
    examples=("merge INC-5 INC-4",),
)
@argument("source", metavar="INCIDENT", help="the incident to merge away, e.g. INC-5")
@argument("target", metavar="INTO", help="the incident it joins, e.g. INC-4")
def merge(ctx: Context, args: argparse.Namespace) -> Result:
    source, target, moved = _flow(ctx).merge(args.source, args.target, actor=ctx.actor, context=ctx.origin_context)
    alerts = f", {moved} alert{'' if moved == 1 else 's'} moved" if moved else ""
    return Done(message=f"{source.ref} merged into {target.ref} ({source.ref} closed{alerts})", incident=ctx.im.describe(target))


@command(
    "split",
    summary="move one alert out of an incident into a new incident",
    group="incidents",
    examples=("split INC-4 --alert srv01/mysql",),
)
@argument("ref", nargs="?", metavar="INCIDENT", help="the incident the alert is in (default: this war room)")
@argument("--alert", "-a", required=True, metavar="DEDUP_KEY", help="the alert's dedup key (Alertmanager: its fingerprint)")
@argument("--source", metavar="NAME", help="the alert source, when two sent the same key")
def split(ctx: Context, args: argparse.Namespace) -> Result:
    incident, new = _flow(ctx).split(
        str(ctx.incident(args.ref)),
        args.alert,
        source=args.source,
        actor=ctx.actor,
        context=ctx.origin_context,
        once_key=ctx.once_key,
    )
    if new is None:
        return Done(message="That request was already handled.", changed=False)
    return Done(message=f"Alert {args.alert} split out of {incident.ref} into {new.ref}", incident=ctx.im.describe(new))
