"""The outbox's retry delays: exponential with equal jitter, bounded, never zero."""

from __future__ import annotations

import random

import pytest

from bot.workers import RetryPolicy

SEEDS = range(20)
ATTEMPTS = range(0, 31)  # up to max_rate_limited_attempts


class Lowest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


class Highest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def ceiling(policy: RetryPolicy, attempts: int) -> float:
    return min(policy.max_delay, policy.base_delay * 2 ** max(0, attempts - 1))


def test_backoff_is_never_zero_and_never_above_max_delay() -> None:
    for seed in SEEDS:
        policy = RetryPolicy(rng=random.Random(seed))
        for attempts in ATTEMPTS:
            delay = policy.backoff(attempts)
            assert policy.base_delay / 2 <= delay <= policy.max_delay, (seed, attempts, delay)
            assert ceiling(policy, attempts) / 2 <= delay <= ceiling(policy, attempts), (seed, attempts, delay)


@pytest.mark.parametrize(
    ("rng", "attempts", "delay"),
    [
        (Lowest(), 0, 1.0),  # half the base delay at the very least
        (Highest(), 0, 2.0),
        (Lowest(), 1, 1.0),
        (Highest(), 1, 2.0),
        (Lowest(), 2, 2.0),
        (Highest(), 2, 4.0),
        (Lowest(), 8, 128.0),
        (Highest(), 8, 256.0),
        (Lowest(), 9, 150.0),  # capped: 512 s would be past max_delay
        (Highest(), 9, 300.0),
        (Highest(), 30, 300.0),
    ],
)
def test_backoff_bounds(rng: random.Random, attempts: int, delay: float) -> None:
    assert RetryPolicy(rng=rng).backoff(attempts) == delay


def test_backoff_grows_until_the_cap() -> None:
    growing = [n for n in range(1, 30) if ceiling(RetryPolicy(), n + 1) == 2 * ceiling(RetryPolicy(), n)]
    assert growing == list(range(1, 8))
    for seed in SEEDS:
        policy = RetryPolicy(rng=random.Random(seed))
        for n in growing:
            # the next attempt's least delay is this attempt's greatest: whatever the jitter, it never shrinks
            assert policy.backoff(n + 1) >= policy.backoff(n), (seed, n)


def test_backoff_spreads_a_herd() -> None:
    policy = RetryPolicy(rng=random.Random(7))
    assert len({policy.backoff(5) for _ in range(50)}) == 50


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.0, 3.6, 10.0, 60.0])
def test_jitter_adds_at_most_a_second(delay: float) -> None:
    for seed in SEEDS:
        jittered = RetryPolicy(rng=random.Random(seed)).jitter(delay)
        assert delay <= jittered <= delay + min(1.0, delay / 4 + 0.1), (seed, jittered)


@pytest.mark.parametrize(
    ("rng", "delay", "jittered"),
    [
        (Lowest(), 5.0, 5.0),  # what the server asked for, never less
        (Highest(), 0.0, 0.1),
        (Highest(), 2.0, 2.6),  # a quarter of a short delay, plus 0.1
        (Highest(), 3.6, 4.6),  # from here on one second at most
        (Highest(), 60.0, 61.0),
    ],
)
def test_jitter_bounds(rng: random.Random, delay: float, jittered: float) -> None:
    assert RetryPolicy(rng=rng).jitter(delay) == pytest.approx(jittered)
