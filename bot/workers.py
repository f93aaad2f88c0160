"""Outbox workers: claim due jobs, call out with no transaction open, record the result in a new one."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.domain import outbox
from bot.domain.models import OutboxJob
from bot.store import Store

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The remote side is busy or away: try again later. `delay` is what it asked for (Retry-After)."""

    def __init__(self, reason: str, delay: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.rate_limited = rate_limited


class GiveUp(Exception):
    """Retrying cannot help (bad channel, revoked token...): dead-letter with this visible reason."""


OutcomeObserver = Callable[[OutboxJob, str], None]
# what each recording step means for a job, as observers are told it
OUTCOMES = {"complete": "delivered", "retry_later": "retry", "dead_letter": "dead", "release": "released"}


class Delivery(Protocol):
    def deliver(self, job: OutboxJob) -> None: ...


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    max_rate_limited_attempts: int = 30  # a long 429 storm is survivable; a dead endpoint is not
    base_delay: float = 2.0
    max_delay: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempts: int) -> float:
        """Exponential with equal jitter: never zero, never a synchronized herd."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def jitter(self, delay: float) -> float:
        return delay + self.rng.uniform(0, min(1.0, delay / 4 + 0.1))


@dataclass
class Dispatcher:
    store: Store
    deliveries: Mapping[str, Delivery]  # by destination, or by its prefix before ":"
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = 1  # claimed one at a time: a job never waits out its lease behind another one
    on_outcome: list[OutcomeObserver] = field(default_factory=list)

    def handler_for(self, destination: str) -> Delivery | None:
        return self.deliveries.get(destination) or self.deliveries.get(destination.split(":", 1)[0])

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Claim and deliver one batch. Returns how many jobs were tried. When `stop` is set midway,
        the jobs not yet tried are handed back at once rather than left to their lease."""
        with self.store.transaction() as session:
            jobs = outbox.claim(session, limit=self.batch)
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
        handler = self.handler_for(job.destination)
        try:
            if handler is None:
                raise GiveUp(f"nothing here delivers to '{job.destination}' (is it configured?)")
            handler.deliver(job)
        except RetryLater as exc:
            limit = self.policy.max_rate_limited_attempts if exc.rate_limited else self.policy.max_attempts
            if job.attempts >= limit:
                self._record(outbox.dead_letter, job, error=f"gave up after {job.attempts} attempts: {exc.reason}")
            else:
                delay = self.policy.jitter(exc.delay) if exc.delay is not None else self.policy.backoff(job.attempts)
                log.info("job %s (%s %s) retry in %.1fs: %s", job.id, job.destination, job.kind, delay, exc.reason)
                self._record(outbox.retry_later, job, delay=delay, error=exc.reason)
        except GiveUp as exc:
            log.warning("job %s (%s %s) dead-lettered: %s", job.id, job.destination, job.kind, exc)
            self._record(outbox.dead_letter, job, error=str(exc))
        except Exception as exc:  # a bug in a handler must not stop the worker; it is retried, then visible
            log.exception("job %s (%s %s) failed unexpectedly", job.id, job.destination, job.kind)
            if job.attempts >= self.policy.max_attempts:
                self._record(outbox.dead_letter, job, error=f"{type(exc).__name__}: {exc}")
            else:
                self._record(
                    outbox.retry_later, job, delay=self.policy.backoff(job.attempts), error=f"{type(exc).__name__}: {exc}"
                )
        else:
            self._record(outbox.complete, job)

    def _record(self, fn, job: OutboxJob, **kwargs) -> None:  # type: ignore[no-untyped-def]
        with self.store.transaction() as session:
            recorded = fn(session, job, **kwargs)
            if not recorded:
                log.warning("job %s: our claim lapsed before the result was recorded", job.id)
        self._observe(job, OUTCOMES.get(fn.__name__, fn.__name__) if recorded else "lapsed")

    # -- observers (metrics): told each recorded outcome; one that fails is logged, never fatal to the worker --
    def _observe(self, job: OutboxJob, outcome: str) -> None:
        for observer in self.on_outcome:
            try:
                observer(job, outcome)
            except Exception:
                log.exception("outbox outcome observer failed")


class WorkerPool:
    """Threads that run the dispatcher when woken (a local commit) or every `poll` seconds (other processes)."""

    def __init__(self, dispatcher: Dispatcher, wake: threading.Event, *, threads: int = 2, poll: float = 1.0) -> None:
        self.dispatcher = dispatcher
        self.wake = wake
        self.poll = poll
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._loop, name=f"im-outbox-{n}", daemon=True) for n in range(threads)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout)

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
