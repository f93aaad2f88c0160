"""Connector webhooks: the source-network allowlist and the per-connector delivery cap, over real HTTP
into the served app, with deliveries signed the way the fake PagerDuty signs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.connectors.webhook_guard import RateLimiter
from integrations.pagerduty.tables import WebhookDelivery
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.harness import AppHarness, make_settings, reserve_socket, socket_url
from tests.pd_support import SECRET_KEY, Terminal, connector_config, pagerduty_account


@dataclass
class Account:
    """Two connectors with their webhooks enabled in the fake PagerDuty; apps are served on demand."""

    database_url: str
    pd: FakePagerDuty
    terminal: Terminal
    secrets: dict[str, str]  # connector -> PagerDuty's signing secret for its default service
    incident_id: str

    def serve(self, **settings: Any) -> AppHarness:
        return AppHarness(make_settings(self.database_url, None, IM_SECRET_KEY=SECRET_KEY, **settings), None)

    def deliver(self, app: AppHarness, connector: str, event_id: str, **headers: str) -> httpx.Response:
        return self.pd.send_webhook(
            f"{app.url}/connectors/{connector}/webhook",
            "incident.triggered",
            self.incident_id,
            secrets=[self.secrets[connector]],
            event_id=event_id,
            extra_headers=headers,
        )

    def stored(self, app: AppHarness) -> list[str]:
        with app.im.store.read() as session:
            return sorted(d.event_id for d in session.exec(select(WebhookDelivery)))


@pytest.fixture
def account(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Account]:
    pd = pagerduty_account()
    sock = reserve_socket()  # only its URL is used: the subscriptions point there, deliveries are sent by hand
    terminal = Terminal(
        monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url, "IM_SECRET_KEY": SECRET_KEY, "IM_PUBLIC_URL": socket_url(sock)}
    )
    found = {}
    for name in ("prod", "staging"):
        terminal.ok("connector", "add", "pagerduty", name, "--config", json.dumps(connector_config(pd)))
        known = set(pd.webhook_subscriptions)
        terminal.ok("connector", "webhook", name, "--enable")
        found[name] = next(s.secret for k, s in pd.webhook_subscriptions.items() if k not in known and s.filter_id == "PGEN001")
    sock.close()
    remote = pd.trigger_incident(service_id="PGEN001", title="Disk full on db-1")
    try:
        yield Account(sqlite_url, pd, terminal, found, remote.id)
    finally:
        pd.stop()


@pytest.mark.parametrize(
    ("networks", "expected"),
    [("203.0.113.0/24, 2001:db8::/32", 403), ("10.0.0.0/8,127.0.0.0/8", 202), ("127.0.0.1", 202), (None, 202)],
)
def test_the_allowlist_is_checked_on_the_client_address_before_anything_else(
    account: Account, networks: str | None, expected: int
) -> None:
    app = account.serve(**({"IM_WEBHOOK_ALLOWED_NETWORKS": networks} if networks else {}))
    try:
        answer = account.deliver(app, "prod", "EVALLOW")
        assert answer.status_code == expected, answer.text
        if expected == 403:
            assert answer.json() == {"error": "source address not allowed"}
            assert account.stored(app) == []
            # refused before the signature is looked at, or the connector's name
            unsigned = httpx.post(f"{app.url}/connectors/prod/webhook", content=b"{}")
            assert unsigned.status_code == 403
            assert httpx.post(f"{app.url}/connectors/nobody/webhook", content=b"{}").status_code == 403
        else:
            assert account.stored(app) == ["EVALLOW"]
    finally:
        app.stop()


@pytest.mark.parametrize(
    ("trust", "forwarded_for", "expected"),
    [
        (False, "203.0.113.9", 403),  # anyone can write the header: not honoured unless told
        (True, "203.0.113.9", 202),
        (True, "198.51.100.1, 203.0.113.9", 202),  # the last entry is the one our proxy wrote
        (True, "203.0.113.9, 198.51.100.1", 403),  # an earlier one is the client's to make up
    ],
)
def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(
    account: Account, trust: bool, forwarded_for: str, expected: int
) -> None:
    app = account.serve(IM_WEBHOOK_ALLOWED_NETWORKS="203.0.113.0/24", IM_TRUST_FORWARDED_FOR=str(trust).lower())
    try:
        answer = account.deliver(app, "prod", "EVPROXY", **{"X-Forwarded-For": forwarded_for})
        assert answer.status_code == expected, answer.text
        assert account.stored(app) == (["EVPROXY"] if expected == 202 else [])
    finally:
        app.stop()


def test_a_burst_past_the_cap_gets_429_with_retry_after_and_nothing_stored(account: Account) -> None:
    app = account.serve(IM_WEBHOOK_MAX_PER_SECOND="0.5")  # one delivery, then one every two seconds
    try:
        assert account.deliver(app, "prod", "EV1").status_code == 202
        for event_id in ("EV2", "EV3", "EV4"):
            answer = account.deliver(app, "prod", event_id)
            assert answer.status_code == 429, answer.text
            assert answer.json() == {"error": "too many deliveries"}
            assert 1 <= int(answer.headers["Retry-After"]) <= 2
        assert account.deliver(app, "staging", "EV5").status_code == 202  # each connector has its own bucket
        assert account.stored(app) == ["EV1", "EV5"]
    finally:
        app.stop()


def test_the_bucket_refills_at_the_rate() -> None:
    with freeze_time("2026-03-01 12:00:00") as clock:
        limiter = RateLimiter(2.0)
        assert [limiter.admit("prod"), limiter.admit("prod")] == [0.0, 0.0]  # one second's worth
        assert limiter.admit("prod") == pytest.approx(0.5)
        assert limiter.admit("staging") == 0.0
        clock.tick(0.5)
        assert limiter.admit("prod") == 0.0
        assert limiter.admit("prod") == pytest.approx(0.5)
        clock.tick(10)
        assert [limiter.admit("prod"), limiter.admit("prod")] == [0.0, 0.0]  # never more than one second's worth
        assert limiter.admit("prod") > 0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("IM_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8, 300.1.2.0/24", "'300.1.2.0/24' is not a network"),
        ("IM_WEBHOOK_ALLOWED_NETWORKS", "pagerduty", "'pagerduty' is not a network"),
        ("IM_WEBHOOK_MAX_PER_SECOND", "0", "greater than 0"),
        ("IM_WEBHOOK_MAX_PER_SECOND", "lots", "valid number"),
        ("IM_TRUST_FORWARDED_FOR", "perhaps", "valid boolean"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    ran = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url, variable: value})("connector", "list")
    assert ran.code == 2
    assert f"invalid setting {variable}:" in ran.err and message in ran.err
