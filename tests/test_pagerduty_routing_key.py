"""A PagerDuty connector with a routing key (Events API v2 integration key) and no REST API key: declare,
acknowledge and resolve reach PagerDuty as events (checked by the fake against PagerDuty's Events API
description), what events cannot carry is skipped with its reason, retries page once, `connector
test`/`health`/`status` say what such a connector can and cannot do, and a bad key is refused."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, select

from bot.connectors import secrets
from bot.connectors.models import Connector
from bot.domain.models import Incident, JobStatus, OutboxJob
from integrations.pagerduty.api.errors import RequestRejectedError
from integrations.pagerduty.api.events import EventsClient
from integrations.pagerduty.outbound import incident_key
from integrations.pagerduty.tables import PagerDutyLink, SyncRun
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, AppHarness, make_settings
from tests.pd_support import SECRET_KEY, Ran, Terminal, connector_config

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
OTHER_KEY = "737ea619db564d41bd9824063e1f8a01"


class KeyTerminal(Terminal):
    """`im ...` with one line on standard input (how a routing key is given when not on a terminal)."""

    def typed(self, line: str, *argv: str) -> Ran:
        with self.monkeypatch.context() as m:
            m.setattr("sys.stdin", io.StringIO(line + "\n"))
            return self(*argv)


class RoutingKeyWorld:
    def __init__(self, database_url: str, slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
        pd.events.add_routing_key(ROUTING_KEY, "PGEN001")
        self.pd = pd
        settings = dict(IM_SECRET_KEY=SECRET_KEY, IM_SLACK_CHANNEL="C0INCIDENT")
        self.app = AppHarness(make_settings(database_url, slack, **settings), slack)
        self.im = self.app.im
        env = {
            "IM_DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            **settings,
        }
        self.terminal = KeyTerminal(monkeypatch, capsys, env)

    def add(self, config: dict[str, Any] | None = None, key: str = ROUTING_KEY) -> Ran:
        config = {"events_url": self.pd.base_url, **(config or {})}
        return self.terminal.typed(key, "connector", "add", "pagerduty", "prod", "--routing-key", "--config", json.dumps(config))

    def connector(self) -> Connector | None:
        with self.im.store.read() as session:
            return session.exec(select(Connector)).first()

    def skipped(self) -> list[str]:
        with self.im.store.read() as session:
            runs = session.exec(select(SyncRun).where(col(SyncRun.error).startswith("skipped:")))
            return [f"{r.kind}: {r.error}" for r in runs]

    def stop(self) -> None:
        self.app.stop()


@pytest.fixture
def rk(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> Iterator[RoutingKeyWorld]:  # type: ignore[no-untyped-def]
    world = RoutingKeyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    yield world
    world.stop()


def _pd_clean(pd: FakePagerDuty) -> None:
    assert pd.violations == [] and pd.response_violations == [], (pd.violations, pd.response_violations)


def test_terminal_declare_ack_resolve_go_out_as_events(rk: RoutingKeyWorld) -> None:
    out = rk.add().out
    assert "Routing key: •••••••• (encrypted)" in out and "API key: (none)" in out and ROUTING_KEY not in out
    stored = rk.connector()
    assert stored is not None and stored.api_key is None and stored.routing_key and stored.routing_key.startswith("fernet2:")
    assert ROUTING_KEY not in json.dumps(stored.config)

    rk.terminal.ok(
        "declare", "--sev", "SEV-1", "--title", "Payments down", "--service", "db", "--field", "environment=production"
    )
    rk.app.wait_idle()
    key = "im:prod:INC-1:db"
    assert key == incident_key("prod", 1, "db"), "the REST path's incident_key: a REST key added later recognises it"
    [trigger] = rk.pd.events.accepted("triggered")
    assert trigger["dedup_key"] == key and trigger["routing_key"] == ROUTING_KEY
    payload = trigger["payload"]
    assert (payload["severity"], payload["source"], payload["component"], payload["summary"]) == (
        "critical",
        "im",
        "db",
        "Payments down",
    )
    assert payload["custom_details"]["environment"] == "production" and payload["custom_details"]["incident"] == "INC-1"
    [incident] = rk.pd.incidents.values()
    assert (incident.incident_key, incident.status, incident.urgency) == (key, "triggered", "high")
    links = rk.pd.events.links[incident.id]
    assert [link["text"] for link in links] == ["Slack thread of INC-1"] and links[0]["href"].startswith("http")

    rk.terminal.ok("note", "--incident", "INC-1", "looking at the primary")
    rk.terminal.ok("severity", "--incident", "INC-1", "--sev", "SEV-3")
    rk.terminal.ok("ack", "--incident", "INC-1")
    rk.app.wait_idle()
    assert incident.status == "acknowledged"
    rk.terminal.ok("resolve", "--incident", "INC-1", "--note", "failed over")
    rk.app.wait_idle()
    assert incident.status == "resolved" and len(rk.pd.incidents) == 1
    assert [e["event_action"] for e in rk.pd.events.accepted() if e["event_action"] != "trigger"] == ["acknowledge", "resolve"]
    skipped = rk.skipped()
    assert any(s.startswith("note: skipped: Events API v2 has no notes") for s in skipped), skipped
    assert any(s.startswith("urgency: skipped:") for s in skipped), skipped
    timeline = rk.terminal.ok("timeline", "--incident", "INC-1")
    assert f"Sent to PagerDuty by routing key for db (Events API v2, dedup key {key})" in timeline
    with rk.im.store.read() as session:
        assert session.exec(select(OutboxJob).where(OutboxJob.status == JobStatus.DEAD)).all() == []
    status = rk.terminal.ok("connector", "status", "prod")
    assert "Mode: Events API v2 by routing key" in status and "Routing Key: •••••••• (encrypted)" in status
    _pd_clean(rk.pd)


def test_signed_slack_declare_with_a_mapped_severity(rk: RoutingKeyWorld) -> None:
    rk.add({"custom": {"severity_mapping": {"SEV-3": "error"}}})
    answer = rk.app.command('declare --sev SEV-3 --title "Search slow" -s search --field customer_impact=high').json()
    assert "INC-1 declared" in answer["text"]
    rk.app.wait_idle()
    triggers = rk.pd.events.accepted("triggered")
    assert [t["payload"]["severity"] for t in triggers] == ["error"]
    assert triggers[0]["dedup_key"] == "im:prod:INC-1:search"
    assert triggers[0]["payload"]["custom_details"]["customer_impact"] == "high"
    sent_links = [link for body in rk.pd.events.accepted() for link in body.get("links", [])]
    assert any(link["text"] == "Slack thread of INC-1" for link in sent_links), "the thread, at once or in a second trigger"
    answer = rk.app.command("resolve --incident INC-1 --note fixed").json()
    assert "INC-1" in answer["text"] and "esolved" in answer["text"], answer
    rk.app.wait_idle()
    [incident] = rk.pd.incidents.values()
    assert incident.status == "resolved"
    _pd_clean(rk.pd)


def test_no_pagerduty_link_is_made_up_for_an_event(rk: RoutingKeyWorld, fake_slack: FakeSlack) -> None:
    """Events API v2 answers with the dedup key only: no PagerDuty incident id, number or URL is known, so
    the root message, `im status` (text and JSON) and reports show no PagerDuty link, and the timeline and
    the thread say what was sent, by routing key, under which dedup key."""
    rk.add()
    rk.terminal.ok("declare", "--sev", "SEV-1", "--title", "Payments down", "--service", "db")
    rk.app.wait_idle()
    key = "im:prod:INC-1:db"
    assert len(rk.pd.incidents) == 1, "PagerDuty was paged"
    with rk.im.store.read() as session:
        assert session.exec(select(PagerDutyLink)).all() == [], "no link row pretends to know PagerDuty's incident"

    [root] = fake_slack.messages("C0INCIDENT")
    shown = json.dumps(root.blocks) + root.text
    assert "PagerDuty" not in shown, shown
    replies = [r.text for r in fake_slack.replies("C0INCIDENT", root.ts)]
    sent = [r for r in replies if "Sent to PagerDuty" in r]
    assert sent == [
        f":pager: Sent to PagerDuty by routing key for db (Events API v2, dedup key {key}); "
        "PagerDuty does not say which incident it opened, so there is no PagerDuty link"
    ], replies
    assert not any(r.startswith(":link:") for r in replies), replies

    status = rk.terminal.ok("status", "--incident", "INC-1")
    assert "PagerDuty" not in status, status
    view = json.loads(rk.terminal.ok("status", "--incident", "INC-1", "--json"))["incident"]
    assert [link["system"] for link in view["links"]] == ["slack"], view["links"]
    report = json.loads(rk.terminal.ok("report", "--since", "1d", "--format", "json", "--include-pagerduty"))
    [row] = report["incidents"]
    assert [link["system"] for link in row["links"]] == ["slack"], row["links"]
    assert all(not section["incidents"] for section in report["external"]), report["external"]
    text = rk.terminal.ok("report", "--since", "1d", "--include-pagerduty")
    assert "PagerDuty #" not in text and "no incident in this report is linked to a PagerDuty incident" in text
    timeline = rk.terminal.ok("timeline", "--incident", "INC-1")
    assert f"Sent to PagerDuty by routing key for db (Events API v2, dedup key {key})" in timeline

    rk.terminal.ok("resolve", "--incident", "INC-1", "--note", "fixed")
    rk.terminal.ok("reopen", "--incident", "INC-1", "--note", "back again")
    rk.app.wait_idle()
    timeline = rk.terminal.ok("timeline", "--incident", "INC-1")
    assert f"Sent to PagerDuty again by routing key for db (Events API v2, dedup key {key})" in timeline, timeline
    with rk.im.store.read() as session:
        assert session.exec(select(PagerDutyLink)).all() == []
    assert "PagerDuty" not in json.dumps(fake_slack.messages("C0INCIDENT")[0].blocks)
    _pd_clean(rk.pd)


def test_throttled_then_failing_events_page_once(rk: RoutingKeyWorld) -> None:
    rk.add()
    rk.pd.fail_next(429, headers={"Retry-After": "0"}, path_prefix="/v2/enqueue")
    rk.pd.fail_next(500, path_prefix="/v2/enqueue")
    rk.terminal.ok("declare", "--sev", "SEV-2", "--title", "Queue backlog", "--service", "queue")
    rk.app.wait_idle(timeout=20)
    statuses = [e.status for e in rk.pd.events.received]
    assert len(rk.pd.incidents) == 1 and len(rk.pd.events.accepted("triggered")) == 1
    calls = [r.status for r in rk.pd.requests if r.path == "/v2/enqueue"]
    assert calls[:2] == [429, 500] and 202 in calls, (calls, statuses)
    with rk.im.store.read() as session:
        runs = session.exec(select(SyncRun).where(SyncRun.kind == "create")).all()
    assert [r.ok for r in runs] == [False, False, True]
    _pd_clean(rk.pd)


def test_routing_key_only_test_and_health_say_what_it_can_do(rk: RoutingKeyWorld) -> None:
    rk.add()
    ran = rk.terminal("connector", "test", "prod")
    assert ran.code == 0, ran
    assert "✓ Routing key •••••••• (encrypted) opens" in ran.out
    assert f"Events API v2 at {rk.pd.base_url}/v2/enqueue" in ran.out and "not called now" in ran.out
    assert "– n/a: REST API, services, from email, escalation policies: needs a REST API key" in ran.out
    assert "– n/a: Reconciliation and webhooks" in ran.out and "✗" not in ran.out
    assert rk.pd.requests == [], "connector test pages no one"

    health = rk.terminal("connector", "health", "prod")
    assert health.code == 0 and "Health: Healthy (prod)" in health.out, health
    assert "Events API: ⚠ no event sent yet" in health.out and "Webhook: – n/a" in health.out
    rk.terminal.ok("declare", "--sev", "SEV-4", "--title", "Disk 80%", "--service", "db")
    rk.app.wait_idle()
    health = rk.terminal.ok("connector", "health", "prod")
    assert "Events API: ✓ last event accepted" in health
    ran = rk.terminal("connector", "webhook", "prod", "--enable")
    assert ran.code == 2 and "no REST API key" in ran.err, ran


def test_a_wrong_routing_key_at_pagerduty_is_unhealthy(rk: RoutingKeyWorld) -> None:
    rk.add(key=OTHER_KEY)  # well formed, but no integration has it
    rk.terminal.ok("declare", "--sev", "SEV-2", "--title", "x", "--service", "db")
    rk.app.wait_idle()
    with rk.im.store.read() as session:
        [dead] = session.exec(select(OutboxJob).where(OutboxJob.status == JobStatus.DEAD)).all()
    assert "Invalid routing key" in (dead.last_error or ""), dead.last_error
    ran = rk.terminal("connector", "health", "prod")
    assert ran.code == 1 and "Health: Unhealthy" in ran.out and "last event refused" in ran.out, ran


def test_bad_routing_keys_are_refused_and_nothing_is_stored(rk: RoutingKeyWorld) -> None:
    for key in ("not-a-key", "e93facc04764012d7bfb002500d5d1a6ff", ""):
        ran = rk.add(key=key)
        assert ran.code == 2 and "Traceback" not in ran.err, (key, ran)
        assert ("not an Events API v2 routing key" if key else "no routing key given") in ran.err, ran
        assert key not in ran.err or not key
    config = json.dumps({"routing_key": "short", "events_url": rk.pd.base_url})
    ran = rk.terminal("connector", "add", "pagerduty", "prod", "--config", config)
    assert ran.code == 2 and "routing_key: not an Events API v2 routing key" in ran.err
    ran = rk.add({"sync_direction": "bidirectional"})
    assert ran.code == 2 and "needs a REST API key" in ran.err
    assert rk.connector() is None
    rk.add()
    ran = rk.terminal("connector", "config", "prod", "--sync-direction", "inbound")
    assert ran.code == 2 and "needs a REST API key" in ran.err
    ran = rk.terminal.typed("nope", "connector", "update", "prod", "--routing-key")
    assert ran.code == 2 and "not an Events API v2 routing key" in ran.err
    before = rk.connector()
    out = rk.terminal.typed(OTHER_KEY, "connector", "update", "prod", "--routing-key").out
    assert "Routing key of prod replaced: •••••••• (encrypted)" in out and OTHER_KEY not in out
    after = rk.connector()
    assert before and after and before.routing_key != after.routing_key


def test_rotation_reseals_the_routing_key(rk: RoutingKeyWorld) -> None:
    rk.add()
    before = rk.connector()
    assert before is not None and before.routing_key
    rk.terminal.env |= {"IM_SECRET_KEY": "a new passphrase for im", "IM_SECRET_KEY_PREVIOUS": SECRET_KEY}
    out = rk.terminal.ok("secrets", "rotate")
    assert "Re-sealed 1 secret" in out, out
    after = rk.connector()
    assert after is not None and after.routing_key and after.routing_key != before.routing_key
    assert secrets.reveal(after.routing_key, secrets.Keyring.of("a new passphrase for im")) == ROUTING_KEY


def test_with_both_keys_the_rest_api_is_used(rk: RoutingKeyWorld) -> None:
    rk.add(connector_config(rk.pd, "outbound"))
    assert "Mode: REST API (its routing key is kept" in rk.terminal.ok("connector", "status", "prod")
    rk.terminal.ok("declare", "--sev", "SEV-2", "--title", "DB slow", "--service", "db")
    rk.app.wait_idle()
    assert [r.path for r in rk.pd.requests if r.method == "POST"][:1] == ["/incidents"]
    assert rk.pd.events.received == []
    _pd_clean(rk.pd)


def test_the_fake_answers_as_the_events_api(pd: FakePagerDuty) -> None:
    pd.events.add_routing_key(ROUTING_KEY, "PDAT001")
    with EventsClient(ROUTING_KEY, url=pd.base_url) as client:
        assert client.send("resolve", "never-triggered").status == "success"  # ignored, answered 202
        assert pd.events.received[-1].outcome == "ignored"
    with EventsClient(OTHER_KEY, url=pd.base_url) as client, pytest.raises(RequestRejectedError) as refused:
        client.send("acknowledge", "k")
    assert refused.value.status == 400 and refused.value.pd_errors == ("Invalid routing key",)
    assert ROUTING_KEY not in repr(client) and OTHER_KEY not in str(refused.value)
    assert pd.incidents == {} and pd.violations == []


def test_a_game_day_refuses_a_routing_key_only_connector(rk: RoutingKeyWorld) -> None:
    """An event never says which PagerDuty incident it opened: the drill is refused before anything is written."""
    rk.add()
    ran = rk.terminal("gameday", "--service", "db", "--connector", "prod")
    assert ran.code == 2 and "pages by routing key only" in ran.err and "--api-key" in ran.err, ran
    with rk.im.store.read() as session:
        assert session.exec(select(Incident)).all() == [] and session.exec(select(OutboxJob)).all() == []
    assert rk.pd.requests == []
