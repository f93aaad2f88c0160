"""The pacer (bot/pacing.py) on SQLite and PostgreSQL: turns handed out first come first served, none
lost or doubled when replicas take them at once, a deferred job going at its turn, a 429 holding off."""

from __future__ import annotations

import threading

import pytest

from bot.domain.models import OutboxStep
from bot.pacing import Deferred, Limit, Pacer, job_scope
from bot.store import Store

LIMIT = Limit(20, 10)  # burst 1, reserve 1: 1.8 turns a second


class Clock:
    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def replicas(url: str, n: int) -> list[Store]:
    first = Store(url)
    first.upgrade()
    return [first] + [Store(url) for _ in range(n - 1)]


def test_turns_are_shared_by_replicas_first_come_first_served(database_url: str) -> None:
    """Two replicas, four threads each, 80 calls at one instant: every call gets its own turn, spaced at
    the limit's rate, so the calls the turns let through stay within the limit in any window."""
    clock = Clock()
    stores = replicas(database_url, 2)
    waits: list[float] = []
    lock = threading.Lock()

    def caller(store: Store) -> None:
        pacer = Pacer(store, {}, clock=clock, sleep=lambda s: None)
        for _ in range(10):
            with store.transaction() as session:
                wait = pacer._take(session, "api", LIMIT, clock())
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=caller, args=(store,)) for store in stores for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waits) == 80
    expected = [0.0] * int(LIMIT.burst) + [k / LIMIT.rate for k in range(1, 80 - int(LIMIT.burst) + 1)]
    assert sorted(waits) == pytest.approx(expected)  # none lost, none doubled
    turns = sorted(clock.at + w for w in waits)
    busiest = max(sum(1 for t in turns if start <= t < start + LIMIT.seconds) for start in turns)
    assert busiest <= LIMIT.count
    for store in stores:
        store.dispose()


def test_a_deferred_job_goes_at_its_turn_and_keeps_it(database_url: str) -> None:
    clock = Clock()
    (store,) = replicas(database_url, 1)
    pacer = Pacer(store, {}, clock=clock)
    with job_scope(1):
        pacer.admit("api", LIMIT)  # the burst
    with job_scope(2), pytest.raises(Deferred) as first:
        pacer.admit("api", LIMIT)
    assert first.value.delay == pytest.approx(1 / LIMIT.rate)
    with job_scope(3), pytest.raises(Deferred) as second:
        pacer.admit("api", LIMIT)
    assert second.value.delay == pytest.approx(2 / LIMIT.rate)  # behind job 2, not beside it
    clock.at += 0.5 / LIMIT.rate
    with job_scope(2), pytest.raises(Deferred) as early:
        pacer.admit("api", LIMIT)  # woken early: the same turn, no new one
    assert early.value.delay == pytest.approx(0.5 / LIMIT.rate, abs=1e-6)
    clock.at += 0.5 / LIMIT.rate
    with job_scope(2):
        pacer.admit("api", LIMIT)  # its turn: goes without queuing again
    with store.read() as session:
        assert session.get(OutboxStep, "pace:2:api") is None
        assert session.get(OutboxStep, "pace:3:api") is not None
    assert pacer.tokens("api") == pytest.approx(-2.0)  # as last written: jobs 2 and 3 each owed a turn
    store.dispose()


def test_a_429_holds_every_replica_off(sqlite_url: str) -> None:
    clock = Clock()
    first, second = replicas(sqlite_url, 2)
    Pacer(first, {}, clock=clock).hold_off("api", LIMIT, 30.0)
    with job_scope(7), pytest.raises(Deferred) as deferred:
        Pacer(second, {}, clock=clock).admit("api", LIMIT)
    assert deferred.value.delay == pytest.approx(30.0 + 1 / LIMIT.rate)
    first.dispose()
    second.dispose()


def test_a_turn_promised_before_a_429_is_not_spent_inside_its_hold_off(database_url: str) -> None:
    """Job 2 was promised the next turn; PagerDuty then says 429 for 30 s. When job 2 comes back at its
    turn, inside the hold-off, it takes a new turn behind it instead of drawing a 429 of its own."""
    clock = Clock()
    (store,) = replicas(database_url, 1)
    pacer = Pacer(store, {}, clock=clock)
    with job_scope(1):
        pacer.admit("api", LIMIT)  # the burst
    with job_scope(2), pytest.raises(Deferred):
        pacer.admit("api", LIMIT)  # promised the turn in 1/rate s
    pacer.hold_off("api", LIMIT, 30.0)
    pacer.hold_off("api", LIMIT, 10.0)  # a shorter one after it does not end the first sooner
    clock.at += 1 / LIMIT.rate
    with job_scope(2), pytest.raises(Deferred) as again:
        pacer.admit("api", LIMIT)
    assert again.value.delay >= 30.0 - 1 / LIMIT.rate, "behind the hold-off"
    clock.at += again.value.delay
    with job_scope(2):
        pacer.admit("api", LIMIT)  # its new turn: goes
    with job_scope(3):
        clock.at += 60.0  # long after the hold-off: a promised turn is spent as before
        pacer.admit("api", LIMIT)
    store.dispose()


def test_overrides_and_off() -> None:
    assert Pacer(None, None).limit("pagerduty", Limit(960, 60)) is None  # type: ignore[arg-type]
    assert Pacer(None, {"pagerduty": (60, 60)}).limit("pagerduty", Limit(960, 60)) == Limit(60, 60)  # type: ignore[arg-type]
    assert Pacer(None, {}).limit("pagerduty", Limit(960, 60)) == Limit(960, 60)  # type: ignore[arg-type]
