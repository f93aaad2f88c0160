"""`GET /metrics` over real HTTP: every figure after real traffic (Slack commands, PagerDuty calls and a
429, webhooks accepted / duplicate / forged, an SLA breach, a dead job), the sample alert rules and
dashboard naming only metrics a real scrape has, and the optional bearer token."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.models import OutboxJob
from bot.main import main
from bot.scheduler import Clocks
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings
from tests.pd_support import PagerDutyWorld, pagerduty_account

DOCS = Path(__file__).resolve().parents[1] / "docs"
TOKEN = "metrics-token-0123456789abcdef"


def _dead(app: AppHarness) -> list[OutboxJob]:
    with app.im.store.read() as session:
        return outbox.dead_jobs(session)


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{url}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    fake = pagerduty_account()
    yield fake
    fake.stop()


def test_a_scrape_after_real_traffic_reports_every_figure(  # type: ignore[no-untyped-def]
    database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys
) -> None:
    world = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    try:
        world.enable_webhook()
        app = world.app
        world.terminal.ok("connector", "config", "prod", "--sla-mapping", '{"SEV-2": {"ack": "15m", "resolve": "1h"}}')
        pd.fail_next(429, times=1, headers={"ratelimit-reset": "1"}, path_prefix="/incidents")  # waited out by the client
        fake_slack.fail_next("chat.postMessage", status=500)  # the root post is retried by the outbox
        assert app.command('declare --sev SEV-2 --title "Payments slow" --service api').status_code == 200
        assert app.command('declare --sev SEV-1 --title "Checkout down" --service web').status_code == 200
        deadline = utcnow() + timedelta(seconds=20)
        while len(pd.incidents) < 2 and utcnow() < deadline:
            app.wait_idle(20)
        declared = app.im.incidents.get(1).declared_at
        assert "INC-1 ack SLA breached" in Clocks(world.im).tick(declared + timedelta(minutes=16))
        assert app.command("ack --incident INC-1").status_code == 200
        assert app.command('resolve --incident INC-1 --note "rolled back"').status_code == 200
        app.wait_idle()

        secret = world.registry.webhook_secrets(world.registry.get("prod"))
        url = f"{world.url}/connectors/prod/webhook"
        remote = pd.trigger_incident(service_id="PDAT001", title="Replica lag", urgency="high")
        assert pd.send_webhook(url, "incident.triggered", remote.id, secrets=secret, event_id="EV1").status_code == 202
        assert pd.send_webhook(url, "incident.triggered", remote.id, secrets=secret, event_id="EV1").status_code == 200
        assert pd.send_webhook(url, "incident.triggered", remote.id, secrets=["forged"], event_id="EV2").status_code == 401
        assert (
            pd.send_webhook(f"{world.url}/connectors/nosuch/webhook", "incident.triggered", remote.id, secrets=secret).status_code
            == 404
        )
        app.wait_idle()

        with app.im.store.transaction() as session:  # one job nothing delivers (dead), one waiting an hour (pending)
            outbox.enqueue(session, outbox.JobSpec("nowhere", "test"), None)
            later = outbox.enqueue(session, outbox.JobSpec("slack", "post_root"), None, ordering_key="later")
            later.available_at = utcnow() + timedelta(hours=1)
            later.created_at = utcnow() - timedelta(minutes=3)
        app.im.outbox_ready.set()
        deadline = time.monotonic() + 10
        while not _dead(app) and time.monotonic() < deadline:
            time.sleep(0.02)
        samples = scrape(app.url)
    finally:
        world.stop()

    assert value(samples, "im_database_up") == 1
    assert value(samples, "im_outbox_deliveries_total", destination="slack", outcome="delivered")
    assert value(samples, "im_outbox_deliveries_total", destination="pagerduty:prod", outcome="delivered")
    assert value(samples, "im_outbox_deliveries_total", destination="slack", outcome="retry") == 1
    assert value(samples, "im_outbox_deliveries_total", destination="nowhere", outcome="dead") == 1
    assert value(samples, "im_outbox_jobs", destination="nowhere", status="dead") == 1
    assert value(samples, "im_outbox_jobs", destination="slack", status="pending") == 1
    assert 170 <= (value(samples, "im_outbox_oldest_pending_age_seconds", destination="slack") or 0) < 400
    assert value(samples, "im_webhooks_total", connector="prod", outcome="accepted", status="202") == 1
    assert value(samples, "im_webhooks_total", connector="prod", outcome="duplicate", status="200") == 1
    assert value(samples, "im_webhooks_total", connector="prod", outcome="rejected", status="401") == 1
    assert value(samples, "im_webhooks_total", connector="unknown", outcome="rejected", status="404") == 1, "no label minted"
    assert (value(samples, "im_slack_ack_seconds_count") or 0) >= 4
    assert value(samples, "im_slack_ack_seconds_bucket", le="3.0") == value(samples, "im_slack_ack_seconds_count")
    assert value(samples, "im_incidents_open", severity="SEV-1", status="open") == 1
    assert value(samples, "im_incidents_open", severity="SEV-2", status="open") == 1, "the one PagerDuty opened"
    assert value(samples, "im_incidents_open", severity="SEV-3", status="mitigated") == 0
    # INC-1 (SEV-2: the connector's 15m) and INC-2 (SEV-1: the default IM_SLA_ACK of 5m) were not acked in time
    assert value(samples, "im_sla_breaches_total", kind="ack") == 2
    assert value(samples, "im_sla_breaches_total", kind="resolve") == 0
    assert value(samples, "im_incident_time_to_acknowledge_seconds_gcount", severity="SEV-2") == 1
    assert value(samples, "im_incident_time_to_acknowledge_seconds_bucket", severity="SEV-2", le="60.0") == 1
    assert value(samples, "im_incident_time_to_resolve_seconds_gcount", severity="SEV-2") == 1
    assert value(samples, "im_incident_time_to_resolve_seconds_gcount", severity="SEV-1") == 0
    assert value(samples, "im_pagerduty_rate_limited_last_hour", connector="prod") == 1
    assert value(samples, "im_pagerduty_api_calls_last_hour", connector="prod", status="429") == 1
    assert (value(samples, "im_pagerduty_api_calls_last_hour", connector="prod", status="201") or 0) >= 2
    headroom = value(samples, "im_pagerduty_ratelimit_remaining_ratio", connector="prod")
    assert headroom is not None and 0 <= headroom <= 1
    assert value(samples, "im_pagerduty_ratelimit_remaining", connector="prod") is not None

    # the sample alert rules and dashboard name only metrics this scrape has
    exposed = {name for name, _ in samples}
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in exprs for name in re.findall(r"\b(?:im|process)_[a-z0-9_]+", expr)}
    assert len(named) >= 15
    assert sorted(named - exposed) == []


def test_the_metrics_token_guards_the_endpoint(sqlite_url: str, fake_slack: FakeSlack) -> None:
    app = AppHarness(make_settings(sqlite_url, fake_slack, IM_METRICS_TOKEN=TOKEN), fake_slack)
    try:
        missing = httpx.get(f"{app.url}/metrics")
        assert missing.status_code == 401 and "token missing" in missing.json()["error"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.get(f"{app.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401 and "token wrong" in wrong.json()["error"]
        assert TOKEN not in wrong.text
        assert httpx.get(f"{app.url}/metrics", headers={"Authorization": TOKEN}).status_code == 401
        assert value(scrape(app.url, Authorization=f"Bearer {TOKEN}"), "im_database_up") == 1
        assert httpx.get(f"{app.url}/livez").status_code == 200, "the probes stay open"
    finally:
        app.stop()


def test_a_short_metrics_token_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IM_METRICS_TOKEN", "short")
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "IM_METRICS_TOKEN" in err and "16 characters" in err and "short" not in err.replace("16 characters", "")
