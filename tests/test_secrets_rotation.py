"""Changing IM_SECRET_KEY without losing the stored secrets: IM_SECRET_KEY_PREVIOUS opens what an old
key sealed, `im secrets rotate` re-seals everything under the new key, after which the old key can go.
Through the terminal's entry point and the served app, against the fake PagerDuty over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import pytest
from cryptography.fernet import Fernet
from sqlmodel import col, select

from bot.connectors.models import Connector
from bot.store import Store
from integrations.pagerduty.tables import WebhookDelivery
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings, reserve_socket, socket_url
from tests.pd_support import PD_KEY, Terminal, connector_config

OLD = "the-old-passphrase-retired-today"
NEW = "the-new-passphrase-from-the-vault"


def rows(database_url: str) -> dict[str, Connector]:
    store = Store(database_url)
    try:
        with store.read() as session:
            return {row.name: row for row in session.exec(select(Connector).order_by(col(Connector.name)))}
    finally:
        store.dispose()


def sealed_columns(database_url: str) -> dict[str, tuple[str, str | None]]:
    return {name: (row.api_key, row.webhook_secrets) for name, row in rows(database_url).items()}


def legacy_seal(value: str, passphrase: str) -> str:
    """How secrets were sealed before scrypt (`fernet:`, key = SHA-256 of the passphrase): databases hold them."""
    key = base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest())
    return "fernet:" + Fernet(key).encrypt(value.encode()).decode()


def set_api_key_column(database_url: str, name: str, stored: str) -> None:
    store = Store(database_url)
    try:
        with store.transaction() as session:
            row = session.exec(select(Connector).where(Connector.name == name)).one()
            row.api_key = stored
            session.add(row)
    finally:
        store.dispose()


def test_rotate_moves_every_secret_to_the_new_key_and_the_old_key_can_go(
    database_url: str,
    fake_slack: FakeSlack,
    pd: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sock = reserve_socket()
    url = socket_url(sock)
    base = {"IM_DATABASE_URL": database_url, "IM_PUBLIC_URL": url}
    # served from the start with only the new key: `connector test` checks that im's own webhook URL answers
    app = AppHarness(make_settings(database_url, fake_slack, IM_SECRET_KEY=NEW, IM_PUBLIC_URL=url), fake_slack, sock=sock)
    try:
        _rotate_while_served(database_url, pd, monkeypatch, capsys, caplog, base, url, app)
    finally:
        app.stop()


def _rotate_while_served(  # type: ignore[no-untyped-def]
    database_url: str, pd: FakePagerDuty, monkeypatch, capsys, caplog, base: dict[str, str], url: str, app: AppHarness
) -> None:
    under_old = Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": OLD})
    under_old.ok("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd)))
    under_old.ok("connector", "webhook", "prod", "--enable")
    monkeypatch.setenv("STAGING_PD_KEY", PD_KEY)
    under_old.ok(
        "connector",
        "add",
        "pagerduty",
        "staging",
        "--config",
        json.dumps(connector_config(pd, "outbound") | {"api_key": "env:STAGING_PD_KEY"}),
    )
    under_old.ok("connector", "add", "pagerduty", "legacy", "--config", json.dumps(connector_config(pd, "outbound")))
    set_api_key_column(database_url, "legacy", legacy_seal(PD_KEY, OLD))  # a database from before scrypt
    subscription = next(s for s in pd.webhook_subscriptions.values() if s.filter_id == "PGEN001")
    before = sealed_columns(database_url)
    assert before["prod"][0].startswith("fernet2:") and before["prod"][1] is not None
    assert before["staging"] == ("env:STAGING_PD_KEY", None)
    assert under_old("connector", "test", "legacy").code == 0  # the old format still opens

    # the new key alone opens nothing the old one sealed, and says what to do
    only_new = Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": NEW})
    refused = only_new("connector", "test", "prod")
    assert refused.code != 0 and "IM_SECRET_KEY_PREVIOUS" in refused.out + refused.err

    # with the old key as a previous one, everything opens: a connector test calls PagerDuty with the key
    rotating = Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": NEW, "IM_SECRET_KEY_PREVIOUS": f"some-older-one, {OLD}"})
    assert "Connected to PagerDuty API" in rotating.ok("connector", "test", "prod")
    rotating.ok("connector", "test", "legacy")

    out = rotating.ok("secrets", "rotate")
    assert "Re-sealed 3 secrets of 3 connectors under IM_SECRET_KEY." in out
    assert "1 env: reference left as it is." in out
    after = sealed_columns(database_url)
    assert after["staging"] == before["staging"]
    for name in ("prod", "legacy"):
        assert after[name][0] != before[name][0] and after[name][0].startswith("fernet2:")
    assert after["prod"][1] != before["prod"][1] and str(after["prod"][1]).startswith("fernet2:")
    assert "fernet:" not in json.dumps(after)  # the old format is gone

    # the previous key can go: the new one alone opens everything, the old one alone nothing
    for name in ("prod", "staging", "legacy"):
        only_new.ok("connector", "test", name)
    assert under_old("connector", "test", "prod").code != 0

    # the served app, with only the new key, accepts a delivery signed with PagerDuty's secret
    remote = pd.trigger_incident(service_id="PGEN001", title="Disk full on db-1")
    answer = pd.send_webhook(
        f"{url}/connectors/prod/webhook", "incident.triggered", remote.id, secrets=[subscription.secret], event_id="EVROT1"
    )
    assert answer.status_code == 202, answer.text
    with app.im.store.read() as session:
        assert [d.event_id for d in session.exec(select(WebhookDelivery))] == ["EVROT1"]

    captured = out + caplog.text + json.dumps(after)
    for secret in (PD_KEY, subscription.secret, OLD, NEW):
        assert secret not in captured


def test_rotate_is_all_or_nothing_and_says_why(
    database_url: str, pd: FakePagerDuty, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"IM_DATABASE_URL": database_url}
    Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": NEW}).ok(
        "connector", "add", "pagerduty", "alpha", "--config", json.dumps(connector_config(pd))
    )
    Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": OLD}).ok(
        "connector", "add", "pagerduty", "beta", "--config", json.dumps(connector_config(pd))
    )
    before = sealed_columns(database_url)

    no_key = Terminal(monkeypatch, capsys, base)("secrets", "rotate")
    assert no_key.code == 2 and "IM_SECRET_KEY is not set" in no_key.err

    # alpha opens and comes first; beta opens under no key given: alpha must not be rewritten either
    stuck = Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": NEW, "IM_SECRET_KEY_PREVIOUS": "not-the-old-one"})(
        "secrets", "rotate"
    )
    assert stuck.code == 2
    assert (
        "connector beta, api_key:" in stuck.err and "IM_SECRET_KEY_PREVIOUS" in stuck.err and "Nothing was changed" in stuck.err
    )
    assert stuck.out == ""
    assert sealed_columns(database_url) == before
    for secret in (PD_KEY, OLD, NEW):
        assert secret not in stuck.err + no_key.err

    fixed = Terminal(monkeypatch, capsys, base | {"IM_SECRET_KEY": NEW, "IM_SECRET_KEY_PREVIOUS": OLD}).ok("secrets", "rotate")
    assert "Re-sealed 2 secrets of 2 connectors" in fixed and "IM_SECRET_KEY_PREVIOUS can be removed" in fixed
    assert all(after != before[name] for name, after in sealed_columns(database_url).items())


def test_rotate_runs_only_from_a_terminal(app: AppHarness) -> None:
    answer = app.command("secrets rotate").json()
    assert "only runs from a terminal" in answer["text"]


def test_an_empty_database_has_nothing_to_rotate(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url, "IM_SECRET_KEY": NEW}).ok("secrets", "rotate")
    assert "Re-sealed 0 secrets of 0 connectors" in out
