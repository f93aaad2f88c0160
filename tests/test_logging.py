"""Logs and settings: every bad setting reported at once (no traceback), `IM_LOG_LEVEL` validated, and
`im serve` with JSON logs at DEBUG through a Slack command, a PagerDuty call and a signed webhook: one
JSON object a line, with job, incident, connector and request fields, no APScheduler chatter, and not
one token, key or secret anywhere in its output."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.logging_setup import JsonFormatter, Redactor, TextFormatter, secrets_of
from bot.main import main
from bot.wiring import build
from integrations.pagerduty.plugin import registry_for
from tests.fakes import slack_requests as sr
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, make_settings
from tests.pd_support import PD_KEY, SECRET_KEY, Terminal, connector_config, pagerduty_account
from tests.test_serve import Server, wait_until

METRICS_TOKEN = "metrics-token-for-the-log-test-42"


def test_every_bad_setting_is_reported_at_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IM_LOG_LEVEL", "verbose")
    monkeypatch.setenv("IM_LOG_FORMAT", "xml")
    monkeypatch.setenv("IM_PORT", "0")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "im: invalid settings:"
    assert "  IM_LOG_LEVEL: 'verbose' is not a log level (expected debug, info, warning, error, critical)" in lines
    assert "  IM_LOG_FORMAT: 'xml' is not a log format (expected text or json)" in lines
    assert any(line.startswith("  IM_PORT: ") for line in lines) and len(lines) == 4


def test_one_bad_setting_reads_as_before(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IM_LOG_LEVEL", "loud")
    assert main(["list"]) == 2
    assert capsys.readouterr().err.startswith("im: invalid setting IM_LOG_LEVEL: 'loud' is not a log level")
    monkeypatch.setenv("IM_LOG_LEVEL", "warn")
    monkeypatch.setenv("IM_LOG_FORMAT", "JSON")
    assert main(["list"]) == 0, "level and format names are read case-insensitively"


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    fake = pagerduty_account()
    yield fake
    fake.stop()


def test_json_logs_at_debug_carry_context_and_no_secret(  # type: ignore[no-untyped-def]
    tmp_path: Path, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys
) -> None:
    database = f"sqlite:///{tmp_path / 'im.db'}"
    env = {
        "IM_DATABASE_URL": database,
        "IM_SECRET_KEY": SECRET_KEY,
        "IM_PUBLIC_URL": "http://127.0.0.1:9",
        "IM_SLACK_CHANNEL": "C0INCIDENT",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
    }
    terminal = Terminal(monkeypatch, capsys, env)
    terminal.ok("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd)))
    terminal.ok("connector", "webhook", "prod", "--enable")
    im = build(make_settings(database, IM_SECRET_KEY=SECRET_KEY))
    registry = registry_for(im)
    webhook_secrets = registry.webhook_secrets(registry.get("prod"))
    im.store.dispose()

    server = Server(tmp_path, **env, IM_LOG_FORMAT="json", IM_LOG_LEVEL="debug", IM_METRICS_TOKEN=METRICS_TOKEN)
    try:
        slack = sr.SlackClient(server.url, SIGNING_SECRET)
        assert (
            slack.post(sr.slash_command('declare --sev SEV-2 --title "Card payments failing" --service api')).status_code == 200
        )
        remote = wait_until(lambda: next(iter(pd.incidents.values()), None), 60, "the PagerDuty incident")
        hook = pd.send_webhook(
            f"{server.url}/connectors/prod/webhook", "incident.acknowledged", remote.id, secrets=webhook_secrets
        )
        assert hook.status_code == 202
        assert (
            pd.send_webhook(
                f"{server.url}/connectors/prod/webhook", "incident.acknowledged", remote.id, secrets=["forged"]
            ).status_code
            == 401
        )
        scrape = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scrape.status_code == 200
        assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
        wait_until(lambda: processed(tmp_path / "im.db"), 60, "the webhook applied")
    finally:
        slack.close()
        server.stop()
    output = server.stdout + server.stderr

    for secret in [SIGNING_SECRET, BOT_TOKEN, PD_KEY, SECRET_KEY, METRICS_TOKEN, *webhook_secrets]:
        assert secret not in output, f"a secret ({secret[:4]}...) reached the logs"
    records = [json.loads(line) for line in server.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["level"] == "debug" for r in records), "IM_LOG_LEVEL=debug took effect"
    assert not [r for r in records if r["logger"].startswith("apscheduler")], "APScheduler is quiet"
    pd_calls = [r for r in records if r["message"].startswith("PagerDuty ") and "job" in r]
    assert pd_calls and pd_calls[0]["connector"] == "prod" and pd_calls[0]["incident"] == 1
    assert any(r.get("path") == "/connectors/prod/webhook" and r.get("request") for r in records)
    assert any(r.get("path") == "/slack/events" and r.get("request") for r in records)


def processed(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return bool(conn.execute("select count(*) from webhook_delivery where processed_at is not null").fetchone()[0])


def test_the_formatters_mask_configured_secrets_and_credential_shapes() -> None:
    settings = make_settings(
        "postgresql://im:db-password-77@db:5432/im", SLACK_BOT_TOKEN=BOT_TOKEN, IM_METRICS_TOKEN=METRICS_TOKEN
    )
    redact = Redactor(secrets_of(settings))
    record = logging.LogRecord(
        "lib", logging.DEBUG, __file__, 1, "headers %s", ({"Authorization": f"Token token={PD_KEY}"},), None
    )
    record.incident = 7  # as `extra={"incident": 7}` sets it
    line = json.loads(JsonFormatter(redact).format(record))
    assert PD_KEY not in line["message"] and line["incident"] == 7
    for text in (
        f"bot {BOT_TOKEN} metrics {METRICS_TOKEN}",
        "url postgresql://im:db-password-77@db",
        "Bearer abc.def",
        "xoxp-1-2-3",
    ):
        masked = TextFormatter(redact).format(logging.LogRecord("lib", logging.INFO, __file__, 1, text, None, None))
        assert all(s not in masked for s in (BOT_TOKEN, METRICS_TOKEN, "db-password-77", "abc.def", "xoxp-1")), masked
