"""The PagerDuty connector end to end: Slack and the terminal in, the fake PagerDuty out, signed
webhooks back in, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.clock import utcnow
from bot.connectors.models import Connector
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob
from bot.domain.people import PersonRef
from bot.slack import render
from integrations.pagerduty.api.webhook_signature import sign
from integrations.pagerduty.tables import PagerDutyLink, WebhookDelivery
from tests.fakes import slack_requests
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import SIGNING_SECRET, reserve_socket
from tests.pd_support import PagerDutyWorld, pagerduty_account

ROOT = Path(__file__).resolve().parents[1]

CHANNEL = "C0INCIDENT"


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    fake = pagerduty_account()
    yield fake
    fake.stop()


@pytest.fixture
def world(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> Iterator[PagerDutyWorld]:  # type: ignore[no-untyped-def]
    w = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    w.enable_webhook()
    yield w
    w.stop()


def test_lifecycle_started_from_slack(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    world.terminal.ok("connector", "map-escalation", "prod", "--service", "api", "--escalation-policy", "PESCAPI")
    body = app.command(
        'declare --sev SEV-2 --title "Database cluster failure" --service db,api --description "replica lag"'
    ).json()
    assert "INC-1 declared" in body["text"]
    app.wait_idle()
    # one PagerDuty incident per service, on the mapped services, urgency from SEV-2, keyed for retries
    by_service = {i.service_id: i for i in pd.incidents.values()}
    assert set(by_service) == {"PDAT001", "PAPI001"}
    db = by_service["PDAT001"]
    assert db.title == "Database cluster failure" and db.urgency == "high" and db.status == "triggered"
    assert db.incident_key == "im:prod:INC-1:db" and db.escalation_policy_id == "PESC001"
    assert by_service["PAPI001"].escalation_policy_id == "PESCAPI"
    assert "replica lag" in str(db.details)
    thread_link = [str(db.details)] + [n.content for n in db.notes]
    assert any("slack.com/archives/C0INCIDENT" in text for text in thread_link), "a link back to the Slack thread"
    assert db.history[0].from_email == "alice@example.com", "the declarer is a PagerDuty user: acts as her"
    root = app.fake.messages(CHANNEL)[0]
    assert f"PagerDuty #{db.number} (db)" in json.dumps(root.blocks), "links on the root message"
    status = world.terminal.ok("status", "--incident", "INC-1")
    # both sides' statuses: im's own, and each PagerDuty incident's
    assert re.search(r"^\s*status:\s+open$", status, re.MULTILINE), status
    assert f"PagerDuty #{db.number} (db) triggered" in status, status

    # Bob (not a PagerDuty user) acknowledges: PagerDuty acknowledges with the connector's from_email
    app.click(render.ACK_ACTION, "INC-1", user_id="U0BOB0001", user_name="bob")
    app.command('note --incident INC-1 "failing over to replica 2"')
    app.wait_idle()
    assert {i.status for i in pd.incidents.values()} == {"acknowledged"}
    assert db.history[-1].from_email == "ops@example.com"
    assert [n.content for n in db.notes if "Slack thread" not in n.content] == ["failing over to replica 2 (Alice Doe) — via im"]

    # PagerDuty echoes what we did: nothing changes, nothing is sent back
    writes = len(world.writes_to_pd())
    events = len(app.im.incidents.timeline(1)[1])
    for incident in pd.incidents.values():
        pd.notify_subscriptions("incident.acknowledged", incident.id)
        pd.notify_subscriptions("incident.annotated", incident.id)
    app.wait_idle()
    assert len(app.im.incidents.timeline(1)[1]) == events
    assert len(world.writes_to_pd()) == writes

    app.command('resolve --incident INC-1 --note "index rebuilt"')
    app.wait_idle()
    assert {(i.status, i.resolution) for i in pd.incidents.values()} == {("resolved", "index rebuilt")}
    for incident in pd.incidents.values():
        pd.notify_subscriptions("incident.resolved", incident.id)
    app.wait_idle()
    assert len(world.writes_to_pd()) == writes + 2 + 2  # the resolve note and status, per PagerDuty incident
    assert not any("Slack thread" in (e.text or "") for e in app.im.incidents.timeline(1)[1]), "our notes do not echo back"
    assert pd.violations == [] and app.fake.violations == []


def test_lifecycle_started_from_pagerduty(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    remote = pd.trigger_incident(service_id="PDAT001", title="Disk 95% on db-3", urgency="low")
    pd.notify_subscriptions("incident.triggered", remote.id)
    app.wait_idle()
    incident = app.im.incidents.get(1)
    assert incident.title == "Disk 95% on db-3" and incident.services == ["db"] and incident.severity == "SEV-4"
    assert incident.declared_origin == "pagerduty"
    root = app.fake.messages(CHANNEL)[0]
    assert "Disk 95% on db-3" in root.text

    pd.set_incident_status(remote.id, "acknowledged", agent_user_id="PUCAROL")
    pd.notify_subscriptions("incident.acknowledged", remote.id)
    pd.reassign_incident(remote.id, ["PUALICE"], agent_user_id="PUCAROL")
    pd.notify_subscriptions("incident.reassigned", remote.id)
    pd.add_incident_note(remote.id, "freed 20 GB of logs", user_id="PUCAROL")
    pd.notify_subscriptions("incident.annotated", remote.id)
    app.wait_idle()
    assert app.im.incidents.get(1).status == "mitigated"
    _, events = app.im.incidents.timeline(1)
    assert [e.origin for e in events] == ["pagerduty"] * len(events)
    assert any(e.kind == "assignment" and "now paging Alice Doe" in (e.text or "") for e in events)
    assert any(e.kind == "note" and e.text == "freed 20 GB of logs" for e in events)
    replies = app.fake.replies(CHANNEL, root.ts)
    notice = [r for r in replies if "now paging Alice Doe" in r.text]
    assert notice, "the escalation notice lands in the thread"
    assert any(
        c.args.get("reply_broadcast") in (True, "true", "1")
        for c in app.fake.calls_to("chat.postMessage")
        if "now paging" in str(c.args.get("text"))
    ), "and is shown in the channel"

    pd.set_incident_status(remote.id, "resolved", agent_user_id="PUCAROL")
    pd.notify_subscriptions("incident.resolved", remote.id)
    app.wait_idle()
    assert app.im.incidents.get(1).status == "resolved"
    assert world.writes_to_pd() == [], "nothing that came from PagerDuty goes back to it"
    assert pd.violations == [] and app.fake.violations == []


def test_duplicate_out_of_order_and_forged_webhooks(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    remote = pd.trigger_incident(service_id="PDAT001", title="Replica lag", urgency="high")
    secret = world.registry.webhook_secrets(world.registry.get("prod"))
    url = f"{world.url}/connectors/prod/webhook"
    t0 = utcnow()
    assert (
        pd.send_webhook(url, "incident.triggered", remote.id, secrets=secret, event_id="EV1", occurred_at=t0).status_code == 202
    )
    assert (
        pd.send_webhook(url, "incident.triggered", remote.id, secrets=secret, event_id="EV1", occurred_at=t0).status_code == 200
    )
    # resolved (later) arrives before acknowledged (earlier): the incident ends resolved
    pd.set_incident_status(remote.id, "resolved")
    pd.send_webhook(url, "incident.resolved", remote.id, secrets=secret, event_id="EV3", occurred_at=t0 + timedelta(seconds=20))
    ack_data = {**pd.build_event("incident.acknowledged", remote.id)["event"]["data"], "status": "acknowledged"}
    pd.send_webhook(
        url,
        "incident.acknowledged",
        remote.id,
        secrets=secret,
        event_id="EV2",
        occurred_at=t0 + timedelta(seconds=10),
        data=ack_data,
    )
    app.wait_idle()
    assert app.im.incidents.get(1).status == "resolved"
    assert len(app.im.incidents.search()) == 1, "one incident for one PagerDuty incident, however often it is told"

    # forged: wrong secret, no header, garbled header -> 401 and nothing stored
    with app.im.store.read() as session:
        stored = len(session.exec(select(WebhookDelivery)).all())
    assert pd.send_webhook(url, "incident.acknowledged", remote.id, secrets=["not-the-secret"], event_id="EV4").status_code == 401
    body = json.dumps(pd.build_event("incident.acknowledged", remote.id, event_id="EV5")).encode()
    import httpx

    assert httpx.post(url, content=body, headers={"Content-Type": "application/json"}).status_code == 401
    assert httpx.post(url, content=body, headers={"X-PagerDuty-Signature": "v1=zz,garbage"}).status_code == 401
    # signed but not an event: 400 with a reason, never a 5xx
    bad = b'{"event": {"id": "EV6"}}'
    answer = httpx.post(url, content=bad, headers={"X-PagerDuty-Signature": sign(bad, secret[0])})
    assert answer.status_code == 400 and answer.json()["error"]
    # an event type we do not use is stored and answered 2xx
    other = pd.send_webhook(
        url, "service.updated", None, secrets=secret, event_id="EV7", data={"id": "PDAT001", "type": "service"}
    )
    assert other.status_code == 202
    with app.im.store.read() as session:
        assert len(session.exec(select(WebhookDelivery)).all()) == stored + 1
    # secret rotation: PagerDuty signs with old and new secrets at once
    rotated = pd.send_webhook(url, "incident.annotated", remote.id, secrets=["old-secret", secret[0]], event_id="EV8")
    assert rotated.status_code == 202
    assert world.writes_to_pd() == []


def test_pagerduty_down_during_declare_creates_exactly_once(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.runtime.workers.stop()  # deliver by hand, under a frozen clock (the served app stays outside it)
    pd.down = True
    app.command('declare --sev SEV-1 --title "Checkout down" --service payments')
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(4):
            app.runtime.dispatcher.drain()
            clock.tick(700)
        job = [j for j in _jobs(world) if j.destination == "pagerduty:prod"][0]
        assert job.status == JobStatus.PENDING and "unavailable" in (job.last_error or "")
        assert pd.incidents == {}
        pd.down = False
        clock.tick(700)
        app.runtime.dispatcher.drain()
    assert len(pd.incidents) == 1, [(j.destination, j.kind, j.status, j.attempts, j.last_error) for j in _jobs(world)]
    assert next(iter(pd.incidents.values())).service_id == "PGEN001"
    assert [j.status for j in _jobs(world) if j.destination == "pagerduty:prod"] == [JobStatus.DONE]
    # a create whose answer was lost is retried: the incident_key finds the same PagerDuty incident
    with world.im.store.transaction() as session:
        for link in session.exec(select(PagerDutyLink)):
            session.delete(link)
        job = session.exec(select(OutboxJob).where(OutboxJob.destination == "pagerduty:prod")).one()
        job.status, job.available_at = JobStatus.PENDING, utcnow()
        session.add(job)
    app.runtime.dispatcher.drain()
    assert len(pd.incidents) == 1
    assert world.links(1)[0].pd_incident_id == next(iter(pd.incidents))


def test_rate_limit_storm_is_waited_out(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.runtime.workers.stop()
    pd.fail_next(429, times=4, headers={"ratelimit-reset": "20"}, path_prefix="/incidents")
    app.command('declare --sev SEV-3 --title "Slow API" --service api')
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        app.runtime.dispatcher.drain()
        job = [j for j in _jobs(world) if j.destination == "pagerduty:prod"][0]
        assert job.status == JobStatus.PENDING and "rate limit" in (job.last_error or "").lower()
        assert (job.available_at - utcnow()).total_seconds() >= 20, "waits what PagerDuty asked"
        for _ in range(8):
            clock.tick(25)
            app.runtime.dispatcher.drain()
    assert len(pd.incidents) == 1
    assert [j.status for j in _jobs(world) if j.destination == "pagerduty:prod"] == [JobStatus.DONE]


def test_reconciliation_heals_missed_webhooks_once_per_interval(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.command('declare --sev SEV-2 --title "Queue stuck" --service db')
    app.wait_idle()
    remote = next(iter(pd.incidents.values()))
    with world.im.store.transaction() as session:
        row = session.exec(select(Connector)).one()
        row.last_sync_until = utcnow() - timedelta(minutes=1)
        row.next_sync_at = utcnow()
        session.add(row)
    pd.set_incident_status(remote.id, "acknowledged", agent_user_id="PUCAROL")  # webhook lost
    pd.trigger_incident(service_id="PAPI001", title="5xx on /login", urgency="high")  # webhook lost
    pd.add_service("POTHER1", "Payroll (not ours)")
    pd.trigger_incident(service_id="POTHER1", title="payroll batch late")  # a service this connector does not cover
    other_replica = type(world.ticker)(world.im, world.registry)
    done = world.ticker.tick()
    assert done and done[0].startswith("sync prod: 3 seen, 2 changed")
    assert other_replica.tick() == [], "the interval was taken: a second replica does not sync again"
    assert app.im.incidents.get(1).status == "mitigated"
    assert [i.title for i in app.im.incidents.search()] == ["5xx on /login", "Queue stuck"]
    out = world.terminal.ok("connector", "status", "prod")
    assert "Connector: prod (pagerduty)" in out and "Status: Active" in out and "Webhook: Enabled" in out
    assert pd.violations == []


def _jobs(world: PagerDutyWorld) -> list[OutboxJob]:
    with world.im.store.read() as session:
        return list(session.exec(select(OutboxJob).order_by(OutboxJob.id)))


def test_severity_and_reopen_in_pagerduty_terms(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.command('declare --sev SEV-2 --title "Cache stampede" --service db')
    refused = app.command("severity --incident INC-1 --sev SEV-4")
    assert "needs its owner, its commander or an admin" in refused.json()["text"], "SEV-2 is protected by default"
    # the declarer takes the incident: its owner may lower it
    app.im.incidents.assign(1, PersonRef(slack_user_id="U0LAN0Z89"), actor=Actor(Origin.SLACK, "U0LAN0Z89"))
    app.command("severity --incident INC-1 --sev SEV-4")
    app.wait_idle()
    first = next(iter(pd.incidents.values()))
    assert first.urgency == "low", "severity change -> urgency"
    app.command('resolve --incident INC-1 --note "warmed the cache"')
    app.command('reopen --incident INC-1 --note "stampede again at 14:05"')
    app.wait_idle()
    assert first.status == "resolved"
    second = [i for i in pd.incidents.values() if i.id != first.id]
    assert len(second) == 1 and second[0].status == "triggered" and second[0].service_id == "PDAT001"
    assert "stampede again at 14:05" in str(second[0].details)
    root = app.fake.messages(CHANNEL)[0]
    said = [r.text for r in app.fake.replies(CHANNEL, root.ts)]
    assert any("PagerDuty cannot reopen a resolved incident" in t and f"#{second[0].number}" in t for t in said), said
    assert world.links(1)[0].pd_incident_id == second[0].id
    assert pd.violations == []


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
def test_sync_directions(
    database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys, direction: str
) -> None:  # type: ignore[no-untyped-def]
    w = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys, direction=direction)
    try:
        w.enable_webhook()
        w.app.command('declare --sev SEV-3 --title "Here first" --service db')
        w.app.wait_idle()
        created_here = len(pd.incidents)
        remote = pd.trigger_incident(service_id="PAPI001", title="There first")
        pd.notify_subscriptions("incident.triggered", remote.id)
        w.app.wait_idle()
        titles = sorted(i.title for i in w.im.incidents.search())
        if direction == "outbound":
            assert created_here == 1, "outbound: im incidents go to PagerDuty"
            assert titles == ["Here first"], "outbound: PagerDuty's incidents do not come in"
            assert w.ticker.reconciler.sync("prod").seen == 0
        else:
            assert created_here == 0, "inbound: nothing is pushed to PagerDuty"
            assert titles == ["Here first", "There first"], "inbound: PagerDuty's incidents come in"
    finally:
        w.stop()


def test_sla_breach_is_announced_once_in_both_systems(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    world.terminal.ok("connector", "config", "prod", "--sla-mapping", '{"SEV-2": {"ack": "15m", "resolve": "1h"}}')
    app.command('declare --sev SEV-2 --title "Payments slow" --service api')
    app.wait_idle()
    declared = app.im.incidents.get(1).declared_at
    assert world.ticker.check_slas(declared + timedelta(minutes=14)) == []
    assert world.ticker.check_slas(declared + timedelta(minutes=16)) == ["INC-1 ack SLA breached"]
    assert world.ticker.check_slas(declared + timedelta(minutes=17)) == [], "announced once"
    app.wait_idle()
    root = app.fake.messages(CHANNEL)[0]
    assert any("SLA breached: not acknowledged within 15m" in r.text for r in app.fake.replies(CHANNEL, root.ts))
    remote = next(iter(pd.incidents.values()))
    assert any("SLA breached" in n.content for n in remote.notes)
    app.command("ack --incident INC-1")
    assert world.ticker.check_slas(declared + timedelta(minutes=61)) == ["INC-1 resolve SLA breached"]


def test_two_processes_share_one_outbox(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("several replicas share a PostgreSQL database; SQLite serves one process")
    first = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    second = ServeProcess({**first.terminal.env, "IM_WORKERS": "2"})  # a second replica: `im serve` in its own process
    try:
        from concurrent.futures import ThreadPoolExecutor

        def declare(n: int) -> str:
            body = slack_requests.slash_command(f'declare --sev SEV-3 --title "replica {n}" --service svc{n % 4}')
            client = first.app.slack if n % 2 else slack_requests.SlackClient(second.url, SIGNING_SECRET)
            return client.post(body).json()["text"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(declare, range(24)))
        assert all("declared" in a for a in answers), answers
        first.app.wait_idle(timeout=60)
        keys = [i.incident_key for i in pd.incidents.values()]
        assert len(keys) == 24 and len(set(keys)) == 24, "each PagerDuty incident created exactly once"
        assert len(fake_slack.messages(CHANNEL)) == 24, "each root message posted exactly once"
        with first.im.store.read() as session:
            jobs = session.exec(select(OutboxJob)).all()
        assert {j.status for j in jobs} == {JobStatus.DONE} and all(j.attempts == 1 for j in jobs)
    finally:
        second.stop()
        first.stop()


class ServeProcess:
    """`im serve` as its own OS process, as a second replica would run."""

    def __init__(self, env: dict[str, str]) -> None:
        sock = reserve_socket()
        port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_"))}
        full_env |= env | {"IM_HOST": "127.0.0.1", "IM_PORT": str(port), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.main", "serve"],
            env=full_env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)  # waiting for another process to listen
        self.stop()
        raise RuntimeError("im serve did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


def test_who_is_on_call_from_the_terminal_and_from_slack(world: PagerDutyWorld) -> None:
    out = world.terminal.ok("oncall", "--service", "api")
    assert out.splitlines() == ["Service: api", "Escalation policy: API team", "Current On-Call: Carol Lin"]
    world.terminal.ok("connector", "map-escalation", "prod", "--service", "db", "--escalation-policy", "PESC001")
    world.pd.escalation_policies["PESC001"].oncall_user_ids.append("PUALICE")
    out = world.terminal.ok("oncall", "--service", "db")
    assert "Current On-Call: Ops Robot" in out and "Escalation: After 30 minutes → Alice Doe" in out
    # Slack is answered at once; PagerDuty's answer follows through the response URL
    url = world.slack.response_url()
    first = world.app.command("oncall --service api", response_url=url).json()
    assert "Asking PagerDuty" in first["text"]
    assert world.slack.wait_for(lambda: len(world.slack.responses) == 1)
    assert "Current On-Call: Carol Lin" in world.slack.responses[0]["text"]
    bad = world.app.command("oncall").json()
    assert "missing required option(s): --service" in bad["text"], "bad input is answered at once"
    ran = world.terminal("oncall", "--service", "nowhere", "--connector", "staging")
    assert ran.code == 2 and "no connector named 'staging'" in ran.err


def test_unacknowledged_and_reopened_in_pagerduty(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    remote = pd.trigger_incident(service_id="PDAT001", title="Connection storms")
    pd.notify_subscriptions("incident.triggered", remote.id)
    pd.set_incident_status(remote.id, "acknowledged", agent_user_id="PUCAROL")
    pd.notify_subscriptions("incident.acknowledged", remote.id)
    app.wait_idle()
    assert app.im.incidents.get(1).status == "mitigated"
    pd.set_incident_status(remote.id, "triggered")  # the acknowledgement timed out in PagerDuty
    pd.notify_subscriptions("incident.unacknowledged", remote.id)
    app.wait_idle()
    assert app.im.incidents.get(1).status == "open"
    pd.set_incident_status(remote.id, "resolved", agent_user_id="PUCAROL")
    pd.notify_subscriptions("incident.resolved", remote.id)
    app.wait_idle()
    pd.set_incident_status(remote.id, "triggered", agent_user_id="PUCAROL")
    pd.notify_subscriptions("incident.reopened", remote.id)
    app.wait_idle()
    incident, events = app.im.incidents.timeline(1)
    assert incident.status == "open" and incident.reopened_at is not None
    assert [e.data.get("verb") for e in events if e.kind == "status"] == ["acknowledge", "unacknowledge", "resolve", "reopen"]
    assert "Reopened in PagerDuty" in (events[-1].text or "")
    assert world.writes_to_pd() == []
