"""The connector as the seed's setup order runs it (add, test, then webhook), a webhook made by hand in
PagerDuty's UI, `connector config` for every field, honest health figures, and two connectors that each
page only for their own services. Terminal through its entry point, fake PagerDuty over HTTP."""

from __future__ import annotations

import io
import json
import re
import secrets as pysecrets

import pytest
from sqlmodel import select

from bot.connectors.models import Connector
from bot.domain.models import JobStatus, OutboxJob
from tests.fakes.pagerduty_api import FakePagerDuty, FakeSubscription
from tests.fakes.slack_api import FakeSlack
from tests.pd_support import PD_KEY, PagerDutyWorld

DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing answers there


@pytest.fixture
def fresh(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    """The served app with a bidirectional connector "prod", its webhook not set up yet."""
    world = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    yield world
    world.stop()


def _stored(world: PagerDutyWorld) -> Connector:
    with world.im.store.read() as session:
        return session.exec(select(Connector).where(Connector.name == "prod")).one()


def _hand_made_subscription(world: PagerDutyWorld) -> FakeSubscription:
    """What a person makes in PagerDuty's UI (Integrations, Generic Webhooks v3): im never saw its secret."""
    sub = FakeSubscription(
        id="PWHHAND",
        url=f"{world.url}/connectors/prod/webhook",
        secret=pysecrets.token_urlsafe(48),
        filter_type="account_reference",
        filter_id=None,
        events=["incident.triggered", "incident.acknowledged", "incident.resolved"],
    )
    world.pd.webhook_subscriptions[sub.id] = sub
    return sub


def test_test_before_the_webhook_warns_and_checks_our_own_endpoint(fresh: PagerDutyWorld) -> None:
    im = fresh.terminal
    ran = im("connector", "test", "prod")
    assert ran.code == 0, ran
    assert f"✓ Webhook endpoint reachable ({fresh.url}/connectors/prod/webhook)" in ran.out
    assert "⚠ Webhook not set up yet: im connector webhook prod --enable" in ran.out
    checks = json.loads(im.ok("connector", "test", "prod", "--json"))["data"]["checks"]
    assert {c["state"] for c in checks} == {"ok", "warn"}
    im.env["IM_PUBLIC_URL"] = DEAD_URL
    ran = im("connector", "test", "prod")
    assert ran.code == 0 and "⚠ Webhook endpoint not reachable: http://127.0.0.1:9/healthz" in ran.out, ran
    im.env["IM_PUBLIC_URL"] = fresh.url
    fresh.enable_webhook()
    out = im.ok("connector", "test", "prod")
    assert "✓ Webhook endpoint configured" in out and "⚠" not in out
    im.env["IM_PUBLIC_URL"] = DEAD_URL
    ran = im("connector", "test", "prod")
    assert ran.code == 1 and "✗ Webhook endpoint not reachable" in ran.out, "deliveries are expected now: broken"


def test_secret_of_a_hand_made_subscription(fresh: PagerDutyWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = _hand_made_subscription(fresh)
    incident = fresh.pd.trigger_incident(service_id="PDAT001", title="Disk full")
    [refused] = fresh.pd.notify_subscriptions("incident.triggered", incident.id)
    assert refused.status_code == 401
    for given, message in {
        "\n": "no secret given",
        "short\n": "not a webhook signing secret",
        "has a space in it somewhere\n": "not a webhook signing secret",
    }.items():
        monkeypatch.setattr("sys.stdin", io.StringIO(given))
        ran = fresh.terminal("connector", "webhook", "prod", "--secret")
        assert ran.code == 2 and message in ran.err, (given, ran)
    assert _stored(fresh).webhook_secrets is None, "nothing stored on bad input"
    monkeypatch.setattr("sys.stdin", io.StringIO(sub.secret + "\n"))
    out = fresh.terminal.ok("connector", "webhook", "prod", "--secret")
    assert "signing secret stored •••••••• (encrypted) (1 kept)" in out and sub.secret not in out
    assert f"Webhook URL to give PagerDuty: {fresh.url}/connectors/prod/webhook" in out
    row = _stored(fresh)
    assert row.webhook_enabled and row.webhook_secrets and sub.secret not in row.webhook_secrets
    status = fresh.terminal.ok("connector", "status", "prod")
    assert "Webhook: Enabled (signing secrets: •••••••• (encrypted))" in status and sub.secret not in status
    [accepted] = fresh.pd.notify_subscriptions("incident.triggered", incident.id)
    assert accepted.status_code < 300, accepted.text
    monkeypatch.setattr("sys.stdin", io.StringIO(sub.secret + "\n"))
    ran = fresh.terminal("connector", "webhook", "prod", "--secret")
    assert ran.code == 2 and "stored already" in ran.err
    ran = fresh.terminal("connector", "webhook", "prod", "--secret", "--test")
    assert ran.code == 2 and "exactly one of --enable, --disable, --test, --secret" in ran.err


def test_config_changes_every_field_and_keeps_the_webhook_secrets(fresh: PagerDutyWorld) -> None:
    im = fresh.terminal
    fresh.enable_webhook()
    before = _stored(fresh)
    im.ok(
        "connector",
        "config",
        "prod",
        "--urgency-mapping",
        '{"SEV-3": "high"}',
        "--auto-resolve",
        "false",
        "--sync-notes",
        "no",
        "--custom-field-mappings",
        '{"environment": "custom_details.environment"}',
        "--base-url",
        fresh.pd.base_url + "/",
        "--request-timeout",
        "20s",
        "--enable-webhook",
        "true",
        "--debug",
        "true",
        "--log-requests",
        "on",
        "--log-responses",
        "true",
        "--service-mappings",
        '{"api": "PAPI001", "default": "PGEN001"}',
        "--escalation-mappings",
        '{"api": "PESCAPI"}',
    )
    im.ok("connector", "config", "prod", "--config", '{"custom": {"from_email": "alice@example.com"}, "sync_interval": "2m"}')
    row = _stored(fresh)
    custom = row.config["custom"]
    assert custom["urgency_mapping"] == {"SEV-3": "high"} and custom["auto_resolve"] is False and custom["sync_notes"] is False
    assert custom["service_mappings"] == {"api": "PAPI001", "default": "PGEN001"} and custom["from_email"] == "alice@example.com"
    assert custom["escalation_policy_id"] == "PESC001", "--config merges: fields it leaves out stay"
    assert row.config["custom_field_mappings"] == {"environment": "custom_details.environment"}
    assert row.config["debug"] and row.config["log_requests"] and row.config["log_responses"]
    assert row.config["request_timeout"] == 20 and row.config["sync_interval"] == 120
    assert row.webhook_secrets == before.webhook_secrets and row.webhook_subscription_id == before.webhook_subscription_id
    assert row.api_key == before.api_key
    for argv, message in {
        ("--auto-resolve", "maybe"): "'maybe' is not true or false",
        ("--urgency-mapping", '{"SEV-1": "urgent"}'): "custom.urgency_mapping.SEV-1:",
        ("--urgency-mapping", "{oops"): "--urgency-mapping: not valid JSON",
        ("--config", '{"api_key": "another"}'): "api_key: changed with im connector update",
        ("--config", "[1]"): "--config must be a JSON object",
        ("--config", '{"custom": {"colour": "red"}}'): "custom.colour: unknown field",
        ("--base-url", "ftp://example.com"): "base_url: expected an http(s) URL",
        ("--sync-direction", "both"): "invalid choice: 'both'",
    }.items():
        ran = im("connector", "config", "prod", *argv)
        assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err, (argv, ran)
    assert _stored(fresh).config == row.config, "refused changes change nothing"
    incident = fresh.pd.trigger_incident(service_id="PAPI001", title="API slow")
    assert all(r.status_code < 300 for r in fresh.pd.notify_subscriptions("incident.triggered", incident.id))


def test_health_reports_what_was_seen_and_every_failed_call(fresh: PagerDutyWorld) -> None:
    im = fresh.terminal
    fresh.enable_webhook()
    health = im("connector", "health", "prod").out
    assert "Webhook: ⚠ Subscribed, no event received yet" in health
    assert "Error Rate: 0% (0 errors in 24h)" in health
    incident = fresh.pd.trigger_incident(service_id="PDAT001", title="Disk full")
    fresh.pd.notify_subscriptions("incident.triggered", incident.id)
    fresh.app.wait_idle()
    # seconds pass between the delivery and the check on a loaded machine: the age is whatever it is
    seen = im("connector", "health", "prod").out
    assert re.search(r"Webhook: ✓ Receiving events \(last: \d+s ago, 1 in 24h\)", seen), seen
    assert " 0 errors (" in im.ok("connector", "sync", "prod")
    synced = im.ok("connector", "status", "prod")
    last = next(line for line in synced.splitlines() if line.startswith("Last Sync: "))
    assert last != "Last Sync: never"
    im.ok("connector", "update", "prod", "--api-key", "wrong-key")
    assert im("connector", "test", "prod").code == 1
    ran = im("connector", "sync", "prod")
    assert ran.code == 1
    status = im("connector", "status", "prod").out
    assert last in status, "a failed sync leaves Last Sync at the last one that worked"
    assert "Sync Errors: 1 (last: PagerDuty rejected the API key" in status
    health = im("connector", "health", "prod")
    rate = next(line for line in health.out.splitlines() if line.startswith("Error Rate: "))
    failed = int(rate.split("(")[1].split()[0])
    assert failed >= 3, "test's, sync's and health's own refused calls all count"
    assert health.code == 1 and "Health: Unhealthy (prod)" in health.out


def test_each_connector_pages_only_for_the_services_it_covers(
    database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    world = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys, direction="outbound", service_id=None)
    try:
        dev = {
            "base_url": pd.base_url,
            "api_key": PD_KEY,
            "sync_direction": "outbound",
            "custom": {"from_email": "ops@example.com", "service_mappings": {"checkout-dev": "PGEN001"}},
        }
        world.terminal.ok("connector", "add", "pagerduty", "dev", "--config", json.dumps(dev))
        for text in (
            'declare --sev 2 --title "API errors" -s api',
            'declare --sev 2 --title "Dev checkout broken" -s checkout-dev',
            'declare --sev 1 --title "Both" -s api,checkout-dev',
            'declare --sev 3 --title "Nobody pages" -s wiki',
        ):
            assert "declared" in world.app.command(text).json()["text"]
        world.app.wait_idle()
        paged = sorted((link.incident_id, link.connector, link.pd_service_id) for link in world.links())
        assert paged == [(1, "prod", "PAPI001"), (2, "dev", "PGEN001"), (3, "dev", "PGEN001"), (3, "prod", "PAPI001")]
        assert len(pd.incidents) == 4
        world.app.command('ack --incident INC-1 --note "rolling back"')
        world.app.wait_idle()
        with world.im.store.read() as session:
            jobs = list(session.exec(select(OutboxJob).where(OutboxJob.destination != "slack")))
        assert {(j.incident_id, j.destination) for j in jobs} == {
            (1, "pagerduty:prod"),
            (2, "pagerduty:dev"),
            (3, "pagerduty:dev"),
            (3, "pagerduty:prod"),
        }, "no job at all for a connector that does not cover the incident"
        assert not [j for j in jobs if j.status == JobStatus.DEAD]
        assert {i.status for i in pd.incidents.values() if i.service_id == "PAPI001" and i.title == "API errors"} == {
            "acknowledged"
        }
    finally:
        world.stop()
