"""`im outbox list|show|retry`: the jobs waiting to reach Slack or PagerDuty, and dead letters' second chance."""

from __future__ import annotations

import argparse
import re

from bot.domain import outbox
from bot.domain.models import OutboxJob
from commands.context import Context
from commands.grammar import UsageError, argument, command
from commands.results import JobView, Lines, OutboxJobs, Result

_DESTINATION = re.compile(r"^(slack|pagerduty(-in)?(:[a-z0-9][a-z0-9_-]{0,62})?)$")


def _destination(value: str) -> str:
    if not _DESTINATION.match(value):
        raise argparse.ArgumentTypeError(f"'{value}' is not a destination (expected slack, pagerduty or pagerduty:NAME)")
    return value


def _job_id(value: str) -> int:
    text = value.removeprefix("#")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**62:
        raise argparse.ArgumentTypeError(f"'{value}' is not a job number (see: im outbox list)")
    return int(text)


def _view(job: OutboxJob, *, payload: bool = False) -> JobView:
    assert job.id is not None
    return JobView(
        id=job.id,
        destination=job.destination,
        kind=job.kind,
        incident=f"INC-{job.incident_id}" if job.incident_id is not None else None,
        status=job.status,
        attempts=job.attempts,
        created_at=job.created_at,
        available_at=job.available_at,
        finished_at=job.finished_at,
        last_error=job.last_error,
        payload=job.payload if payload else None,
    )


DESTINATION = argument(
    "--destination", "-d", type=_destination, metavar="DEST", help="only jobs for slack, pagerduty or pagerduty:NAME"
)


@command(
    "outbox list",
    summary="jobs waiting to reach Slack or PagerDuty, and dead letters",
    description="Jobs not yet delivered (pending, running) and dead-lettered ones, oldest first. Delivered jobs are not shown.",
    slack=False,
    examples=("outbox list", "outbox list --dead", "outbox list --destination pagerduty:prod --json"),
)
@argument("--dead", action="store_true", help="only dead-lettered jobs")
@DESTINATION
@argument("--limit", type=int, default=100, metavar="N", help="at most N jobs, the newest (default 100)")
def outbox_list(ctx: Context, args: argparse.Namespace) -> Result:
    if not 1 <= args.limit <= 10_000:
        raise UsageError(f"--limit: {args.limit} is not from 1 to 10000", ctx.usage)
    with ctx.im.store.read() as session:
        jobs = outbox.list_jobs(session, dead_only=args.dead, destination=args.destination, limit=args.limit)
    what = "Dead-lettered jobs" if args.dead else "Undelivered jobs"
    return OutboxJobs(title=what + (f" for {args.destination}" if args.destination else ""), jobs=[_view(j) for j in jobs])


@command(
    "outbox show",
    summary="one job: its payload, attempts and last error",
    slack=False,
    examples=("outbox show 42", "outbox show 42 --json"),
)
@argument("job", type=_job_id, metavar="JOB", help="the job's number (first column of `im outbox list`)")
def outbox_show(ctx: Context, args: argparse.Namespace) -> Result:
    with ctx.im.store.read() as session:
        job = outbox.find_job(session, args.job)
    return OutboxJobs(title=f"job {job.id}", jobs=[_view(job, payload=True)], detail=True)


@command(
    "outbox retry",
    summary="give dead-lettered jobs another chance (one, or every dead one)",
    description=(
        "Queue a dead-lettered job again: due at once, with a fresh count of attempts. A job that is not\n"
        "dead is refused (it is delivered, or still being tried). --all-dead takes every dead job\n"
        "(of --destination when given): Slack's as well as PagerDuty's (`connector sync` retries only those)."
    ),
    slack=False,
    examples=("outbox retry 42", "outbox retry --all-dead", "outbox retry --all-dead --destination slack"),
)
@argument("job", nargs="?", type=_job_id, metavar="JOB", help="the dead job's number")
@argument("--all-dead", action="store_true", help="every dead-lettered job")
@DESTINATION
def outbox_retry(ctx: Context, args: argparse.Namespace) -> Result:
    if (args.job is None) == (not args.all_dead):
        raise UsageError("give either a JOB or --all-dead", ctx.usage)
    if args.job is not None and args.destination:
        raise UsageError("--destination goes with --all-dead, not with a JOB", ctx.usage)
    with ctx.im.store.transaction() as session:
        jobs = outbox.retry_dead(session, job_id=args.job, destination=args.destination)
        views = [_view(job) for job in jobs]
    lines = [f"job {v.id} ({v.destination} {v.kind}{', ' + v.incident if v.incident else ''}) queued again" for v in views]
    if not jobs:
        lines = ["no dead-lettered jobs" + (f" for {args.destination}" if args.destination else "")]
    return Lines(lines=lines, data={"requeued": [v.id for v in views]})
