"""The fault-injection suite: a mixed workload, a shuffled webhook flood and a SIGKILL mid-stream, each with
both fakes failing a seeded 30% of calls (429, 500, an HTML 503, answers after the client's timeout whose
effect happened); then faults off, quiet, and the invariants of tests/fault_support.py (one PagerDuty
incident per key, PagerDuty's status = im's, one Slack root per incident, one reply per step, no 5xx, no
dead letter). Small N here (FAULT_SUITE_INCIDENTS, default 20); bench/faults.py runs the same at N=1,000."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.fault_support import (
    INCIDENTS,
    SEED,
    Figures,
    api_violations,
    killed_mid_stream,
    mixed_workload,
    two_fakes,
    webhook_flood,
)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSlack, FakePagerDuty]]:
    with two_fakes() as both:
        yield both


def _holds(figures: Figures, slack: FakeSlack, pd: FakePagerDuty, *, calls_pagerduty: bool = True) -> None:
    assert figures.faults["slack"] > 0, "the seed makes the run mean something"
    assert figures.faults["pagerduty"] > 0 or not calls_pagerduty
    kinds = {f.kind for f in slack.faults}
    # refusals, and calls carried out whose answer never came back (late, or the connection dropped)
    assert kinds >= {"429", "500", "503"} and kinds & {"late", "drop"}, kinds
    assert figures.broken() == [], figures.report()
    assert api_violations(slack, pd) == []


def test_mixed_workload_from_slack_and_terminal_under_faults(database_url: str, fakes: tuple[FakeSlack, FakePagerDuty]) -> None:
    slack, pd = fakes
    figures = mixed_workload(database_url, slack, pd, INCIDENTS, SEED)
    assert figures.incidents == INCIDENTS
    assert {mode for mode, _, _ in pd.faults} >= {"429", "500", "503-html", "late"}, pd.faults
    _holds(figures, slack, pd)


def test_shuffled_duplicated_webhook_flood_under_faults(database_url: str, fakes: tuple[FakeSlack, FakePagerDuty]) -> None:
    slack, pd = fakes
    figures = webhook_flood(database_url, slack, pd, INCIDENTS, SEED)
    assert figures.incidents == len(pd.incidents) == INCIDENTS
    _holds(figures, slack, pd, calls_pagerduty=False)  # what came from PagerDuty is not written back
    # reads are allowed (who an assignee is: GET /users/{id}); nothing is written back to PagerDuty
    assert [(r.method, r.path) for r in pd.requests if r.method != "GET"] == []


def test_sigkill_mid_stream_under_faults(tmp_path: Path, database_url: str, fakes: tuple[FakeSlack, FakePagerDuty]) -> None:
    slack, pd = fakes
    figures = killed_mid_stream(tmp_path, database_url, slack, pd, INCIDENTS, SEED)
    assert figures.incidents == INCIDENTS
    _holds(figures, slack, pd)
