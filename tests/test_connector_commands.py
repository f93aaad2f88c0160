"""`im connector ...` and `im metrics connector` as a user runs them in a terminal (and the three that
Slack answers too), against the fake PagerDuty over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from sqlmodel import select

from bot.connectors.models import Connector
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.pd_support import PD_KEY, SECRET_KEY, PagerDutyWorld, Terminal, connector_config, pagerduty_account


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    fake = pagerduty_account()
    yield fake
    fake.stop()


@pytest.fixture
def terminal(sqlite_url: str, monkeypatch, capsys) -> Terminal:  # type: ignore[no-untyped-def]
    return Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url, "IM_SECRET_KEY": SECRET_KEY})


def stored(terminal: Terminal) -> list[Connector]:
    from bot.store import Store

    store = Store(terminal.env["IM_DATABASE_URL"])
    try:
        with store.read() as session:
            return list(session.exec(select(Connector)))
    finally:
        store.dispose()


def test_add_keeps_the_key_sealed_and_never_shows_it(
    terminal: Terminal, pd: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = terminal.ok("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd)))
    assert "Connector prod (pagerduty) added: bidirectional, every 1m" in out
    [row] = stored(terminal)
    assert PD_KEY not in row.api_key and row.api_key.startswith("fernet2:")
    assert PD_KEY not in json.dumps(row.config)
    outputs = [
        terminal(*argv).out
        for argv in (
            ("connector", "status", "prod"),
            ("connector", "list"),
            ("connector", "test", "prod"),
            ("connector", "health", "prod"),
            ("metrics", "connector", "prod"),
            ("connector", "list-mappings", "prod"),
        )
    ]
    for text in [out, *outputs, caplog.text]:
        assert PD_KEY not in text
    assert "API Key: •••••••• (encrypted)" in outputs[0]


def test_add_refuses_bad_input_and_stores_nothing(terminal: Terminal, pd: FakePagerDuty) -> None:
    good = connector_config(pd)
    cases = {
        "{not json": "--config: not valid JSON",
        json.dumps({**good, "sync_direction": "both"}): "sync_direction:",
        json.dumps({**good, "sync_interval": "soon"}): "sync_interval: expected a duration",
        json.dumps({**good, "custom": {"service_id": "db"}}): "custom.service_id: expected a PagerDuty ID",
        json.dumps({**good, "custom": {"from_email": "ops"}}): "custom.from_email: expected an email",
        json.dumps(
            {**good, "custom": {"urgency_mapping": {"SEV-9": "high"}}}
        ): "custom.urgency_mapping: 'SEV-9' is not a severity",
        json.dumps({**good, "custum": {}}): "custum: unknown field",
        json.dumps({k: v for k, v in good.items() if k != "api_key"}): "api_key: required",
    }
    for config, message in cases.items():
        ran = terminal("connector", "add", "pagerduty", "prod", "--config", config)
        assert ran.code == 2 and message in ran.err, (config, ran)
        assert "Traceback" not in ran.err and ran.out == ""
    ran = terminal("connector", "add", "opsgenie", "prod", "--config", json.dumps(good))
    assert ran.code == 2 and "unknown connector type 'opsgenie'" in ran.err
    ran = terminal("connector", "add", "pagerduty", "Prod!", "--config", json.dumps(good))
    assert ran.code == 2 and "is not a connector name" in ran.err
    assert stored(terminal) == []


def test_plain_key_needs_a_secret_key_but_an_env_reference_does_not(
    sqlite_url: str, pd: FakePagerDuty, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    bare = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url})
    ran = bare("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd)))
    assert ran.code == 2 and "IM_SECRET_KEY is not set" in ran.err and "env:VAR_NAME" in ran.err
    assert stored(bare) == []
    bare.env["PD_PROD_KEY"] = PD_KEY
    bare.ok(
        "connector", "add", "pagerduty", "prod", "--config", json.dumps({**connector_config(pd), "api_key": "env:PD_PROD_KEY"})
    )
    assert stored(bare)[0].api_key == "env:PD_PROD_KEY"
    assert "from $PD_PROD_KEY" in bare.ok("connector", "status", "prod")
    assert "✓ Connected to PagerDuty API" in bare("connector", "test", "prod").out


def test_connector_test_names_what_is_wrong(terminal: Terminal, pd: FakePagerDuty) -> None:
    terminal.ok("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd, direction="outbound")))
    lines = terminal.ok("connector", "test", "prod").splitlines()
    assert lines[0].startswith("✓ Connected to PagerDuty API (")
    assert "✓ Service PGEN001 accessible (General Service)" in lines
    assert "✓ User ops@example.com valid" in lines and "✓ Escalation policy PESC001 found" in lines
    terminal.ok("connector", "map-service", "prod", "--im-service", "web", "--pd-service", "PNOPE01")
    terminal.ok("connector", "config", "prod", "--from-email", "nobody@example.com")
    ran = terminal("connector", "test", "prod")
    assert ran.code == 1
    assert "✗ Service PNOPE01: PagerDuty service PNOPE01 not found" in ran.out
    assert "✗ User nobody@example.com: not a PagerDuty user" in ran.out
    terminal.ok("connector", "update", "prod", "--api-key", "wrong-key")
    ran = terminal("connector", "test", "prod")
    assert ran.code == 1 and "✗ Connected to PagerDuty API: PagerDuty rejected the API key" in ran.out


def test_mappings_config_and_remove(terminal: Terminal, pd: FakePagerDuty) -> None:
    terminal.ok("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd)))
    terminal.ok("connector", "map-service", "prod", "--im-service", "Payments", "--pd-service", "PAPI001")
    table = terminal.ok("connector", "list-mappings", "prod")
    assert table.splitlines()[0].split() == ["IM", "Service", "PagerDuty", "Service", "Service", "Name"]
    assert any(line.split()[:2] == ["payments", "PAPI001"] and "API Service" in line for line in table.splitlines())
    assert table.splitlines()[-1].split()[:2] == ["default", "PGEN001"]
    terminal.ok("connector", "map-escalation", "prod", "--service", "api", "--escalation-policy", "PESCAPI")
    assert "api         PESCAPI" in terminal.ok("connector", "list-escalations", "prod")
    terminal.ok(
        "connector",
        "config",
        "prod",
        "--sync-interval",
        "2m",
        "--sync-direction",
        "inbound",
        "--sla-mapping",
        '{"SEV-1": {"ack": "15m", "resolve": "1h"}}',
    )
    assert "Direction: Inbound (every 2m)" in terminal.ok("connector", "status", "prod")
    for argv, message in {
        ("connector", "config", "prod", "--sync-interval", "5s"): "at least 30s",
        ("connector", "config", "prod", "--sla-mapping", '{"SEV-1": {"ack": "soon"}}'): "expected a duration",
        ("connector", "config", "prod"): "nothing to change",
        ("connector", "map-service", "prod", "--im-service", "db", "--pd-service", "nope"): "expected a PagerDuty ID",
        ("connector", "status", "staging"): "no connector named 'staging'",
    }.items():
        ran = terminal(*argv)
        assert ran.code == 2 and message in ran.err, (argv, ran)
    assert "Direction: Inbound (every 2m)" in terminal.ok("connector", "status", "prod"), "a refused change changes nothing"
    terminal.ok("connector", "remove", "prod")
    assert stored(terminal) == [] and terminal.ok("connector", "list").strip() == "(none)"


def test_webhook_enable_test_disable(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    world = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    try:
        out = world.terminal.ok("connector", "webhook", "prod", "--enable")
        assert f"Webhook URL: {world.url}/connectors/prod/webhook" in out
        subs = list(pd.webhook_subscriptions.values())
        assert {(s.filter_type, s.filter_id) for s in subs} == {
            ("service_reference", s) for s in ("PGEN001", "PDAT001", "PAPI001")
        }
        assert all(s.url == f"{world.url}/connectors/prod/webhook" for s in subs)
        assert "incident.acknowledged" in subs[0].events
        assert "✓ ping arrived" in world.terminal.ok("connector", "webhook", "prod", "--test")
        assert "Webhook: Enabled" in world.terminal.ok("connector", "status", "prod")
        world.terminal.ok("connector", "webhook", "prod", "--disable")
        assert not [s for s in pd.webhook_subscriptions.values() if s.active]
        answer = pd.send_webhook(
            f"{world.url}/connectors/prod/webhook",
            "incident.triggered",
            pd.trigger_incident(service_id="PDAT001", title="x").id,
            secrets=[subs[0].secret],
        )
        assert answer.status_code == 401, "secrets are dropped with the subscription"
        ran = world.terminal("connector", "webhook", "prod")
        assert ran.code == 2 and "exactly one of --enable, --disable, --test" in ran.err
    finally:
        world.stop()


def test_status_health_and_metrics_in_slack_and_terminal(
    database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    world = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    try:
        world.enable_webhook()
        world.app.command('declare --sev SEV-2 --title "Login errors" --service api')
        world.app.wait_idle()
        metrics = world.terminal.ok("metrics", "connector", "prod").splitlines()
        assert metrics[0] == "Connector: prod" and metrics[1] == "Total Incidents: 1"
        assert metrics[2] == "Sync Success Rate: 100%"
        assert metrics[4].startswith("API Calls (24h): ") and int(metrics[4].split(": ")[1].replace(",", "")) >= 2
        assert metrics[5].startswith("Rate Limit Usage: ") and metrics[6] == "Webhook Events (24h): 0"
        health = world.terminal("connector", "health", "prod")
        assert "API Connectivity: ✓ Connected" in health.out and "Authentication: ✓ Valid API key" in health.out
        for text in ("connector list", "connector status prod", "connector health prod"):
            body = world.app.command(text).json()
            assert body["response_type"] == "ephemeral" and "prod" in body["text"], (text, body)
        for text in ("connector sync prod", "connector remove prod", "connector update prod --api-key x"):
            body = world.app.command(text).json()
            assert "only runs from a terminal" in body["text"], (text, body)
    finally:
        world.stop()
