"""`gameday`: a drill through the whole loop (declare -> Slack -> PagerDuty -> webhook back -> acknowledge ->
resolve), each hop with its time, then PASS or FAIL. A terminal waits for it (polling the database that
`im serve` delivers from) and prints each hop, flushed, as soon as it has ended; Slack is answered at once and a worker posts the outcome in the drill's thread."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    drill_id = run.id or 0
    printer = HopPrinter(run, ctx.follow if not ctx.as_json else None)
    try:
        run = drills.run_until_done(ctx.im, drill_id, sleep=time.sleep, on_advance=printer)
    except KeyboardInterrupt:
        run = drills.abort(ctx.im, drill_id, "interrupted (Ctrl-C)")
    printer(run)  # what an interrupt or a last advance ended and nobody printed yet
    lines = result_lines(run) if printer.show is None else end_lines(run)
    return Lines(lines=lines, ok=run.outcome == "PASS", data={"drill": run.model_dump(mode="json")})


class HopPrinter:
    """A terminal's running account of a drill: the header at once, then each hop on its own line as soon
    as it has ended (passed, failed, skipped), in order, each once; `show` prints and flushes (ctx.follow).
    Without one (JSON, Slack) it prints nothing and the whole account comes with the result."""

    def __init__(self, run: DrillRun, show: Callable[[Any], None] | None) -> None:
        self.show = show
        self.told = 0
        self.width = _width(run)
        if show is not None:
            show(Lines(lines=[header_line(run)]))

    def __call__(self, run: DrillRun) -> None:
        from bot.domain import gameday as drills

        if self.show is None:
            return
        for hop in drills.ended_hops(run, self.told):
            self.show(Lines(lines=[hop_line(hop, self.width)]))
            self.told += 1


def header_line(run: DrillRun) -> str:
    via = f" via {run.connector}" if run.connector else ""
    return f"Game day INC-{run.incident_id} ({run.service}{via}), {run.hop_timeout_seconds}s per hop:"


def hop_line(hop: dict[str, Any], width: int) -> str:
    """`  PASS  name  +1.2s (3.4s)  detail`: the hop's own time, then the time since the drill started."""
    mark = MARKS.get(str(hop.get("state")), "?")
    timing = f"+{hop['elapsed']:.1f}s" if "elapsed" in hop else ""
    total = f"({hop['total']:.1f}s)" if "total" in hop else ""
    detail = str(hop.get("detail") or "")
    return f"  {mark}  {hop.get('name')!s:<{width}}  {timing:>7} {total:>8}  {detail}".rstrip()


def end_lines(run: DrillRun) -> list[str]:
    """What follows the hops: the cleanup and the verdict."""
    lines = [f"cleanup: {run.cleanup}"] if run.cleanup else []
    failed = next((hop["name"] for hop in run.hops if hop.get("state") == "failed"), None)
    lines.append(f"{run.outcome}" + (f" (stopped at '{failed}')" if failed else ""))
    return lines


def result_lines(run: DrillRun) -> list[str]:
    """The whole account at once (no terminal to stream to)."""
    width = _width(run)
    return [header_line(run), *(hop_line(hop, width) for hop in run.hops), *end_lines(run)]


def _width(run: DrillRun) -> int:
    return max(len(str(hop.get("name"))) for hop in run.hops)
