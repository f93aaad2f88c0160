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
    urgency_for,
    verb_towards,
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


# (im status, PagerDuty status) -> the verb that brings im to where PagerDuty is (None: nothing to do)
TOWARDS: dict[tuple[str, str], str | None] = {
    ("open", "triggered"): None,
    ("open", "acknowledged"): "acknowledge",
    ("open", "resolved"): "resolve",
    ("mitigated", "triggered"): "unacknowledge",
    ("mitigated", "acknowledged"): None,
    ("mitigated", "resolved"): "resolve",
    ("resolved", "triggered"): "reopen",
    ("resolved", "acknowledged"): None,  # a resolved incident is not acknowledged back open
    ("resolved", "resolved"): None,
    ("closed", "triggered"): "reopen",
    ("closed", "acknowledged"): None,
    ("closed", "resolved"): None,  # closed is resolved in PagerDuty's terms
}


def test_towards_covers_every_pair() -> None:
    assert {im for im, _ in TOWARDS} == {s.value for s in Status}
    assert {pd for _, pd in TOWARDS} == set(FROM_PAGERDUTY_STATUS)


@pytest.mark.parametrize(("im_status", "pd_status", "verb"), [(i, p, v) for (i, p), v in TOWARDS.items()])
def test_verb_towards(im_status: str, pd_status: str, verb: str | None) -> None:
    assert verb_towards(im_status, pd_status) == verb


@pytest.mark.parametrize(("im_status", "pd_status"), [pair for pair, verb in TOWARDS.items() if verb])
def test_the_verb_is_one_the_lifecycle_allows(im_status: str, pd_status: str) -> None:
    rule = TRANSITIONS[verb_towards(im_status, pd_status) or ""]
    assert Status(im_status) in rule.allowed_from
    assert rule.target.value == FROM_PAGERDUTY_STATUS[pd_status]


@pytest.mark.parametrize("im_status", [s.value for s in Status])
@pytest.mark.parametrize("pd_status", ["snoozed", "", "RESOLVED"])
def test_unknown_pagerduty_statuses_change_nothing(im_status: str, pd_status: str) -> None:
    assert verb_towards(im_status, pd_status) is None


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
