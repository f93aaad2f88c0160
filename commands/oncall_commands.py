"""`oncall --service S`: who PagerDuty pages now for a service, and who comes next."""

from __future__ import annotations

import argparse

from bot.connectors.pd_oncall import on_call
from bot.connectors.wiring import registry_for
from commands.context import Context
from commands.grammar import argument, command
from commands.results import Lines, Result
from integrations.pagerduty.errors import PagerDutyError


@command("oncall", summary="who is on call for a service (asks PagerDuty)", remote=True,
         examples=("oncall --service api",))
@argument("--service", "-s", required=True, metavar="NAME", help="im service name")
@argument("--connector", metavar="NAME", help="which PagerDuty connector (when there are several)")
def oncall(ctx: Context, args: argparse.Namespace) -> Result:
    try:
        answer = on_call(registry_for(ctx.im), args.connector, args.service)
    except PagerDutyError as exc:
        return Lines(lines=[f"PagerDuty did not answer: {exc.user_message}"], ok=False)
    return Lines(lines=answer.lines)
