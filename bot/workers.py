"""Outbox workers: claim due jobs, call out with no transaction open, record the result in a new one.

Every kind of job is declared once, by the delivery of its destination: a table of `JobKind`s (name,
handler, retry policy) that the Dispatcher looks the job's kind up in. A kind nobody declares is
dead-lettered with the reason. A process's claims carry its identity (worker_process row); its
heartbeat keeps them, and a successor on the same host takes a dead predecessor's jobs at once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from bot.domain import outbox
from bot.domain.models import OutboxJob
from bot.store import OUTBOX_CHANNEL, Store

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The remote side is busy or away: try again later. `delay` is what it asked for (Retry-After).
    `free`: a wait for a turn the job holds (pacing), not a failed try, so it does not count as an attempt."""

    def __init__(self, reason: str, delay: float | None = None, rate_limited: bool = False, free: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.rate_limited = rate_limited
        self.free = free


class GiveUp(Exception):
    """Retrying cannot help (bad channel, revoked token...): dead-letter with this visible reason."""


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    max_rate_limited_attempts: int = 30  # a long 429 storm is survivable; a dead endpoint is not
    base_delay: float = 2.0
    max_delay: float = 300.0
    fixed_delay: float | None = None  # every retry this long after the last try, instead of backing off
    give_up_quietly: bool = False  # out of retries: done (best-effort work), not dead-lettered
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempts: int) -> float:
        """Exponential with equal jitter: never zero, never a synchronized herd."""
        if self.fixed_delay is not None:
            return self.fixed_delay
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def jitter(self, delay: float) -> float:
        return delay + self.rng.uniform(0, min(1.0, delay / 4 + 0.1))


Handler = Callable[[OutboxJob], None]
OutcomeObserver = Callable[[OutboxJob, str], None]
# what each recording step means for a job, as observers are told it
OUTCOMES = {"complete": "delivered", "retry_later": "retry", "dead_letter": "dead", "release": "released"}


@dataclass(frozen=True)
class JobKind:
    """One kind of job a destination delivers. `policy` None: the dispatcher's default policy."""

    name: str
    handler: Handler
    policy: RetryPolicy | None = None


def kind_table(*kinds: JobKind) -> Mapping[str, JobKind]:
    return MappingProxyType({kind.name: kind for kind in kinds})


class Delivery(Protocol):
    """What a destination delivers: every job kind it knows, by name."""

    @property
    def kinds(self) -> Mapping[str, JobKind]: ...


@dataclass
class Dispatcher:
    store: Store
    deliveries: Mapping[str, Delivery]  # by destination, or by its prefix before ":"
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = 1  # claimed one at a time: a job never waits out its lease behind another one
    process_id: int | None = None  # the worker process claims are made for (set by its Heartbeat)
    on_outcome: list[OutcomeObserver] = field(default_factory=list)  # metrics: told each recorded outcome
    _held: dict[int, str] = field(default_factory=dict, init=False, repr=False)  # job id -> claim token
    _held_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def kind_for(self, job: OutboxJob) -> JobKind:
        delivery = self.deliveries.get(job.destination) or self.deliveries.get(job.destination.split(":", 1)[0])
        if delivery is None:
            raise GiveUp(f"nothing here delivers to '{job.destination}' (is it configured?)")
        kind = delivery.kinds.get(job.kind)
        if kind is None:
            known = ", ".join(sorted(delivery.kinds))
            raise GiveUp(f"'{job.destination}' has no job kind '{job.kind}' (it knows: {known})")
        return kind

    def held(self) -> list[str]:
        """Claim tokens of the jobs this dispatcher holds now (claimed, result not yet recorded)."""
        with self._held_lock:
            return list(self._held.values())

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim and deliver one batch. Returns how many jobs were tried. When `stop` is set midway,
        the jobs not yet tried are handed back at once rather than left to their lease."""
        with self.store.transaction() as session:
            jobs = outbox.claim(session, limit=self.batch, process_id=self.process_id, holding=self.held())
        with self._held_lock:
            self._held.update((job.id, job.claim_token) for job in jobs if job.id is not None and job.claim_token)
        for n, job in enumerate(jobs):
            if stop is not None and stop.is_set():
                for left in jobs[n:]:
                    self._record(outbox.release, left)
                return n
            self._deliver(job)
        return len(jobs)

    def drain(self, max_rounds: int = 1000) -> int:
        """Deliver until nothing is due (tests and `im` one-shot use)."""
        total = 0
        for _ in range(max_rounds):
            done = self.run_once()
            total += done
            if not done:
                break
        return total

    def _deliver(self, job: OutboxJob) -> None:
        policy = self.policy
        try:
            kind = self.kind_for(job)
            policy = kind.policy or self.policy
            kind.handler(job)
        except RetryLater as exc:
            # a transient refusal spends the rate-limited budget (every try counts there); an ordinary
            # failure the ordinary one, which the job's transient refusals do not eat into
            spent = job.attempts if exc.rate_limited else job.attempts - job.rate_limited_attempts
            limit = policy.max_rate_limited_attempts if exc.rate_limited else policy.max_attempts
            if exc.free and exc.delay is not None:
                log.debug("job %s (%s %s) waits %.2fs for its turn", job.id, job.destination, job.kind, exc.delay)
                self._record(outbox.defer, job, delay=exc.delay, error=exc.reason)
            elif spent >= limit and policy.give_up_quietly:
                log.info("job %s (%s %s) given up after %s attempts: %s", job.id, job.destination, job.kind, job.attempts, exc)
                self._record(outbox.complete, job, error=exc.reason)
            elif spent >= limit:
                self._record(outbox.dead_letter, job, error=f"gave up after {job.attempts} attempts: {exc.reason}")
            else:
                delay = policy.jitter(exc.delay) if exc.delay is not None else policy.backoff(job.attempts)
                log.info("job %s (%s %s) retry in %.1fs: %s", job.id, job.destination, job.kind, delay, exc.reason)
                self._record(outbox.retry_later, job, delay=delay, error=exc.reason, rate_limited=exc.rate_limited)
        except GiveUp as exc:
            log.warning("job %s (%s %s) dead-lettered: %s", job.id, job.destination, job.kind, exc)
            self._record(outbox.dead_letter, job, error=str(exc))
        except Exception as exc:  # a bug in a handler must not stop the worker; it is retried, then visible
            log.exception("job %s (%s %s) failed unexpectedly", job.id, job.destination, job.kind)
            if job.attempts - job.rate_limited_attempts >= policy.max_attempts:
                self._record(outbox.dead_letter, job, error=f"{type(exc).__name__}: {exc}")
            else:
                self._record(outbox.retry_later, job, delay=policy.backoff(job.attempts), error=f"{type(exc).__name__}: {exc}")
        else:
            self._record(outbox.complete, job)

    def _record(self, fn: Callable[..., bool], job: OutboxJob, **kwargs: Any) -> None:
        try:
            with self.store.transaction() as session:
                recorded = fn(session, job, **kwargs)
                if not recorded:
                    log.warning("job %s: our claim lapsed before the result was recorded", job.id)
        finally:
            with self._held_lock:  # recorded or not, no longer ours to renew: unrecorded, its lease runs out
                self._held.pop(job.id or 0, None)
        quietly = fn is outbox.complete and kwargs.get("error")  # best-effort work given up
        self._observe(job, "lapsed" if not recorded else "given_up" if quietly else OUTCOMES.get(fn.__name__, fn.__name__))

    def _observe(self, job: OutboxJob, outcome: str) -> None:
        """Observers (metrics) are told each outcome; one that fails is logged, never fatal to the worker."""
        for observer in self.on_outcome:
            try:
                observer(job, outcome)
            except Exception:
                log.exception("outbox outcome observer failed")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class Heartbeat:
    """This process's row in worker_process: registered at start (a dead predecessor on this host is
    marked stopped then), beaten every `interval` seconds with the leases of the jobs the dispatcher
    holds renewed, marked stopped at a clean stop."""

    def __init__(self, dispatcher: Dispatcher, interval: float = outbox.HEARTBEAT.total_seconds()) -> None:
        self.dispatcher = dispatcher
        self.store = dispatcher.store
        self.interval = interval
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.process_id: int | None = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="im-heartbeat", daemon=True)

    def start(self) -> None:
        with self.store.transaction() as session:
            me = outbox.register_process(session, host=self.host, pid=self.pid)
            reaped = outbox.reap_predecessors(session, me, host=self.host, pid=self.pid, pid_alive=pid_alive)
        if reaped:
            log.info("worker processes %s of this host are gone: their jobs are due now", reaped)
        self.process_id = self.dispatcher.process_id = me
        self.thread.start()

    def beat(self) -> None:
        assert self.process_id is not None, "start() first"
        with self.store.core() as conn:  # two UPDATEs: no ORM session needed
            alive = outbox.beat(conn, self.process_id, self.dispatcher.held())
        if not alive:
            log.error("worker process %s was taken for dead: the jobs it holds may be delivered elsewhere too", self.process_id)

    def stop(self, *, mark_stopped: bool = True) -> None:
        """`mark_stopped` False (a worker still busy) leaves the row to go silent: its jobs wait DEAD_AFTER."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(self.interval + 5)
        if mark_stopped and self.process_id is not None:
            with self.store.transaction() as session:
                outbox.stop_process(session, self.process_id)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the database is away: beat again next time
                log.exception("worker process heartbeat failed")


class OutboxListener:
    """PostgreSQL: LISTEN on the outbox channel on a connection of its own, and wake this process's
    workers when another process (a replica, a terminal `im`) commits jobs. A lost connection is
    opened again (with a wake on reconnecting: a notice sent meanwhile is gone); polling stays the
    fallback in between."""

    def __init__(self, store: Store, wake: threading.Event, *, retry: float = 1.0, max_retry: float = 30.0) -> None:
        self.store = store
        self.wake = wake
        self.retry, self.max_retry = retry, max_retry
        self.listening = threading.Event()  # set while LISTEN is in force (tests wait for it)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="im-outbox-listen", daemon=True)

    def start(self, wait: float = 5.0) -> None:
        self.thread.start()
        self.listening.wait(wait)  # best effort: if the database is away, polling covers until it is back

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def _loop(self) -> None:
        delay = self.retry
        while not self.stop_event.is_set():
            try:
                self._listen()
                delay = self.retry
            except Exception:  # the database went away: listen again later, poll meanwhile
                self.listening.clear()
                log.warning("outbox LISTEN connection lost: reconnecting in %.0fs", delay, exc_info=True)
                self.stop_event.wait(delay)
                delay = min(self.max_retry, delay * 2)

    def _listen(self) -> None:
        raw = self.store.engine.raw_connection()  # the engine's connect arguments, then out of its pool for good
        conn = raw.driver_connection
        assert conn is not None, "a checked-out connection is open"
        raw.detach()
        try:
            conn.autocommit = True
            conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            self.listening.set()
            self.wake.set()  # whatever was notified while we were not listening
            while not self.stop_event.is_set():
                for _ in conn.notifies(timeout=1.0):  # returns each second to look at stop_event
                    self.wake.set()
        finally:
            self.listening.clear()
            raw.close()


class WorkerPool:
    """Threads that run the dispatcher when woken (a commit of this process that wrote jobs, or on
    PostgreSQL another process's, through LISTEN/NOTIFY) or every `poll` seconds as a fallback, under
    this process's heartbeat."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        wake: threading.Event,
        *,
        threads: int = 2,
        poll: float = 1.0,
        heartbeat: float = outbox.HEARTBEAT.total_seconds(),
    ) -> None:
        self.dispatcher = dispatcher
        self.wake = wake
        self.poll = poll
        self.heartbeat = Heartbeat(dispatcher, heartbeat)
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._loop, name=f"im-outbox-{n}", daemon=True) for n in range(threads)]
        store = dispatcher.store
        self.listener = None if store.is_sqlite else OutboxListener(store, wake)

    def start(self) -> None:
        self.heartbeat.start()  # before the first claim: every claim names its process
        if self.listener is not None:
            self.listener.start()
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.listener is not None:
            self.listener.stop()
        for thread in self.threads:
            thread.join(timeout)
        self.heartbeat.stop(mark_stopped=not any(thread.is_alive() for thread in self.threads))

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self.wake.clear()  # before claiming, so a commit during the run is not missed
            try:
                worked = self.dispatcher.run_once(self.stop_event)
            except Exception:  # the database is away: keep the thread, try again shortly
                log.exception("outbox worker could not claim jobs")
                worked = 0
            if not worked:
                self.wake.wait(self.poll)
