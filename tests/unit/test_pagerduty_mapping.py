"""Statuses, urgencies and services between im and PagerDuty, case by case."""

from __future__ import annotations

import pytest

from bot.domain.incidents import TRANSITIONS
from bot.domain.models import Status
from integrations.pagerduty.mapping import (
    FROM_PAGERDUTY_STATUS,
    im_service_for,
    pd_service_for,
    severity_for,
    steps_towards,
    urgency_for,
)


@pytest.mark.parametrize(
    ("severity", "mapping", "urgency"),
    [
        ("SEV-1", None, "high"),
        ("SEV-2", None, "high"),
        ("SEV-3", None, "low"),
        ("SEV-4", None, "low"),
        ("SEV-3", {"SEV-3": "high"}, "high"),  # an override wins
        ("SEV-1", {"SEV-1": "low"}, "low"),
        ("SEV-4", {"SEV-3": "high"}, "low"),  # an override of another severity changes nothing here
        ("SEV-9", None, "high"),  # unknown: page loudly rather than quietly
    ],
)
def test_urgency_for(severity: str, mapping: dict[str, str] | None, urgency: str) -> None:
    assert urgency_for(severity, mapping) == urgency


@pytest.mark.parametrize(
    ("urgency", "mapping", "severity"),
    [
        ("high", None, "SEV-2"),  # the least severe of those that page high: no SEV-1 war room by default
        ("low", None, "SEV-4"),
        (None, None, "SEV-2"),  # no urgency given counts as high
        ("high", {"SEV-2": "low"}, "SEV-1"),
        ("high", {"SEV-3": "high"}, "SEV-3"),
        ("low", {"SEV-4": "high"}, "SEV-3"),
        ("high", {"SEV-1": "low", "SEV-2": "low"}, "SEV-2"),  # nothing maps to high: SEV-2
        ("urgent", None, "SEV-2"),
    ],
)
def test_severity_for(urgency: str | None, mapping: dict[str, str] | None, severity: str) -> None:
    assert severity_for(urgency, mapping) == severity


# (im status, PagerDuty status) -> the verbs that bring im to where PagerDuty is ([]: nothing to do).
# Every PagerDuty status is reachable from every im status: the newest report decides.
STEPS: dict[tuple[str, str], list[str]] = {
    ("open", "triggered"): [],
    ("open", "acknowledged"): ["acknowledge"],
    ("open", "resolved"): ["resolve"],
    ("mitigated", "triggered"): ["unacknowledge"],
    ("mitigated", "acknowledged"): [],
    ("mitigated", "resolved"): ["resolve"],
    ("resolved", "triggered"): ["reopen"],
    ("resolved", "acknowledged"): ["reopen", "acknowledge"],  # triggered again and acknowledged since
    ("resolved", "resolved"): [],
    ("closed", "triggered"): ["reopen"],
    ("closed", "acknowledged"): ["reopen", "acknowledge"],
    ("closed", "resolved"): [],  # closed is resolved in PagerDuty's terms
}


def test_steps_cover_every_pair() -> None:
    assert {im for im, _ in STEPS} == {s.value for s in Status}
    assert {pd for _, pd in STEPS} == set(FROM_PAGERDUTY_STATUS)


@pytest.mark.parametrize(("im_status", "pd_status", "steps"), [(i, p, v) for (i, p), v in STEPS.items()])
def test_steps_towards(im_status: str, pd_status: str, steps: list[str]) -> None:
    assert steps_towards(im_status, pd_status) == steps


@pytest.mark.parametrize(("im_status", "pd_status"), [pair for pair, steps in STEPS.items() if steps])
def test_each_step_is_one_the_lifecycle_allows_and_ends_where_pagerduty_is(im_status: str, pd_status: str) -> None:
    status = Status(im_status)
    for verb in steps_towards(im_status, pd_status):
        rule = TRANSITIONS[verb]
        assert status in rule.allowed_from, (verb, status)
        status = rule.target
    assert status.value == FROM_PAGERDUTY_STATUS[pd_status]


@pytest.mark.parametrize("im_status", [s.value for s in Status])
@pytest.mark.parametrize("pd_status", ["snoozed", "", "RESOLVED"])
def test_unknown_pagerduty_statuses_change_nothing(im_status: str, pd_status: str) -> None:
    assert steps_towards(im_status, pd_status) == []


@pytest.mark.parametrize(
    ("pd_id", "pd_name", "mappings", "service"),
    [
        ("PDAT001", "Database (prod)", {"db": "PDAT001"}, "db"),  # a mapped service keeps its im name
        ("PDAT001", "Database", {"default": "PDAT001"}, "database"),  # the default mapping names nothing
        ("PX00001", "Payments API (prod)", {}, "payments-api-prod"),
        ("PX00001", "  Billing -- EU  ", {}, "billing-eu"),
        ("PX00001", "Caf\u00e9 Orders", {}, "caf\u00e9-orders"),
        ("PX00001", None, {}, "px00001"),
        ("PX00001", "!!!", {}, "px00001"),  # nothing left of the name: its ID
        ("PX00001", "x" * 100, {}, "x" * 64),
        ("PX00001", "a" * 63 + " b", {}, "a" * 63),  # cut at 64 characters, and no dash left dangling
    ],
)
def test_im_service_for(pd_id: str, pd_name: str | None, mappings: dict[str, str], service: str) -> None:
    assert im_service_for(pd_id, pd_name, mappings) == service


@pytest.mark.parametrize(
    ("service", "mappings", "default", "pd_id"),
    [
        ("db", {"db": "PDAT001", "default": "PDEF001"}, "PSVC001", "PDAT001"),
        ("web", {"db": "PDAT001", "default": "PDEF001"}, "PSVC001", "PDEF001"),  # the mapping's default first
        ("web", {"db": "PDAT001"}, "PSVC001", "PSVC001"),  # then the connector's service
        ("web", {}, None, None),
    ],
)
def test_pd_service_for(service: str, mappings: dict[str, str], default: str | None, pd_id: str | None) -> None:
    assert pd_service_for(service, mappings, default) == pd_id
