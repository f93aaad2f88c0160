"""Game days: a synthetic incident (a drill) driven through the whole loop, hop by hop, each hop proven
by what the database holds, not by calling anyone.

declared -> Slack root message -> PagerDuty incident -> a webhook back from PagerDuty -> acknowledged
(im, then PagerDuty) -> resolved (im, then PagerDuty). The deliveries are `im serve`'s (its workers, its
webhook endpoint): a drill only declares, acknowledges and resolves through the domain, and looks. Each
hop has a timeout; a hop that cannot come (a dead-lettered job, no worker process alive, a part not
configured) fails at once with the reason. A failed drill still resolves its incident in im, which
resolves it in PagerDuty through the outbox (or, when PagerDuty was never reached, keeps it from paging).

The state is a row (`drill_run`), so the terminal (polling in its own process) and a worker (a job that
advances it and comes back a second later) run the same steps; adapters say what each hop's evidence is
(`DrillHooks.probes`) and refuse a drill they cannot serve (`DrillHooks.preflights`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, Text, func
from sqlmodel import Field, Session, SQLModel, col, select

from bot.clock import as_utc, utcnow
from bot.domain import outbox
from bot.domain.errors import DomainError, InvalidInput
from bot.domain.incidents import Actor
from bot.domain.models import Incident, JobStatus, Origin, OutboxJob, Severity, Status, WorkerProcess
from bot.domain.outbox import JobSpec, enqueue
from bot.workers import GiveUp, JobKind, RetryLater, RetryPolicy, kind_table

if TYPE_CHECKING:
    from bot.app import Im

DESTINATION = "gameday"  # the worker's job that advances a drill started from Slack
ADVANCE = "advance"
POLL_SECONDS = 1.0
DEFAULT_TIMEOUT = 60  # seconds per hop
RESULT_KIND = "drill"  # the timeline step that says how the drill went


@dataclass(frozen=True)
class HopSpec:
    key: str  # the probe that proves it (DrillHooks.probes)
    name: str
    action: str | None = None  # what the drill does first (a transition verb)
    waits_on: tuple[str, ...] = ()  # destinations (or their prefix before ":") whose jobs make the evidence


HOPS: tuple[HopSpec, ...] = (
    HopSpec("declared", "declared in im"),
    HopSpec("slack.root", "Slack root message posted", waits_on=("slack",)),
    HopSpec("pagerduty.incident", "PagerDuty incident created", waits_on=("pagerduty",)),
    HopSpec("pagerduty.webhook", "webhook back from PagerDuty"),  # its probe says what is missing
    HopSpec("pagerduty.acknowledged", "acknowledged (im, then PagerDuty)", action="acknowledge", waits_on=("pagerduty",)),
    HopSpec("pagerduty.resolved", "resolved (im, then PagerDuty)", action="resolve", waits_on=("pagerduty",)),
)


@dataclass(frozen=True)
class Evidence:
    seen: bool
    detail: str = ""  # what was seen, or what is awaited
    impossible: str | None = None  # why waiting cannot help (a part not configured)


@dataclass(frozen=True)
class DrillTarget:
    incident_id: int
    service: str
    connector: str | None
    started_at: datetime


Probe = Callable[[Session, DrillTarget], Evidence]
# (session, service, connector asked for, the front end's context) -> the connector to use (None: no say);
# raises InvalidInput when the drill cannot run (nothing is written then)
Preflight = Callable[[Session, str, str | None, dict[str, Any]], str | None]


@dataclass
class DrillHooks:
    probes: dict[str, Probe] = field(default_factory=dict)
    preflights: list[Preflight] = field(default_factory=list)


class DrillRun(SQLModel, table=True):
    __tablename__ = "drill_run"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True, unique=True)
    service: str
    connector: str | None = None
    actor: str  # Actor.key of who started it: the drill acknowledges and resolves as them
    actor_name: str | None = None
    in_worker: bool = False  # advanced by a `gameday` job (started from Slack), not by a terminal
    hop_timeout_seconds: int = DEFAULT_TIMEOUT
    started_at: datetime = Field(default_factory=utcnow)
    step: int = 0
    step_started_at: datetime = Field(default_factory=utcnow)
    hops: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: str | None = None  # PASS or FAIL once finished
    cleanup: str | None = Field(default=None, sa_column=Column(Text))
    finished_at: datetime | None = None

    @property
    def target(self) -> DrillTarget:
        return DrillTarget(self.incident_id, self.service, self.connector, as_utc(self.started_at))

    @property
    def acting(self) -> Actor:
        origin, _, ident = self.actor.partition(":")
        return Actor(Origin(origin), ident, self.actor_name)


# -- start -----------------------------------------------------------------------------------------
def start(
    im: Im,
    *,
    service: str,
    connector: str | None,
    actor: Actor,
    context: dict[str, Any],
    severity: str = Severity.SEV4.value,
    timeout: int = DEFAULT_TIMEOUT,
    in_worker: bool = False,
    once_key: str | None = None,
) -> DrillRun | None:
    """Declare the drill's incident and its run in one transaction (with the worker's job when `in_worker`).
    Every adapter's preflight runs first: a drill that cannot run is refused with nothing written.
    None: `once_key` says this very request started one already."""
    name = service.strip().lower()
    with im.store.read() as session:
        for preflight in im.drill_hooks.preflights:
            connector = preflight(session, name, connector, context) or connector
    made: list[DrillRun] = []

    def record(session: Session, incident: Incident) -> None:
        now = utcnow()
        run = DrillRun(
            incident_id=incident.number,
            service=name,
            connector=connector,
            actor=actor.key,
            actor_name=actor.name,
            in_worker=in_worker,
            hop_timeout_seconds=timeout,
            started_at=now,
            step_started_at=now,
            hops=[{"name": hop.name, "state": "waiting"} for hop in HOPS],
        )
        session.add(run)
        session.flush()
        if in_worker:
            enqueue(session, JobSpec(DESTINATION, ADVANCE, {"drill_id": run.id}), incident.id)
        made.append(run)

    via = f" via {connector}" if connector else ""
    im.incidents.declare(
        title=f"Game day: {name}{via}",
        severity=severity,
        services=[name],
        description="A synthetic incident run by im gameday to prove the alerting path works. No action needed.",
        actor=actor,
        context={**context, "drill": True, "drill_connector": connector},
        on_declared=record,
        drill=True,
        once_key=once_key,
    )
    return made[0] if made else None


# -- advance -----------------------------------------------------------------------------------------
def advance(im: Im, drill_id: int, now: datetime | None = None) -> DrillRun:
    """Take every hop whose evidence is there; fail the current one when it timed out or cannot come;
    finish (clean up, record the outcome) after the last. Safe to run again after a crash at any point."""
    while True:
        run = _load(im, drill_id)
        if run.finished_at is not None:
            return run
        spec, hop = HOPS[run.step], run.hops[run.step]
        at = now or utcnow()
        if spec.action and not hop.get("acted"):
            try:
                im.incidents.transition(run.incident_id, spec.action, actor=run.acting, note=_note(spec.action))
            except DomainError as exc:
                return _fail(im, run, at, f"could not {spec.action}: {exc}")
            hop["acted"] = True
            _save(im, run, step_started_at=at)
            continue
        with im.store.read() as session:
            evidence = _probe(im, session, run, spec)
            stuck = None if evidence.seen else evidence.impossible or _stuck(session, run, spec, at)
        waited = (at - as_utc(run.step_started_at)).total_seconds()
        if evidence.seen:
            hop |= {"state": "passed", "elapsed": round(waited, 2), "detail": evidence.detail}
            hop["total"] = round((at - as_utc(run.started_at)).total_seconds(), 2)
            run.step += 1
            if run.step == len(HOPS):
                return _finish(im, run, at, "PASS")
            _save(im, run, step_started_at=at)
            continue
        if stuck is not None:
            return _fail(im, run, at, f"{evidence.detail}: {stuck}" if evidence.detail else stuck)
        if waited >= run.hop_timeout_seconds:
            why = _jobs_summary(im, run, spec)
            detail = f"timed out after {run.hop_timeout_seconds}s" + (f" ({evidence.detail})" if evidence.detail else "")
            return _fail(im, run, at, detail + (f"; {why}" if why else ""))
        return run


def abort(im: Im, drill_id: int, reason: str) -> DrillRun:
    """Stop a drill that is still running (the terminal was interrupted): its hop fails, it is cleaned up."""
    run = _load(im, drill_id)
    return run if run.finished_at is not None else _fail(im, run, utcnow(), reason)


def finished(run: DrillRun) -> bool:
    return run.finished_at is not None


def waiting_on(run: DrillRun) -> str:
    return HOPS[min(run.step, len(HOPS) - 1)].name


def _probe(im: Im, session: Session, run: DrillRun, spec: HopSpec) -> Evidence:
    if spec.key == "declared":
        return Evidence(True, f"INC-{run.incident_id}")
    probe = im.drill_hooks.probes.get(spec.key)
    if probe is None:
        return Evidence(False, impossible=f"nothing in this im can prove '{spec.name}' (is its connector installed?)")
    return probe(session, run.target)


def _jobs(session: Session, run: DrillRun, spec: HopSpec) -> list[OutboxJob]:
    jobs = session.exec(select(OutboxJob).where(OutboxJob.incident_id == run.incident_id).order_by(col(OutboxJob.id))).all()
    return [job for job in jobs if job.destination.split(":", 1)[0] in spec.waits_on]


def _stuck(session: Session, run: DrillRun, spec: HopSpec, now: datetime) -> str | None:
    """Why the hop cannot come however long we wait: a job it needs is dead, or nothing delivers jobs."""
    if spec.key == "declared":
        return None
    jobs = _jobs(session, run, spec)
    for job in jobs:
        if job.status == JobStatus.DEAD:
            return f"{job.destination} {job.kind} was dead-lettered: {job.last_error}"
    if _workers_alive(session, now):
        return None
    waiting = [job for job in jobs if job.status in (JobStatus.PENDING, JobStatus.RUNNING)]
    silent = int(outbox.DEAD_AFTER.total_seconds())
    what = (
        f"{len(waiting)} {waiting[0].destination} job(s) wait in the outbox for it"
        if waiting
        else "nothing delivers its jobs or receives PagerDuty's webhooks"
    )
    return f"no im serve is running (no worker process has beaten in the last {silent} s): {what}"


def _workers_alive(session: Session, now: datetime) -> bool:
    query = select(func.count()).select_from(WorkerProcess)
    query = query.where(col(WorkerProcess.stopped_at).is_(None), col(WorkerProcess.heartbeat_at) >= now - outbox.DEAD_AFTER)
    return bool(session.exec(query).one())


def _jobs_summary(im: Im, run: DrillRun, spec: HopSpec) -> str:
    with im.store.read() as session:
        jobs = _jobs(session, run, spec)
    parts = []
    for job in jobs:
        if job.status == JobStatus.DONE:
            continue
        said = f"{job.destination} {job.kind}: {job.status}, {job.attempts} attempt(s)"
        parts.append(said + (f", last error: {job.last_error}" if job.last_error else ""))
    if not parts and spec.waits_on and not jobs:
        parts.append(f"no {'/'.join(spec.waits_on)} job was ever queued for it")
    return "; ".join(parts[:3])


# -- the end -----------------------------------------------------------------------------------------
def _fail(im: Im, run: DrillRun, at: datetime, detail: str) -> DrillRun:
    hop = run.hops[run.step]
    hop |= {"state": "failed", "elapsed": round((at - as_utc(run.step_started_at)).total_seconds(), 2), "detail": detail}
    for later in run.hops[run.step + 1 :]:
        later["state"] = "skipped"
    return _finish(im, run, at, "FAIL")


def _finish(im: Im, run: DrillRun, at: datetime, outcome: str) -> DrillRun:
    run.cleanup = _clean_up(im, run, outcome)
    run.outcome, run.finished_at = outcome, at
    _save(im, run)
    total = (at - as_utc(run.started_at)).total_seconds()
    failed = next((hop["name"] for hop in run.hops if hop.get("state") == "failed"), None)
    text = f"Game day {outcome} in {total:.1f}s" + (f": stopped at '{failed}'" if failed else "")
    im.incidents.record(
        run.incident_id,
        RESULT_KIND,
        text,
        actor=run.acting,
        context={"outcome": outcome, "hops": run.hops, "cleanup": run.cleanup},
        once_key=f"drill-result:{run.id}",
    )
    return run


def _clean_up(im: Im, run: DrillRun, outcome: str) -> str | None:
    """A drill never stays open: resolved in im, which the outbox carries to PagerDuty (a create still
    queued then finds the drill ended and pages nobody)."""
    incident = im.incidents.get(run.incident_id)
    if incident.status in (Status.RESOLVED, Status.CLOSED):
        return None if outcome == "PASS" else f"INC-{run.incident_id} was already {incident.status}"
    try:
        im.incidents.transition(run.incident_id, "resolve", actor=run.acting, note="game day over: cleaned up")
    except DomainError as exc:
        return f"could not resolve INC-{run.incident_id}: {exc}"
    return f"INC-{run.incident_id} resolved in im; PagerDuty follows through the outbox (resolved, or never paged)"


def _note(verb: str) -> str | None:
    return "game day: the loop worked" if verb == "resolve" else None


def _load(im: Im, drill_id: int) -> DrillRun:
    with im.store.read() as session:
        run = session.get(DrillRun, drill_id)
        if run is None:
            raise InvalidInput(f"game day {drill_id} does not exist")
        session.expunge(run)
    run.hops = [dict(hop) for hop in run.hops]
    return run


def _save(im: Im, run: DrillRun, step_started_at: datetime | None = None) -> None:
    with im.store.transaction() as session:
        row = session.get(DrillRun, run.id)
        assert row is not None
        row.step, row.hops, row.outcome, row.cleanup, row.finished_at = (
            run.step,
            [dict(hop) for hop in run.hops],
            run.outcome,
            run.cleanup,
            run.finished_at,
        )
        if step_started_at is not None:
            row.step_started_at = run.step_started_at = step_started_at
        session.add(row)


def run_until_done(
    im: Im,
    drill_id: int,
    *,
    sleep: Callable[[float], None],
    poll: float = 0.5,
    on_advance: Callable[[DrillRun], None] | None = None,
) -> DrillRun:
    """The terminal's way: advance, wait a little, until the drill has finished (each hop has a timeout).
    `on_advance` sees the run after every advance (the terminal prints each hop as soon as it has ended)."""
    while True:
        run = advance(im, drill_id)
        if on_advance is not None:
            on_advance(run)
        if finished(run):
            return run
        sleep(poll)


def ended_hops(run: DrillRun, start: int = 0) -> list[dict[str, Any]]:
    """The hops from `start` on that have ended (passed, failed or skipped), up to the first still waiting."""
    ended = []
    for hop in run.hops[start:]:
        if hop.get("state") not in ("passed", "failed", "skipped"):
            break
        ended.append(hop)
    return ended


class GamedayDelivery:
    """The worker's side of a drill started from Slack: each try advances it and, while it is not over,
    comes back a second later (no worker thread is held while PagerDuty or Slack take their time)."""

    def __init__(self, im: Im) -> None:
        self.im = im
        self.kinds = kind_table(JobKind(ADVANCE, self._advance, RetryPolicy(max_attempts=100_000, fixed_delay=POLL_SECONDS)))

    def _advance(self, job: OutboxJob) -> None:
        try:
            run = advance(self.im, int(job.payload["drill_id"]))
        except InvalidInput as exc:
            raise GiveUp(str(exc)) from None
        if not finished(run):
            raise RetryLater(f"game day waits for '{waiting_on(run)}'")
