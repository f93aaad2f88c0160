"""The outbox: work written in the same transaction as the change it comes from, delivered after commit.

A job row is claimed by one worker process at a time (claim token), under a short lease that the
claiming process renews on every heartbeat while it holds the job. A running job is due again when its
lease ran out or when the process that claimed it is dead: stopped, or silent for DEAD_AFTER.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, exists, func, literal_column, or_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.clock import utcnow
from bot.domain.errors import InvalidInput
from bot.domain.models import Incident, JobStatus, OutboxJob, OutboxStep, TimelineEvent, WorkerProcess
from bot.store import Store, note_enqueued, rows_changed
from bot.store_driver import DriverWrite

HEARTBEAT = timedelta(seconds=5)  # how often a live worker process says so (and renews its jobs' leases)
DEAD_AFTER = 3 * HEARTBEAT  # a process silent this long is dead: the jobs it claimed are due again
LEASE = timedelta(seconds=30)  # a claim not renewed for this long lapses (a claim made with no process behind it)
JOBS = OutboxJob.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at runtime

# Written inline, not as bound parameters: the partial index ix_outbox_waiting applies only to queries
# whose condition visibly implies its own, which a parameter's value does not (SQLite, or a PostgreSQL
# generic plan).
_WAITING: tuple[ColumnElement[str], ...] = (literal_column("'pending'"), literal_column("'running'"))


def waiting(job: type[OutboxJob] = OutboxJob) -> ColumnElement[bool]:
    """Not yet delivered (pending or running), in the form the partial index ix_outbox_waiting matches."""
    return col(job.status).in_(_WAITING)


@dataclass(frozen=True)
class JobSpec:
    destination: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


class Subscriber(Protocol):
    """An adapter's say in which jobs a timeline event creates. Runs inside the domain transaction,
    so it may only read the session and return specs: no network."""

    def __call__(self, session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]: ...


def job_values(spec: JobSpec, incident_id: int | None, ordering_key: str | None = None) -> dict[str, Any]:
    """Every column of a new job row. Jobs with one ordering key run one at a time, oldest first (by
    default: per destination and incident)."""
    if ordering_key is None:
        ordering_key = f"{spec.destination}:{incident_id}" if incident_id is not None else f"{spec.destination}:-"
    now = utcnow()
    return {
        "destination": spec.destination,
        "kind": spec.kind,
        "incident_id": incident_id,
        "ordering_key": ordering_key,
        "payload": spec.payload,
        "status": JobStatus.PENDING,
        "attempts": 0,
        "available_at": now,
        "created_at": now,
    }


def enqueue(session: Session, spec: JobSpec, incident_id: int | None, *, ordering_key: str | None = None) -> OutboxJob:
    job = OutboxJob(**job_values(spec, incident_id, ordering_key))
    session.add(job)
    note_enqueued(session)
    return job


def enqueue_driver(write: DriverWrite, spec: JobSpec, incident_id: int | None, *, ordering_key: str | None = None) -> None:
    """`enqueue` through the SQLite driver (bot/store_driver.py), for the hottest ingest path."""
    write.insert(JOBS, job_values(spec, incident_id, ordering_key))
    write.enqueued = True


def claim(
    session: Session,
    *,
    limit: int,
    process_id: int | None = None,
    now: datetime | None = None,
    holding: Collection[str] = (),
) -> list[OutboxJob]:
    """Take up to `limit` jobs that are due, each the oldest undelivered one of its ordering key, for the
    worker process `process_id` (None: a claim with no process behind it, held by its lease alone).

    A running job is due again when its lease ran out or its process is dead. On PostgreSQL rows are
    locked with SKIP LOCKED so replicas never take the same job; on SQLite the transaction holds the write lock.

    Two queries rather than one with an OR, each walking ix_outbox_claim (status, available_at, id)
    in its order and stopping at `limit`: the few running jobs whose claim lapsed, then pending ones,
    longest due first. (By id, a planner walks the primary key past every delivered job; one that
    gathered and sorted every due job made a backlog drain quadratically.) Whether an earlier job of
    the key still waits is one probe of the partial index ix_outbox_waiting.

    `holding`: claim tokens of the jobs the caller is delivering now. Their leases may look lapsed (the
    clock jumped, or a heartbeat is late) but they are never claimed again by their own holder.
    """
    now = now or utcnow()
    earlier = aliased(OutboxJob)
    blocked = exists().where(
        col(earlier.ordering_key) == col(OutboxJob.ordering_key), col(earlier.id) < col(OutboxJob.id), waiting(earlier)
    )
    holder_dead = exists().where(
        col(WorkerProcess.id) == col(OutboxJob.claimed_by),
        or_(col(WorkerProcess.stopped_at).is_not(None), col(WorkerProcess.heartbeat_at) < now - DEAD_AFTER),
    )
    lapsed = select(OutboxJob).where(
        col(OutboxJob.status) == JobStatus.RUNNING, or_(col(OutboxJob.available_at) <= now, holder_dead), ~blocked
    )
    if holding:
        lapsed = lapsed.where(col(OutboxJob.claim_token).not_in(list(holding)))
    due = select(OutboxJob).where(col(OutboxJob.status) == JobStatus.PENDING, col(OutboxJob.available_at) <= now, ~blocked)
    postgres = session.get_bind().dialect.name == "postgresql"
    jobs: list[OutboxJob] = []
    for query in (lapsed, due):
        query = query.order_by(col(OutboxJob.available_at), col(OutboxJob.id)).limit(limit - len(jobs))
        if postgres:
            query = query.with_for_update(skip_locked=True, of=OutboxJob)
        jobs += session.exec(query)
        if len(jobs) >= limit:
            break
    for job in jobs:
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.available_at = now + LEASE
        job.claim_token = secrets.token_hex(8)
        job.claimed_by = process_id
        session.add(job)
    if jobs:
        note_enqueued(session)  # due again: the commit wakes the workers, other replicas' too
    session.flush()
    return jobs


# -- worker processes: who holds a claim, and whether it still lives ------------------------------
def register_process(session: Session, *, host: str, pid: int, now: datetime | None = None) -> int:
    now = now or utcnow()
    row = WorkerProcess(host=host, pid=pid, started_at=now, heartbeat_at=now)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def reap_predecessors(
    session: Session, process_id: int, *, host: str, pid: int, pid_alive: Callable[[int], bool], now: datetime | None = None
) -> list[int]:
    """Mark stopped the processes of this host that are gone: their pid no longer runs, or it is ours
    (a restarted container gets the same pid). Their jobs are due at once instead of after DEAD_AFTER."""
    rows = session.exec(
        select(WorkerProcess).where(
            col(WorkerProcess.host) == host, col(WorkerProcess.id) != process_id, col(WorkerProcess.stopped_at).is_(None)
        )
    ).all()
    gone = [row for row in rows if row.pid == pid or not pid_alive(row.pid)]
    for row in gone:
        row.stopped_at = now or utcnow()
        session.add(row)
    return [row.id for row in gone if row.id is not None]


def beat(session: Session | Connection, process_id: int, held: Collection[str], now: datetime | None = None) -> bool:
    """The process is alive: say so, and renew the lease of every job it holds (by claim token).
    False when its row says it stopped (another process took it for dead)."""
    now = now or utcnow()
    alive = rows_changed(
        session.execute(
            update(WorkerProcess)
            .where(col(WorkerProcess.id) == process_id, col(WorkerProcess.stopped_at).is_(None))
            .values(heartbeat_at=now)
        )
    )
    if held:
        session.execute(
            update(OutboxJob)
            .where(
                col(OutboxJob.claim_token).in_(held),
                col(OutboxJob.claimed_by) == process_id,
                col(OutboxJob.status) == JobStatus.RUNNING,
            )
            .values(available_at=now + LEASE)
        )
    return alive > 0


def stop_process(session: Session, process_id: int, now: datetime | None = None) -> None:
    session.execute(update(WorkerProcess).where(col(WorkerProcess.id) == process_id).values(stopped_at=now or utcnow()))


def _finish(session: Session, job: OutboxJob, **values: Any) -> bool:
    """Record a result only if our claim still holds (a worker whose lease ran out must not overwrite)."""
    query = update(OutboxJob).where(col(OutboxJob.id) == job.id, col(OutboxJob.claim_token) == job.claim_token)
    return rows_changed(session.execute(query.values(**values))) > 0


def complete(session: Session, job: OutboxJob, *, error: str | None = None) -> bool:
    """Done. `error` is kept for a best-effort job given up quietly (done, not dead: nothing to show)."""
    return _finish(session, job, status=JobStatus.DONE, finished_at=utcnow(), last_error=error, claim_token=None)


def retry_later(session: Session, job: OutboxJob, *, delay: float, error: str, rate_limited: bool = False) -> bool:
    """Due again after `delay`. `rate_limited`: the try counts on the rate-limited budget, not the ordinary one."""
    counted = {"rate_limited_attempts": col(OutboxJob.rate_limited_attempts) + 1} if rate_limited else {}
    return _finish(
        session,
        job,
        status=JobStatus.PENDING,
        available_at=utcnow() + timedelta(seconds=delay),
        last_error=error,
        claim_token=None,
        **counted,
    )


def defer(session: Session, job: OutboxJob, *, delay: float, error: str) -> bool:
    """Put a job back until its turn: like `retry_later`, but the claim does not count as an attempt."""
    return _finish(
        session,
        job,
        status=JobStatus.PENDING,
        available_at=utcnow() + timedelta(seconds=delay),
        attempts=job.attempts - 1,
        last_error=error,
        claim_token=None,
    )


def release(session: Session, job: OutboxJob) -> bool:
    """Hand an untried job back (shutdown): due now, and the claim does not count as an attempt."""
    return _finish(session, job, status=JobStatus.PENDING, available_at=utcnow(), attempts=job.attempts - 1, claim_token=None)


def dead_letter(session: Session, job: OutboxJob, *, error: str) -> bool:
    return _finish(session, job, status=JobStatus.DEAD, finished_at=utcnow(), last_error=error, claim_token=None)


def dead_jobs(session: Session, incident_id: int | None = None) -> list[OutboxJob]:
    query = select(OutboxJob).where(col(OutboxJob.status) == JobStatus.DEAD)
    if incident_id is not None:
        query = query.where(col(OutboxJob.incident_id) == incident_id)
    return list(session.exec(query.order_by(col(OutboxJob.id))))


def waiting_count(session: Session, older_than: timedelta | None = None) -> int:
    """Jobs not yet delivered (optionally: written more than `older_than` ago)."""
    query = select(func.count()).select_from(OutboxJob).where(waiting())
    if older_than is not None:
        query = query.where(col(OutboxJob.created_at) < utcnow() - older_than)
    return session.exec(query).one()


def waiting_behind(session: Session, job: OutboxJob, *, limit: int) -> list[OutboxJob]:
    """The jobs queued behind `job` under its ordering key, oldest first: none runs before `job` is done."""
    query = (
        select(OutboxJob)
        .where(
            col(OutboxJob.ordering_key) == job.ordering_key,
            col(OutboxJob.id) > job.id,
            waiting(),
            col(OutboxJob.status) == JobStatus.PENDING,
        )
        .order_by(col(OutboxJob.id))
        .limit(limit)
    )
    return list(session.exec(query))


def step_done(store: Store, key: str) -> OutboxStep | None:
    with store.read() as session:
        return session.get(OutboxStep, key)


def record_step(store: Store, key: str, value: str | None = None) -> None:
    try:
        with store.transaction() as session:
            if session.get(OutboxStep, key) is None:
                session.add(OutboxStep(key=key, value=value))
    except IntegrityError:
        pass  # recorded by a twin a moment ago: the step is done either way


# -- operators' tools: `im outbox list|show|retry` --------------------------------------------------
def _destination_filter(query: Any, destination: str | None) -> Any:
    """`slack`, `pagerduty:NAME`, or a bare prefix (`pagerduty`: every PagerDuty connector's jobs)."""
    if destination is None:
        return query
    if ":" in destination:
        return query.where(col(OutboxJob.destination) == destination)
    return query.where(or_(col(OutboxJob.destination) == destination, col(OutboxJob.destination).startswith(f"{destination}:")))


def list_jobs(session: Session, *, dead_only: bool = False, destination: str | None = None, limit: int = 100) -> list[OutboxJob]:
    """Jobs not delivered (pending, running, dead; only dead with `dead_only`), the newest `limit`, oldest first."""
    statuses = [JobStatus.DEAD] if dead_only else [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.DEAD]
    query = _destination_filter(select(OutboxJob).where(col(OutboxJob.status).in_(statuses)), destination)
    return sorted(session.exec(query.order_by(col(OutboxJob.id).desc()).limit(limit)), key=lambda job: job.id or 0)


def find_job(session: Session, job_id: int) -> OutboxJob:
    job = session.get(OutboxJob, job_id)
    if job is None:
        raise InvalidInput(f"no outbox job {job_id} (see: im outbox list)")
    return job


def retry_dead(session: Session, *, job_id: int | None = None, destination: str | None = None) -> list[OutboxJob]:
    """A second chance for dead-lettered jobs: one (refused unless it is dead), or every dead one (of a
    destination). Due at once with a fresh count of attempts; the last error is kept until the next try."""
    if job_id is not None:
        job = find_job(session, job_id)
        if job.status != JobStatus.DEAD:
            raise InvalidInput(f"job {job_id} is {job.status}, not dead: only dead-lettered jobs are retried")
        jobs = [job]
    else:
        query = _destination_filter(select(OutboxJob).where(col(OutboxJob.status) == JobStatus.DEAD), destination)
        jobs = list(session.exec(query.order_by(col(OutboxJob.id))))
    now = utcnow()
    for job in jobs:
        job.status, job.attempts, job.available_at, job.finished_at, job.claim_token = JobStatus.PENDING, 0, now, None, None
        job.rate_limited_attempts = 0
        session.add(job)
    session.flush()
    return jobs


def record_steps(store: Store, steps: Mapping[str, str | None]) -> None:
    """Several steps done by one call (a coalesced Slack reply), recorded together: a crash leaves all
    of them or none, so none is done again and none is lost."""
    try:
        with store.transaction() as session:
            for key, value in steps.items():
                if session.get(OutboxStep, key) is None:
                    session.add(OutboxStep(key=key, value=value))
    except IntegrityError:  # a twin recorded some of them a moment ago: the rest, one by one
        for key, value in steps.items():
            record_step(store, key, value)


def set_step(store: Store, key: str, value: str) -> None:
    """A step's note, replaced (a plan a job may redo until its outcome is unsure)."""
    with store.transaction() as session:
        row = session.get(OutboxStep, key) or OutboxStep(key=key)
        row.value = value
        session.add(row)
