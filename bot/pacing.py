"""Pacing outbound calls ahead of a remote API's rate limits, shared by every replica through the database.

One `pace_bucket` row per key (a PagerDuty API key, one Slack channel's posts, one Slack method) holds
tokens that refill at the limit's rate up to a small burst. A call takes its token with one UPDATE that
refills and debits at once, so it works alike on SQLite and PostgreSQL and two replicas never both
spend the last token. When the token is not there the call still takes it: the bucket goes into debt
and the answer is when this call's turn comes (the debt paid back at the refill rate). Turns are thus
handed out first come, first served, one per call, and nobody polls for them:

- an outbox job whose call must wait is deferred durably to its turn (`Deferred`, the outbox's
  `available_at`), with its turn remembered as a hold (`pace:<job>:<key>`) so that when it comes back
  it goes at once instead of queuing again; no worker thread sleeps;
- a call that cannot be deferred (the later calls of a job already admitted; a scheduled task) goes
  into debt and the next admitted work waits longer for it; outside a job it sleeps to its turn.

Limits are sized so that any window of the vendor's period sees at most its count: the burst is 5%
of the count, 3% is kept in reserve (calls that borrow, turns taken late) and the rest refills over
the period.
A 429 that still comes pushes the whole key back by the time the vendor asked for (`hold_off`), and a
turn promised before it that comes inside that time is not spent then: its job takes a new turn, behind
the hold-off (otherwise every job deferred to such a turn would draw its own 429, and each 429 a new
hold-off).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from bot.domain.models import OutboxJob, OutboxStep
from bot.store import Store, rows_changed
from bot.workers import Handler, RetryLater

log = logging.getLogger(__name__)

BURST_SHARE = 0.05  # of a limit's count, spent at once when the bucket is full
RESERVE_SHARE = 0.03  # of a limit's count left unused each period: calls that borrow, turns taken late
HOLD_PREFIX = "pace:"
OFF_SUFFIX = "#off"  # pace_bucket row `<key>#off`: updated_at is when the vendor's last hold-off ends
DEFERRED_REASON = "paced"
PACED_BY_DEFAULT: Mapping[str, tuple[int, int]] = {}  # no overrides: the vendors' own limits
MAX_SLEEP = 30.0  # outside the outbox a call waits at most this long for its turn, then goes (its debt stays)  # how a deferral reads in the job's last_error


class PaceBucket(SQLModel, table=True):
    """Tokens left for one key (negative: calls already promised a later turn), as of `updated_at`."""

    __tablename__ = "pace_bucket"

    key: str = Field(primary_key=True)
    tokens: float
    updated_at: float  # Unix seconds of the last refill; never moved back (a replica whose clock is behind waits longer)


BUCKETS = PaceBucket.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at runtime


@dataclass(frozen=True)
class Limit:
    """A vendor's limit: `count` calls per `seconds`."""

    count: int
    seconds: float

    @property
    def burst(self) -> float:
        return max(1.0, round(self.count * BURST_SHARE))

    @property
    def rate(self) -> float:
        """Tokens a second: burst + rate x period + a reserve stays within count in any window of the period."""
        reserve = max(1.0, round(self.count * RESERVE_SHARE))
        return max(self.count - self.burst - reserve, 1.0) / self.seconds


class Deferred(RetryLater):
    """Not this call's turn yet: the job is put back until `delay` seconds from now (a turn it holds)."""

    def __init__(self, key: str, delay: float) -> None:
        super().__init__(f"{DEFERRED_REASON}: {key} turn in {delay:.2f}s", delay=delay, rate_limited=True, free=True)
        self.key = key


_current_job: ContextVar[int | None] = ContextVar("im_paced_job", default=None)


def in_job(handler: Handler) -> Handler:
    """`handler` with its job known to the pacer while it runs (a turn it must wait for defers the job)."""

    def run(job: OutboxJob) -> None:
        with job_scope(job.id):
            handler(job)

    return run


def current_job() -> int | None:
    return _current_job.get()


@contextmanager
def job_scope(job_id: int | None) -> Iterator[None]:
    """As `in_job`, for code that holds a job id rather than a handler."""
    token = _current_job.set(job_id)
    try:
        yield
    finally:
        _current_job.reset(token)


def secret_key(prefix: str, secret: str) -> str:
    """A bucket key for a credential's own budget: a digest, never the credential itself."""
    return f"{prefix}:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"


class Pacer:
    """Turns for calls, by key. `limits` are the operator's overrides by name (None: pacing off)."""

    def __init__(
        self,
        store: Store,
        limits: Mapping[str, tuple[int, int]] | None = None,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.overrides = limits
        # looked up at each call, not bound here: a frozen clock (freezegun) is seen by the pacer too
        self.clock = clock or (lambda: time.time())
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))

    @property
    def enabled(self) -> bool:
        return self.overrides is not None

    def limit(self, name: str, default: Limit) -> Limit | None:
        """The limit called `name`: the operator's override, else `default`; None when pacing is off."""
        if self.overrides is None:
            return None
        count, seconds = self.overrides.get(name, (default.count, default.seconds))
        return Limit(count, seconds)

    # -- the three ways to take a turn ------------------------------------------------------------
    def admit(self, key: str, limit: Limit | None) -> None:
        """A call about to leave from an outbox job: return when it may go (a token, or the turn this job
        holds has come), else raise Deferred with the turn it now holds. Outside a job: wait for the turn."""
        if limit is None:
            return
        job = current_job()
        if job is None:
            self.wait(key, limit)
            return
        now = self.clock()
        hold_key = f"{HOLD_PREFIX}{job}:{key}"
        with self.store.transaction() as session:
            hold = session.get(OutboxStep, hold_key)
            if hold is not None and hold.value is not None:
                turn = float(hold.value)
                if turn > now:
                    raise Deferred(key, turn - now)  # woken early: the turn stays ours
                session.delete(hold)
                off = session.get(PaceBucket, f"{key}{OFF_SUFFIX}")
                if off is None or off.updated_at <= now:
                    return
                # promised before the vendor's 429, come inside its hold-off: a new turn, behind it
            wait = self._take(session, key, limit, now)
            if wait > 0:
                session.add(OutboxStep(key=hold_key, value=repr(now + wait)))
        if wait > 0:
            raise Deferred(key, wait)

    def borrow(self, key: str, limit: Limit | None) -> None:
        """A call that goes now whatever the bucket says (work already admitted): later turns wait for it."""
        if limit is not None:
            with self.store.transaction() as session:
                self._take(session, key, limit, self.clock())

    def wait(self, key: str, limit: Limit | None) -> None:
        """A call outside the outbox (a scheduled task, the terminal): take a turn and sleep until it comes."""
        if limit is None:
            return
        with self.store.transaction() as session:
            wait = self._take(session, key, limit, self.clock())
        if wait > 0:
            log.info("pacing %s: waiting %.2fs for a turn", key, min(wait, MAX_SLEEP))
            self.sleep(min(wait, MAX_SLEEP))

    def hold_off(self, key: str, limit: Limit | None, seconds: float) -> None:
        """The vendor said 429 anyway: nobody's next turn on `key` comes before `seconds` from now."""
        if limit is None or seconds <= 0:
            return
        now = self.clock()
        with self.store.transaction() as session:
            self._take(session, key, limit, now, cost=0.0)
            session.execute(
                update(BUCKETS)
                .where(BUCKETS.c.key == key, BUCKETS.c.tokens > -seconds * limit.rate)
                .values(tokens=-seconds * limit.rate)
            )
            self._hold_off_until(session, f"{key}{OFF_SUFFIX}", now + seconds)

    def tokens(self, key: str) -> float | None:
        """Tokens left on `key` as last written (tests, metrics)."""
        with self.store.read() as session:
            row = session.get(PaceBucket, key)
        return row.tokens if row is not None else None

    # -- the bucket ---------------------------------------------------------------------------------
    def _take(self, session: Session, key: str, limit: Limit, now: float, cost: float = 1.0) -> float:
        """Refill to `now` and debit `cost` in one statement; the seconds until this call's turn (0: now)."""
        for _ in range(3):
            elapsed = case((BUCKETS.c.updated_at < now, now - BUCKETS.c.updated_at), else_=0.0)
            refilled = BUCKETS.c.tokens + elapsed * limit.rate
            capped = case((refilled > limit.burst, limit.burst), else_=refilled)
            row = session.execute(
                update(BUCKETS)
                .where(BUCKETS.c.key == key)
                .values(
                    tokens=capped - cost,
                    updated_at=case((BUCKETS.c.updated_at < now, now), else_=BUCKETS.c.updated_at),
                )
                .returning(BUCKETS.c.tokens)
            ).first()
            if row is not None:
                return _turn_in(float(row[0]), limit)
            try:
                with session.begin_nested():
                    session.add(PaceBucket(key=key, tokens=limit.burst - cost, updated_at=now))
                return _turn_in(limit.burst - cost, limit)
            except IntegrityError:
                continue  # a twin made the row a moment ago: take from it
        raise RuntimeError(f"pace bucket {key} could not be written")

    @staticmethod
    def _hold_off_until(session: Session, off_key: str, until: float) -> None:
        """The hold-off's end, never moved earlier (two 429s: the later end holds)."""
        moved = session.execute(
            update(BUCKETS).where(BUCKETS.c.key == off_key, BUCKETS.c.updated_at < until).values(updated_at=until)
        )
        if rows_changed(moved) or session.get(PaceBucket, off_key) is not None:
            return
        try:
            with session.begin_nested():
                session.add(PaceBucket(key=off_key, tokens=0.0, updated_at=until))
        except IntegrityError:
            pass  # a twin's hold-off a moment ago: it ends at about the same time


def _turn_in(tokens: float, limit: Limit) -> float:
    return 0.0 if tokens >= 0 else -tokens / limit.rate
