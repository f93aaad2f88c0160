"""The pure alert rules (bot/domain/alerts.py) and the two body parsers, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.alerts import (
    AlertAction,
    AlertEvent,
    Burst,
    Group,
    SourceKind,
    SourceRules,
    is_active,
    joinable,
    service_for,
    severity_for,
)
from integrations.alerts import alertmanager, events_v2

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEVERITIES = {"critical": "SEV-1", "error": "SEV-2", "warning": "SEV-3", "info": "SEV-4"}


def test_grouping_joins_an_open_incident_within_the_window_only() -> None:
    group = Group(4, "open", NOW - timedelta(minutes=4))
    assert joinable(group, NOW, 300) == 4
    assert joinable(group, NOW, 120) is None
    assert joinable(Group(4, "mitigated", NOW), NOW, 300) == 4
    assert joinable(Group(4, "resolved", NOW), NOW, 300) is None
    assert joinable(None, NOW, 300) is None


def test_an_alert_repeats_only_while_it_and_its_incident_are_active() -> None:
    assert is_active("triggered", "open") and is_active("acknowledged", "mitigated")
    assert not is_active("resolved", "open") and not is_active("triggered", "closed") and not is_active(None, "open")


def test_severity_and_service() -> None:
    assert [severity_for(s, SEVERITIES) for s in ("critical", "ERROR", "warning", "info", None, "odd")] == [
        "SEV-1", "SEV-2", "SEV-3", "SEV-4", "SEV-2", "SEV-2",
    ]  # fmt: skip
    event = AlertEvent(AlertAction.TRIGGER, "k", "s", component="Checkout API/EU")
    assert service_for(SourceRules("mon", SourceKind.EVENTS_V2), event) == "checkout-api-eu"
    assert service_for(SourceRules("mon", SourceKind.EVENTS_V2, service="db"), event) == "db"
    assert service_for(SourceRules("mon", SourceKind.EVENTS_V2), AlertEvent(AlertAction.TRIGGER, "k")) == "mon"


def test_a_burst_is_one_sentence() -> None:
    assert Burst(joined=2, repeated=1).text(3) == "2 more alerts grouped in; alerts repeated 1 time (3 still firing)"
    assert Burst().text(0) is None


def test_events_v2_reasons_and_class_alias() -> None:
    data, _ = events_v2.routing_key_of(json.dumps({"routing_key": "r", "event_action": "trigger", "payload": {}}).encode())
    with pytest.raises(events_v2.Invalid) as caught:
        events_v2.parse(data)
    assert caught.value.errors == [
        "'payload.summary' is missing or blank",
        "'payload.source' is missing or blank",
        "'payload.severity' is missing (critical, error, warning or info)",
    ]
    body = {
        "routing_key": "r",
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "h", "severity": "info", "class": "disk"},
    }
    event = events_v2.parse(body)
    assert event.details["class"] == "disk" and len(event.dedup_key) == 32
    assert events_v2.parse({"routing_key": "r", "event_action": "resolve", "dedup_key": "k"}).action == AlertAction.RESOLVE
    with pytest.raises(events_v2.Invalid):
        events_v2.routing_key_of(b'"just a string"')


def test_alertmanager_summary_falls_back_to_alertname() -> None:
    body = {
        "version": "4",
        "alerts": [{"status": "resolved", "labels": {"alertname": "Down", "job": "api"}, "fingerprint": "f1"}],
    }
    [event] = alertmanager.parse(json.dumps(body).encode())
    assert (event.action, event.summary, event.component, event.dedup_key) == (AlertAction.RESOLVE, "Down (api)", "api", "f1")
    with pytest.raises(alertmanager.Invalid, match="no summary"):
        alertmanager.parse(json.dumps({"version": "4", "alerts": [{"status": "firing", "fingerprint": "f"}]}).encode())
