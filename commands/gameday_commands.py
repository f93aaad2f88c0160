"""`gameday`: a drill through the whole loop (declare -> Slack -> PagerDuty -> webhook back -> acknowledge ->
resolve), each hop with its time, then PASS or FAIL. A terminal waits for it (polling the database that
`im serve` delivers from); Slack is answered at once and a worker posts the outcome in the drill's thread."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from bot.clock import parse_duration
from commands.context import Context
from commands.grammar import argument, command
from commands.results import Done, Lines, Result

if TYPE_CHECKING:
    from bot.domain.gameday import DrillRun

MARKS = {"passed": "PASS", "failed": "FAIL", "skipped": "skip", "waiting": "...."}


def _timeout(value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{value}' is not a duration: {exc}") from None


@command(
    "gameday",
    summary="run a drill: a synthetic incident through Slack, PagerDuty and back, each hop timed, PASS or FAIL",
    group="operations",
    description=(
        "Declares a [DRILL] incident (no management notification, left out of reports), then proves each hop "
        "from what the database holds: the Slack root message posted, the PagerDuty incident created, a "
        "webhook back from PagerDuty, acknowledged and resolved in both. The deliveries are im serve's: it "
        "must be running. A hop that times out or cannot come fails the drill, which is still resolved."
    ),
    examples=("gameday --service payments", "gameday --service db --connector prod --timeout 30s"),
)
@argument("--service", "-s", default="gameday", metavar="NAME", help="the service to page (default: gameday)")
@argument("--connector", "-c", metavar="NAME", help="the PagerDuty connector (default: the one covering the service)")
@argument("--timeout", type=_timeout, default=60, metavar="DURATION", help="how long each hop may take (default 60s)")
def gameday(ctx: Context, args: argparse.Namespace) -> Result:
    from bot.domain import gameday as drills

    ctx.im.incidents.policy.check_may_change(ctx.actor, "run game days")
    run = drills.start(
        ctx.im,
        service=args.service,
        connector=args.connector,
        actor=ctx.actor,
        context=ctx.origin_context,
        timeout=args.timeout,
        in_worker=ctx.frontend == "slack",
        once_key=ctx.once_key,
    )
    if run is None:
        return Done(message="That request was already handled.", changed=False)
    if ctx.frontend == "slack":
        return Done(
            message=f"Game day started: INC-{run.incident_id} ({run.service}"
            + (f" via {run.connector}" if run.connector else "")
            + "). Each hop and PASS or FAIL will be posted in its thread."
        )
    try:
        run = drills.run_until_done(ctx.im, run.id or 0, sleep=time.sleep)
    except KeyboardInterrupt:
        run = drills.abort(ctx.im, run.id or 0, "interrupted (Ctrl-C)")
    return Lines(lines=result_lines(run), ok=run.outcome == "PASS", data={"drill": run.model_dump(mode="json")})


def result_lines(run: DrillRun) -> list[str]:
    via = f" via {run.connector}" if run.connector else ""
    lines = [f"Game day INC-{run.incident_id} ({run.service}{via}), {run.hop_timeout_seconds}s per hop:"]
    width = max(len(str(hop.get("name"))) for hop in run.hops)
    for hop in run.hops:
        mark = MARKS.get(str(hop.get("state")), "?")
        timing = f"+{hop['elapsed']:.1f}s" if "elapsed" in hop else ""
        total = f"({hop['total']:.1f}s)" if "total" in hop else ""
        detail = str(hop.get("detail") or "")
        lines.append(f"  {mark}  {hop.get('name')!s:<{width}}  {timing:>7} {total:>8}  {detail}".rstrip())
    if run.cleanup:
        lines.append(f"cleanup: {run.cleanup}")
    failed = next((hop["name"] for hop in run.hops if hop.get("state") == "failed"), None)
    lines.append(f"{run.outcome}" + (f" (stopped at '{failed}')" if failed else ""))
    return lines
