"""The outbox: work written in the same transaction as the change it comes from, delivered after commit."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.clock import utcnow
from bot.domain.models import Incident, JobStatus, OutboxJob, OutboxStep, TimelineEvent

if TYPE_CHECKING:
    from bot.store import Store

LEASE = timedelta(minutes=5)  # longer than the worst delivery (a job is claimed alone, see workers)


@dataclass(frozen=True)
class JobSpec:
    destination: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


class Subscriber(Protocol):
    """An adapter's say in which jobs a timeline event creates. Runs inside the domain transaction,
    so it may only read the session and return specs: no network."""

    def __call__(self, session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]: ...


def enqueue(session: Session, spec: JobSpec, incident_id: int | None, *, ordering_key: str | None = None) -> OutboxJob:
    """Jobs with one ordering key run one at a time, oldest first (by default: per destination and incident)."""
    if ordering_key is None:
        ordering_key = f"{spec.destination}:{incident_id}" if incident_id is not None else f"{spec.destination}:-"
    job = OutboxJob(
        destination=spec.destination,
        kind=spec.kind,
        incident_id=incident_id,
        ordering_key=ordering_key,
        payload=spec.payload,
    )
    session.add(job)
    return job


def claim(session: Session, *, limit: int, destinations: list[str] | None = None, now: datetime | None = None) -> list[OutboxJob]:
    """Take up to `limit` jobs that are due, each the oldest undelivered one of its ordering key.

    A running job whose lease ran out (its worker died) is due again. On PostgreSQL rows are locked
    with SKIP LOCKED so replicas never take the same job; on SQLite the transaction holds the write lock.
    """
    now = now or utcnow()
    earlier = aliased(OutboxJob)
    blocked = exists().where(
        earlier.ordering_key == OutboxJob.ordering_key,
        earlier.id < OutboxJob.id,
        col(earlier.status).in_([JobStatus.PENDING, JobStatus.RUNNING]),
    )
    query = (
        select(OutboxJob)
        .where(
            col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING]),
            OutboxJob.available_at <= now,
            ~blocked,
        )
        .order_by(col(OutboxJob.id))
        .limit(limit)
    )
    if destinations is not None:
        query = query.where(or_(*[col(OutboxJob.destination) == d for d in destinations]) if destinations else False)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxJob)  # type: ignore[arg-type]
    jobs = list(session.exec(query))
    for job in jobs:
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.available_at = now + LEASE
        job.claim_token = secrets.token_hex(8)
        session.add(job)
    session.flush()
    return jobs


def _finish(session: Session, job: OutboxJob, **values: Any) -> bool:
    """Record a result only if our claim still holds (a worker whose lease ran out must not overwrite)."""
    result = session.execute(
        update(OutboxJob).where(and_(OutboxJob.id == job.id, OutboxJob.claim_token == job.claim_token)).values(**values)
    )
    return bool(result.rowcount)


def complete(session: Session, job: OutboxJob) -> bool:
    return _finish(session, job, status=JobStatus.DONE, finished_at=utcnow(), last_error=None, claim_token=None)


def retry_later(session: Session, job: OutboxJob, *, delay: float, error: str) -> bool:
    return _finish(
        session,
        job,
        status=JobStatus.PENDING,
        available_at=utcnow() + timedelta(seconds=delay),
        last_error=error,
        claim_token=None,
    )


def release(session: Session, job: OutboxJob) -> bool:
    """Hand an untried job back (shutdown): due now, and the claim does not count as an attempt."""
    return _finish(session, job, status=JobStatus.PENDING, available_at=utcnow(), attempts=job.attempts - 1, claim_token=None)


def dead_letter(session: Session, job: OutboxJob, *, error: str) -> bool:
    return _finish(session, job, status=JobStatus.DEAD, finished_at=utcnow(), last_error=error, claim_token=None)


def dead_jobs(session: Session, incident_id: int | None = None) -> list[OutboxJob]:
    query = select(OutboxJob).where(OutboxJob.status == JobStatus.DEAD)
    if incident_id is not None:
        query = query.where(OutboxJob.incident_id == incident_id)
    return list(session.exec(query.order_by(col(OutboxJob.id))))


def pending_count(session: Session) -> int:
    return waiting_count(session)


def waiting_count(session: Session, older_than: timedelta | None = None) -> int:
    """Jobs not yet delivered (optionally: written more than `older_than` ago)."""
    query = select(func.count()).select_from(OutboxJob).where(col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING]))
    if older_than is not None:
        query = query.where(OutboxJob.created_at < utcnow() - older_than)
    return session.exec(query).one()


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
