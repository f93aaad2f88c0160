"""`runbook set|list|remove`: runbook links attached to a service's incidents, optionally only to those
whose severity, custom fields or alert attributes match (`--match class=db`)."""

from __future__ import annotations

import argparse

from commands.context import Context
from commands.grammar import argument, command
from commands.results import Done, Result, Table

SERVICE = argument("--service", "-s", required=True, metavar="NAME", help="the service whose incidents get the runbook")
MATCH = argument(
    "--match", "-m", metavar="KEY=VALUE[,KEY=VALUE]", help="only incidents with these attributes (class=db, severity=SEV-1)"
)


@command(
    "runbook set",
    summary="attach a runbook URL to a service's incidents (one per service and match; set again to replace)",
    group="incidents",
    examples=(
        "runbook set --service payments https://wiki.example.com/runbooks/payments",
        'runbook set --service payments https://wiki.example.com/runbooks/payments-db --match "class=db"',
    ),
)
@SERVICE
@MATCH
@argument("url", metavar="URL", help="an http(s) link")
def runbook_set(ctx: Context, args: argparse.Namespace) -> Result:
    from bot.domain import runbooks

    ctx.im.incidents.policy.check_may_change(ctx.actor, "change runbooks")
    row, before = runbooks.set_runbook(ctx.im.store, service=args.service, url=args.url, match=args.match, actor=ctx.actor.key)
    where = row.service + (f" ({row.match_key})" if row.match_key else "")
    if before == row.url:
        return Done(message=f"Runbook for {where} is already {row.url}", changed=False)
    said = f"Runbook for {where} set to {row.url}"
    return Done(message=said + (f" (was {before})" if before else ""))


@command(
    "runbook list",
    summary="runbooks, by service and match",
    group="incidents",
    examples=("runbook list", "runbook list --service payments"),
)
@argument("--service", "-s", metavar="NAME", help="only this service's")
def runbook_list(ctx: Context, args: argparse.Namespace) -> Result:
    from bot.domain import runbooks

    rows = runbooks.list_runbooks(ctx.im.store, args.service)
    return Table(
        title=f"{len(rows)} runbook(s)",
        columns=["SERVICE", "MATCH", "URL"],
        rows=[[r.service, r.match_key or "(every incident)", r.url] for r in rows],
    )


@command(
    "runbook remove",
    summary="detach the runbook of a service (and match)",
    group="incidents",
    examples=("runbook remove --service payments", 'runbook remove --service payments --match "class=db"'),
)
@SERVICE
@MATCH
def runbook_remove(ctx: Context, args: argparse.Namespace) -> Result:
    from bot.domain import runbooks

    ctx.im.incidents.policy.check_may_change(ctx.actor, "change runbooks")
    row = runbooks.remove_runbook(ctx.im.store, service=args.service, match=args.match)
    where = args.service.strip().lower() + (f" ({args.match})" if args.match else "")
    if row is None:
        return Done(message=f"No runbook for {where}: nothing changed", changed=False)
    return Done(message=f"Runbook for {where} removed ({row.url})")
