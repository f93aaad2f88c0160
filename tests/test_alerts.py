"""Alert intake through the real endpoint: `im source add` in a terminal, then monitoring's requests
over HTTP into the served app, the outbox delivered by the test at frozen times, and what Slack got.
Answers of the Events API v2 shape are checked against PagerDuty's own OpenAPI description."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import freezegun.api
import httpx
import jsonschema
import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlmodel import select

from bot.domain.alert_models import Alert, AlertIntake
from bot.domain.models import Incident, TimelineEvent
from tests.conftest import SHARED
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings, reserve_socket, socket_url
from tests.pd_support import SECRET_KEY, Terminal

CHANNEL = "C0INCIDENT"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SPEC = SHARED / "pagerduty" / "events-v2-openapiv3.json"


class World:
    def __init__(self, database_url: str, slack: FakeSlack, terminal: Terminal, **settings: str) -> None:
        sock = reserve_socket()
        self.url = socket_url(sock)
        terminal.env |= {"IM_DATABASE_URL": database_url, "IM_SECRET_KEY": SECRET_KEY, "IM_PUBLIC_URL": self.url}
        self.terminal = terminal
        self.slack = slack
        values = {"IM_SLACK_CHANNEL": CHANNEL, "IM_SECRET_KEY": SECRET_KEY, "IM_PUBLIC_URL": self.url, **settings}
        self.app = AppHarness(make_settings(database_url, slack, **values), slack, background=False, sock=sock)
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def add_source(self, name: str, *args: str) -> str:
        out = self.terminal.ok("source", "add", name, *args)
        assert f"URL:  {self.url}/alerts/{name}" in out
        match = re.search(r"(?:Routing key|Bearer token): (\S+)", out)
        assert match, out
        return match.group(1)

    def post(self, source: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(
            f"/alerts/{source}", content=content, headers={"content-type": "application/json", **(headers or {})}
        )

    def drain(self) -> None:
        self.app.runtime.dispatcher.drain()

    def incidents(self) -> list[Incident]:
        with self.app.im.store.read() as session:
            return list(session.exec(select(Incident).order_by(Incident.id)))  # type: ignore[arg-type]

    def timeline(self, number: int) -> list[TimelineEvent]:
        return self.app.im.incidents.timeline(number)[1]

    def count(self, table: Any) -> int:
        with self.app.im.store.read() as session:
            return int(session.exec(select(func.count()).select_from(table)).one())

    def thread(self, number: int) -> list[str]:
        roots = [m for m in self.slack.messages(CHANNEL) if f"INC-{number} " in m.text or f"INC-{number}]" in m.text]
        assert roots, [m.text for m in self.slack.messages(CHANNEL)]
        return [m.text for m in self.slack.replies(CHANNEL, roots[0].ts)]

    def close(self) -> None:
        self.http.close()
        self.app.stop()


@pytest.fixture
def world(database_url: str, fake_slack: FakeSlack, monkeypatch, capsys) -> Iterator[World]:  # type: ignore[no-untyped-def]
    w = World(database_url, fake_slack, Terminal(monkeypatch, capsys, {}))
    yield w
    w.close()


def event(key: str | None, action: str = "trigger", routing_key: str = "", **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action}
    if key is not None:
        body["dedup_key"] = key
    if action == "trigger":
        body["payload"] = {"summary": f"{key} is failing", "source": "db01.example.com", "severity": "critical", **payload}
    return body


def mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str) else []
        return own + [t for value in node.values() for t in mrkdwn_texts(value)]
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    return []


def spec_schema(name: str) -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} not found (../shared is absent on a fresh clone)")
    return json.loads(SPEC.read_text())["components"]["responses"][name]["content"]["application/json"]["schema"]


def test_trigger_declares_repeats_are_counted_grouping_joins_and_the_last_resolve_resolves(world: World) -> None:
    key = world.add_source("mon", "--service", "payments")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    listed = world.terminal.ok("source", "list")
    assert key not in listed and "(encrypted)" in listed
    hostile = "<!channel> DB down <https://x|y> & more"
    with freeze_time(START) as clock:
        answer = world.post("mon", event("db/1", routing_key=key, summary=hostile))
        assert answer.status_code == 202
        assert answer.json() == {"status": "success", "message": "Event processed", "dedup_key": "db/1"}
        jsonschema.validate(answer.json(), spec_schema("Success"))
        world.drain()
        [incident] = world.incidents()
        assert (incident.severity, incident.services, incident.declared_origin) == ("SEV-1", ["payments"], "alert")
        root = world.slack.messages(CHANNEL)[0]
        assert "&lt;!channel&gt; DB down &lt;https://x|y&gt; &amp; more" in root.text
        markup = " ".join(mrkdwn_texts(root.blocks))  # plain_text fields are never read as markup
        assert "<!channel>" not in markup and "<https://x|y>" not in markup

        for _ in range(3):
            assert world.post("mon", event("db/1", routing_key=key, summary=hostile)).status_code == 202
        clock.tick(60)
        assert world.post("mon", event("db/2", routing_key=key, severity="warning")).status_code == 202  # within 5m: grouped
        world.drain()
        assert len(world.incidents()) == 1
        before = world.thread(1)
        assert not [t for t in before if "repeated" in t or "grouped" in t], before
        clock.tick(31)
        world.drain()
        bursts = [t for t in world.thread(1) if "grouped in" in t or "repeated" in t]
        assert bursts == [
            ":information_source: 1 more alert grouped in; alerts repeated 3 times (2 still firing) — alerts (alert)"
        ]
        with world.app.im.store.read() as session:
            counts = {a.dedup_key: a.count for a in session.exec(select(Alert))}
        assert counts == {"db/1": 4, "db/2": 1}

        assert world.post("mon", event("db/1", "resolve", key)).status_code == 202
        world.drain()
        assert world.incidents()[0].status == "open", "db/2 is still firing"
        assert world.post("mon", event("db/2", "resolve", key)).status_code == 202
        world.drain()
        assert world.incidents()[0].status == "resolved"
        texts = [e.text for e in world.timeline(1)]
        assert "Resolved: All 2 alerts resolved" in texts
        assert {e.origin for e in world.timeline(1)} == {"alert"}

        clock.tick(600)  # past the window and with the incident resolved: the same key starts a new incident
        assert world.post("mon", event("db/1", routing_key=key)).status_code == 202
        world.drain()
        assert [i.status for i in world.incidents()] == ["resolved", "open"]


def test_acknowledge_and_a_trigger_without_dedup_key(world: World) -> None:
    key = world.add_source("mon", "--no-auto-resolve")
    with freeze_time(START):
        answer = world.post("mon", event(None, routing_key=key, component="Checkout API"))
        generated = answer.json()["dedup_key"]
        assert answer.status_code == 202 and re.fullmatch(r"[0-9a-f]{32}", generated)
        world.drain()
        [incident] = world.incidents()
        assert incident.services == ["checkout-api"], "the service comes from payload.component"
        assert world.post("mon", event(generated, "acknowledge", key)).status_code == 202
        world.drain()
        assert world.incidents()[0].status == "mitigated"
        assert world.post("mon", event(generated, "resolve", key)).status_code == 202
        world.drain()
        assert world.incidents()[0].status == "mitigated", "this source only notes it"
        assert any("leaves resolving to people" in (e.text or "") for e in world.timeline(1))


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", "Unrecognized object", "JSON parse error"),
        (b"[1, 2]", "Unrecognized object", "JSON parse error"),
        ("no summary", "invalid event", "'payload.summary' is missing or blank"),
        ("bad action", "invalid event", "'event_action' is missing or invalid (expected trigger, acknowledge or resolve)"),
        ("resolve without key", "invalid event", "'dedup_key' is required to resolve"),
        ("bad severity", "invalid event", "'payload.severity' is invalid"),
        ("too large", "invalid event", "the body is larger than 512 KB"),
        ("wrong key", "invalid event", "Invalid routing key"),
    ],
)
def test_bad_events_get_pagerduty_400_with_the_reason_and_nothing_is_stored(
    world: World, body: Any, status: str, error: str
) -> None:
    key = world.add_source("mon")
    good = event("k1", routing_key=key)
    bodies: dict[str, Any] = {
        "no summary": {**good, "payload": {**good["payload"], "summary": "  "}},
        "bad action": {**good, "event_action": "explode"},
        "resolve without key": {"routing_key": key, "event_action": "resolve"},
        "bad severity": {**good, "payload": {**good["payload"], "severity": "apocalyptic"}},
        "too large": {**good, "payload": {**good["payload"], "custom_details": {"blob": "x" * 600_000}}},
        "wrong key": {**good, "routing_key": "0" * 32},
    }
    answer = world.post("mon", bodies.get(body, body) if isinstance(body, str) else body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"] == status
    assert any(e.startswith(error) for e in answer.json()["errors"]), answer.json()
    jsonschema.validate(answer.json(), spec_schema("Error"))
    assert world.count(AlertIntake) == 0


def test_unknown_source_is_404_and_a_header_routing_key_is_checked_before_the_body(world: World) -> None:
    key = world.add_source("mon")
    assert world.post("nope", event("k", routing_key=key)).status_code == 404
    wrong = world.post("mon", b"{not even json", {"x-routing-key": "f" * 32})
    assert (wrong.status_code, wrong.json()["errors"]) == (400, ["Invalid routing key"])
    assert world.post("mon", event("k", routing_key=key), {"x-routing-key": key}).status_code == 202


def test_alertmanager_bearer_token_grouped_alerts_runbook_and_resolution(world: World) -> None:
    token = world.add_source("prom", "--kind", "alertmanager")

    def alert(fingerprint: str, status: str = "firing") -> dict[str, Any]:
        return {
            "status": status,
            "labels": {"alertname": "HighLatency", "service": "api", "severity": "warning", "instance": fingerprint},
            "annotations": {"summary": f"p99 high on {fingerprint}", "runbook_url": "https://runbooks.example.com/latency"},
            "startsAt": "2026-03-02T08:59:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fingerprint,
        }

    def notification(status: str, *alerts: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "im",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts),
        }

    body = notification("firing", alert("a1"), alert("a2"))
    with freeze_time(START):
        assert world.post("prom", body).status_code == 401
        refused = world.post("prom", body, {"authorization": "Bearer wrong"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert world.count(AlertIntake) == 0
        bearer = {"authorization": f"Bearer {token}"}
        assert world.post("prom", {"version": "3", "alerts": []}, bearer).status_code == 400
        assert "fingerprint" in world.post("prom", notification("firing", {**alert("x"), "fingerprint": ""}), bearer).text
        answer = world.post("prom", body, bearer)
        assert answer.status_code == 200 and answer.json() == {"status": "success", "alerts": 2}
        world.drain()
        [incident] = world.incidents()
        assert (incident.severity, incident.services) == ("SEV-3", ["api"])
        assert "Runbook: https://runbooks.example.com/latency" in (incident.description or "")
        assert (
            world.post("prom", notification("resolved", alert("a1", "resolved"), alert("a2", "resolved")), bearer).status_code
            == 200
        )
        world.drain()
        assert world.incidents()[0].status == "resolved"


def test_a_flood_from_one_source_is_rate_limited_and_grouped(
    database_url: str,
    fake_slack: FakeSlack,
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    w = World(database_url, fake_slack, Terminal(monkeypatch, capsys, {}), IM_ALERTS_MAX_PER_SECOND="5")
    try:
        key = w.add_source("noisy", "--service", "edge")
        with freeze_time(START):
            answers = [w.post("noisy", event(f"k{i}", routing_key=key)) for i in range(40)]
            limited = [a for a in answers if a.status_code == 429]
            assert limited and all(int(a.headers["retry-after"]) >= 1 for a in limited)
            jsonschema.validate(limited[0].json(), spec_schema("Error"))
            accepted = [a for a in answers if a.status_code == 202]
            assert accepted and len(accepted) + len(limited) == 40
            w.drain()
            assert len(w.incidents()) == 1, "grouped, not one incident per alert"
            assert w.count(Alert) == len(accepted)
    finally:
        w.close()


def test_first_alerts_of_a_service_racing_on_two_replicas_declare_one_incident(world: World) -> None:
    key = world.add_source("mon", "--service", "db")
    with freeze_time(START):
        for i in range(30):
            assert world.post("mon", event(f"k{i}", routing_key=key)).status_code == 202
            assert world.post("mon", event("same", routing_key=key)).status_code == 202
        from bot.server import Runtime

        replicas = [world.app.runtime, Runtime(world.app.im, poll=0.05, scheduler=False)]
        barrier = threading.Barrier(2)

        def run(runtime: Runtime) -> None:
            barrier.wait()
            for _ in range(50):
                runtime.dispatcher.drain()

        threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        world.drain()
        assert len(world.incidents()) == 1
        with world.app.im.store.read() as session:
            alerts = {a.dedup_key: a.count for a in session.exec(select(Alert))}
        assert len(alerts) == 31 and alerts["same"] == 30


def test_merge_and_split_by_hand_terminal_and_slack(world: World) -> None:
    key = world.add_source("mon")
    with freeze_time(START):
        world.post("mon", event("a", routing_key=key, component="web"))
        world.post("mon", event("b", routing_key=key, component="db"))
        world.drain()
        assert [i.services for i in world.incidents()] == [["web"], ["db"]]
        out = world.terminal.ok("merge", "INC-2", "INC-1")
        assert "INC-2 merged into INC-1 (INC-2 closed, 1 alert moved)" in out
        second = world.incidents()[1]
        assert second.status == "closed"
        assert "Closed: Merged into INC-2" not in [e.text for e in world.timeline(2)]
        assert "Closed: Merged into INC-1" in [e.text for e in world.timeline(2)]
        assert any((e.text or "").startswith("INC-2 merged into this incident") for e in world.timeline(1))
        with world.app.im.store.read() as session:
            assert {a.dedup_key: a.incident_id for a in session.exec(select(Alert))} == {"a": 1, "b": 1}
        # a repeat of b now counts in INC-1
        world.post("mon", event("b", routing_key=key, component="db"))
        world.drain()
        assert len(world.incidents()) == 2

        ran = world.terminal("split", "INC-1", "--alert", "nope")
        assert ran.code == 2 and "INC-1 has no alert with dedup key 'nope'" in ran.err
        resp = world.app.slack.post(sr.slash_command("split INC-1 --alert b"), timestamp=int(freezegun.api.real_time()))
        assert resp.status_code == 200, resp.text
        world.drain()
        incidents = world.incidents()
        assert len(incidents) == 3 and incidents[2].services == ["db"]
        with world.app.im.store.read() as session:
            assert {a.dedup_key: a.incident_id for a in session.exec(select(Alert))} == {"a": 1, "b": 3}
        assert any("split out into INC-3" in (e.text or "") for e in world.timeline(1))
        assert any(e.data.get("split_from") == "INC-1" for e in world.timeline(3))


def test_group_window_ends_and_a_new_incident_is_declared(world: World) -> None:
    key = world.add_source("mon", "--service", "api", "--group-window", "2m")
    with freeze_time(START) as clock:
        world.post("mon", event("a", routing_key=key))
        world.drain()
        clock.tick(timedelta(minutes=1))
        world.post("mon", event("b", routing_key=key))
        clock.tick(timedelta(minutes=3))
        world.post("mon", event("c", routing_key=key))
        world.drain()
        assert len(world.incidents()) == 2
