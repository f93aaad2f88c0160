"""Ownership and time with PagerDuty, end to end over real HTTP on SQLite and PostgreSQL: the im owner
and PagerDuty's assignee follow each other (no echo, newest report wins), on-call now and next in the
terminal and in Slack, escalations and responder requests from Slack and the terminal."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.clock import utcnow
from bot.connectors.models import Connector
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob, TimelineEvent
from bot.domain.people import Person, PersonRef
from tests.fakes.pagerduty_api import FakePagerDuty, RecordedRequest
from tests.pd_support import PagerDutyWorld

BOB = Actor(Origin.SLACK, "U0BOB0001", "bob")
ALICE_REF = PersonRef(slack_user_id="U0LAN0Z89", email="alice@example.com", name="Alice Doe")


def _events(world: PagerDutyWorld, kind: str | None = None) -> list[TimelineEvent]:
    _, events = world.im.incidents.timeline(1)
    return [e for e in events if kind is None or e.kind == kind]


def _owner(world: PagerDutyWorld) -> Person | None:
    with world.im.store.read() as session:
        incident = world.im.incidents.get(1)
        return session.get(Person, incident.owner_id) if incident.owner_id else None


def _requests(pd: FakePagerDuty, method: str, path_part: str) -> list[RecordedRequest]:
    return [r for r in pd.requests if r.method == method and path_part in r.path]


def _email_lookups(pd: FakePagerDuty) -> list[str]:
    """Who was looked up by email (`GET /users?query=`), in order; reads of a user by id are not lookups."""
    return [r.query["query"][0] for r in pd.requests if r.method == "GET" and r.path == "/users" and "query" in r.query]


def _jobs(world: PagerDutyWorld, kind: str) -> list[OutboxJob]:
    with world.im.store.read() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.id)))


# -- im -> PagerDuty -------------------------------------------------------------------------------
def test_owner_set_in_im_reassigns_pagerduty_without_echo(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.command('declare --sev SEV-2 --title "Checkout errors" --service db')
    app.wait_idle()
    remote = next(iter(pd.incidents.values()))
    assert remote.assignments == ["PUOPS01"]

    world.im.incidents.assign("INC-1", ALICE_REF, actor=BOB)  # what `/im assign INC-1 @alice` does
    app.wait_idle()
    assert remote.assignments == ["PUALICE"]
    put = _requests(pd, "PUT", f"/incidents/{remote.id}")[-1]
    assert put.json == {
        "incident": {"type": "incident_reference", "assignments": [{"assignee": {"id": "PUALICE", "type": "user_reference"}}]}
    }
    assert put.headers["From"] == "ops@example.com", "Bob is no PagerDuty user: the connector's from_email acts"
    assert _owner(world).pagerduty_user_id == "PUALICE", "found by email once, then known"  # type: ignore[union-attr]

    # Alice (a PagerDuty user, known from Slack) hands it to Carol: PagerDuty hears it from her
    lookups = len(_email_lookups(pd))
    world.im.incidents.assign("INC-1", PersonRef(email="carol@example.com"), actor=Actor(Origin.SLACK, "U0LAN0Z89", "alice"))
    app.wait_idle()
    assert remote.assignments == ["PUCAROL"]
    assert _requests(pd, "PUT", f"/incidents/{remote.id}")[-1].headers["From"] == "alice@example.com"
    world.im.incidents.assign("INC-1", ALICE_REF, actor=BOB)
    app.wait_idle()
    assert remote.assignments == ["PUALICE"]
    after = _email_lookups(pd)[lookups:]  # Bob's From check may come late: his email is learnt from Slack meanwhile
    assert after.count("carol@example.com") == 1 and "alice@example.com" not in after, "Alice's PagerDuty id was learnt"

    # PagerDuty reports our reassignment back: nothing changes, nothing is sent again
    writes, events = len(world.writes_to_pd()), len(_events(world))
    pd.notify_subscriptions("incident.reassigned", remote.id)
    app.wait_idle()
    assert len(world.writes_to_pd()) == writes and len(_events(world)) == events
    assert [j.status for j in _jobs(world, "reassign")] == [JobStatus.DONE] * 3
    assert pd.violations == [] and pd.response_violations == []


def test_owner_not_in_pagerduty_is_said_not_dropped(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.command('declare --sev SEV-3 --title "Slow search" --service db')
    app.wait_idle()
    remote = next(iter(pd.incidents.values()))
    world.im.incidents.assign("INC-1", PersonRef(email="bob@example.com", name="Bob Roe"), actor=BOB)
    app.wait_idle()
    assert remote.assignments == ["PUOPS01"], "PagerDuty's assignment unchanged"
    notices = [e.text for e in _events(world, "notice")]
    assert notices == ["Bob Roe (not in PagerDuty): PagerDuty assignment unchanged"]
    assert [j.status for j in _jobs(world, "reassign")] == [JobStatus.DONE]
    root = app.fake.messages("C0INCIDENT")[0]
    assert app.fake.wait_for(lambda: any("not in PagerDuty" in r.text for r in app.fake.replies("C0INCIDENT", root.ts)))


def test_pagerduty_down_while_assigning_waits_in_the_outbox(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    app.command('declare --sev SEV-2 --title "Cart empty" --service db')
    app.wait_idle()
    remote = next(iter(pd.incidents.values()))
    app.runtime.workers.stop()
    pd.down = True
    change = world.im.incidents.assign("INC-1", ALICE_REF, actor=BOB)
    assert change.changed and _owner(world).email == "alice@example.com", "the local change commits"  # type: ignore[union-attr]
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        app.runtime.dispatcher.drain()
        (job,) = _jobs(world, "reassign")
        assert job.status == JobStatus.PENDING and "unavailable" in (job.last_error or "").lower()
        pd.down = False
        clock.tick(600)
        app.runtime.dispatcher.drain()
    assert remote.assignments == ["PUALICE"]
    assert [j.status for j in _jobs(world, "reassign")] == [JobStatus.DONE]


# -- PagerDuty -> im -------------------------------------------------------------------------------
def test_pagerduty_assignee_becomes_the_owner_newest_report_wins(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    with world.im.store.transaction() as session:  # Alice is known to im from Slack, by Slack id and email
        from bot.domain import people

        people.resolve(session, ALICE_REF)
    remote = pd.trigger_incident(service_id="PDAT001", title="Replica lag")
    pd.notify_subscriptions("incident.triggered", remote.id)
    app.wait_idle()
    secret = world.registry.webhook_secrets(world.registry.get("prod"))
    url = f"{world.url}/connectors/prod/webhook"
    t0 = utcnow()

    def send(event_type: str, assignee: str, at: datetime, event_id: str) -> int:
        data = pd.build_event(event_type, remote.id)["event"]["data"]
        data["assignees"] = [{"id": assignee, "type": "user_reference", "summary": pd.users[assignee].name}]
        return pd.send_webhook(
            url, event_type, remote.id, secrets=secret, event_id=event_id, occurred_at=at, data=data
        ).status_code

    # the newer reassignment (Carol, t0+20s) arrives before the older one (Alice, t0+10s)
    assert send("incident.reassigned", "PUCAROL", t0 + timedelta(seconds=20), "EVR2") == 202
    assert send("incident.reassigned", "PUALICE", t0 + timedelta(seconds=10), "EVR1") == 202
    app.wait_idle()
    owner = _owner(world)
    assert owner is not None and owner.name == "Carol Lin" and owner.email == "carol@example.com"
    assert owner.slack_user_id is None, "a PagerDuty user with no Slack match: shown by name"
    assert [e.text for e in _events(world, "owner")] == ["Owner: Carol Lin"]
    assert _events(world, "owner")[0].origin == "pagerduty"
    assert len(_requests(pd, "GET", "/users/PUCAROL")) == 1

    # Alice acknowledges in PagerDuty: she is the owner, and the same person Slack knows
    pd.set_incident_status(remote.id, "acknowledged", agent_user_id="PUALICE")
    pd.send_webhook(
        url, "incident.acknowledged", remote.id, secrets=secret, event_id="EVA", occurred_at=t0 + timedelta(seconds=30)
    )
    # escalated (t0+40s): the first assignee owns it
    assert send("incident.escalated", "PUCAROL", t0 + timedelta(seconds=40), "EVE") == 202
    assert send("incident.escalated", "PUCAROL", t0 + timedelta(seconds=40), "EVE") == 200, "a redelivery"
    app.wait_idle()
    assert [e.text for e in _events(world, "owner")] == [
        "Owner: Carol Lin",
        "Owner: Alice Doe (was Carol Lin)",
        "Owner: Carol Lin (was Alice Doe)",
    ]
    with world.im.store.read() as session:
        alices = session.exec(select(Person).where(Person.email == "alice@example.com")).all()
    assert len(alices) == 1 and alices[0].slack_user_id == "U0LAN0Z89" and alices[0].pagerduty_user_id == "PUALICE"
    view = world.im.describe(world.im.incidents.get(1))
    assert view.owner is not None and view.owner.name == "Carol Lin"
    assert world.writes_to_pd() == [], "what came from PagerDuty is not sent back"
    assert pd.violations == []


def test_reconciliation_sets_the_owner_from_assignments(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    remote = pd.trigger_incident(service_id="PDAT001", title="Queue backlog")
    pd.notify_subscriptions("incident.triggered", remote.id)
    app.wait_idle()
    with world.im.store.transaction() as session:
        row = session.exec(select(Connector)).one()
        row.last_sync_until = utcnow() - timedelta(minutes=1)
        row.next_sync_at = utcnow()
        session.add(row)
    pd.reassign_incident(remote.id, ["PUCAROL"], agent_user_id="PUOPS01")  # its webhook is lost
    assert world.ticker.tick()
    owner = _owner(world)
    assert owner is not None and owner.pagerduty_user_id == "PUCAROL" and owner.name == "Carol Lin"
    assert world.writes_to_pd() == []


# -- on call now and next --------------------------------------------------------------------------
@pytest.fixture
def rotation(world: PagerDutyWorld) -> datetime:
    """Payments: level 1 a rotation of Alice and Carol in 8-hour shifts, level 2 Ops Robot directly."""
    pd = world.pd
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    pd.add_schedule("PSCHED1", "Payments primary", ["PUALICE", "PUCAROL"], start=start, shift=timedelta(hours=8))
    pd.add_escalation_policy("PESCPAY", "Payments", oncall_user_ids=["PSCHED1", "PUOPS01"])
    pd.add_service("PPAY001", "Payments Service", "PESCPAY")
    world.terminal.ok("connector", "map-service", "prod", "--im-service", "payments", "--pd-service", "PPAY001")
    world.terminal.ok("connector", "map-escalation", "prod", "--service", "payments", "--escalation-policy", "PESCPAY")
    return start + timedelta(hours=8)  # the end of Alice's shift: Carol's starts


def test_oncall_now_and_next_in_the_terminal(world: PagerDutyWorld, rotation: datetime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    utc = world.terminal.ok("oncall", "--service", "payments", "--utc")
    change = rotation.strftime("%Y-%m-%d %H:%M UTC")
    assert utc.splitlines() == [
        "Service: payments",
        "Escalation policy: Payments",
        f"Current On-Call: Alice Doe (until {change})",
        f"Next On-Call: Carol Lin ({change})",
        "Escalation: After 30 minutes → Ops Robot (always)",
    ]
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        local = world.terminal.ok("oncall", "--service", "payments")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    there = rotation.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M IST")
    assert f"Current On-Call: Alice Doe (until {there})" in local and f"Next On-Call: Carol Lin ({there})" in local
    every = world.terminal.ok("oncall")
    assert [line for line in every.splitlines() if line.startswith("Service:")] == [
        "Service: api",
        "Service: db",
        "Service: payments",
    ]
    asked = [r for r in world.pd.requests if r.path == "/oncalls"]
    assert {(r.query.get("since", [""])[0] == r.query.get("until", [""])[0]) for r in asked} == {True}
    assert any(r.query["since"] == [rotation.strftime("%Y-%m-%dT%H:%M:%SZ")] for r in asked), "the window after the shift"
    assert world.pd.violations == [] and world.pd.response_violations == []


def test_oncall_in_slack_uses_date_tokens(world: PagerDutyWorld, rotation: datetime) -> None:
    url = world.slack.response_url()
    first = world.app.command("oncall --service payments", response_url=url).json()
    assert "Asking PagerDuty" in first["text"]
    assert world.slack.wait_for(lambda: len(world.slack.responses) == 1)
    text = world.slack.responses[0]["text"]
    epoch = int(rotation.timestamp())
    token = f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{rotation.strftime('%Y-%m-%d %H:%M UTC')}>"
    assert f"Current On-Call: Alice Doe (until {token})" in text
    assert f"Next On-Call: Carol Lin ({token})" in text
    assert world.pd.violations == []


# -- escalate and page -----------------------------------------------------------------------------
def _declared_on_payments(world: PagerDutyWorld) -> str:
    world.app.command('declare --sev SEV-2 --title "Payments failing" --service payments')
    world.app.wait_idle()
    return next(i.id for i in world.pd.incidents.values() if i.service_id == "PPAY001")


def test_escalate_from_slack_and_terminal(world: PagerDutyWorld, rotation: datetime) -> None:
    app, pd = world.app, world.pd
    pd_id = _declared_on_payments(world)
    assert pd.incidents[pd_id].assignments == ["PUALICE"]
    answer = app.command("escalate INC-1").json()
    assert "escalating to the next level" in answer["text"]
    app.wait_idle()
    put = _requests(pd, "PUT", f"/incidents/{pd_id}")[-1]
    assert put.json == {"incident": {"type": "incident_reference", "escalation_level": 2}}
    assert put.headers["From"] == "alice@example.com"
    assert pd.incidents[pd_id].assignments == ["PUOPS01"]
    asked = next(e for e in _events(world, "escalate"))
    assert asked.data["notify_channel"] is True and asked.origin == "slack"
    assert any(
        c.args.get("reply_broadcast") in (True, "true", "1") and "Escalation to the next level" in str(c.args.get("text"))
        for c in app.fake.calls_to("chat.postMessage")
    ), "shown in the thread and the channel"
    assert "escalated to level 2: now paging Ops Robot" in (_events(world, "notice")[-1].text or "")

    # PagerDuty reports our escalation: announced once already
    notices = len(_events(world, "notice")) + len(_events(world, "assignment"))
    pd.notify_subscriptions("incident.escalated", pd_id)
    app.wait_idle()
    assert len(_events(world, "notice")) + len(_events(world, "assignment")) == notices

    # the terminal: past the last level is said, not done
    out = world.terminal.ok("escalate", "INC-1", "--level", "2")
    assert "escalating to level 2" in out
    world.terminal.ok("escalate", "INC-1")
    app.wait_idle()
    assert "not escalated: level 3 is past the last level (2) of Payments" in (_events(world, "notice")[-1].text or "")
    world.terminal.ok("escalate", "INC-1", "--level", "1")
    app.wait_idle()
    assert pd.incidents[pd_id].assignments == ["PUALICE"]
    assert [j.status for j in _jobs(world, "escalate")] == [JobStatus.DONE] * 4
    assert pd.violations == [] and pd.response_violations == []


def test_page_from_slack_and_terminal(world: PagerDutyWorld, rotation: datetime) -> None:
    app, pd = world.app, world.pd
    pd_id = _declared_on_payments(world)
    world.terminal.ok("connector", "map-escalation", "prod", "--service", "api", "--escalation-policy", "PESCAPI")
    answer = app.command('page INC-1 --service api --user carol@example.com --message "join the bridge"').json()
    assert "paging api, carol@example.com" in answer["text"]
    app.wait_idle()
    (post,) = _requests(pd, "POST", "/responder_requests")
    assert post.path == f"/incidents/{pd_id}/responder_requests"
    assert post.json == {
        "requester_id": "PUALICE",
        "message": "join the bridge",
        "responder_request_targets": [
            {"responder_request_target": {"id": "PESCAPI", "type": "escalation_policy_reference"}},
            {"responder_request_target": {"id": "PUCAROL", "type": "user_reference"}},
        ],
    }
    paged = _events(world, "page")[0]
    assert paged.data["notify_channel"] is True

    # the terminal, a person PagerDuty does not know and a service by its PagerDuty mapping
    world.terminal.ok("page", "INC-1", "--user", "bob@example.com", "--service", "payments")
    app.wait_idle()
    last = _requests(pd, "POST", "/responder_requests")[-1]
    assert last.json["requester_id"] == "PUOPS01", "the terminal user is no PagerDuty user: the connector's From user asks"
    assert last.json["message"] == "INC-1: Payments failing"
    assert last.json["responder_request_targets"] == [
        {"responder_request_target": {"id": "PESCPAY", "type": "escalation_policy_reference"}}
    ]
    assert "Not paged: bob@example.com (not in PagerDuty)" in [e.text for e in _events(world, "notice")]
    assert len(pd.incidents[pd_id].responder_requests) == 2
    assert pd.violations == [] and pd.response_violations == []


def test_escalate_and_page_refuse_bad_input_and_write_nothing(world: PagerDutyWorld, rotation: datetime) -> None:
    app, pd = world.app, world.pd
    app.runtime.workers.stop()
    app.command('declare --sev SEV-3 --title "Not in PagerDuty yet" --service db')  # its create waits in the outbox
    before = (len(_events(world)), len(_jobs(world, "escalate")) + len(_jobs(world, "page")))

    def refused(*argv: str) -> str:
        ran = world.terminal(*argv)
        assert ran.code == 2, (argv, ran)
        return ran.err

    assert "INC-1 has no PagerDuty incident" in refused("escalate", "INC-1")
    assert "INC-1 has no PagerDuty incident" in app.command("page INC-1 --service api").json()["text"]
    app.runtime.dispatcher.drain()
    assert "escalation level" in refused("escalate", "INC-1", "--level", "0")
    assert "unknown service 'nowhere'" in refused("page", "INC-1", "--service", "nowhere")
    assert "unknown user &lt;@U0NOBODY1&gt;" in app.command("page INC-1 --user <@U0NOBODY1>").json()["text"]
    assert "unknown user 'alice'" in refused("page", "INC-1", "--user", "alice")
    assert "say whom to page" in refused("page", "INC-1")
    assert "INC-9 does not exist" in refused("escalate", "INC-9")
    assert (len(_events(world)), len(_jobs(world, "escalate")) + len(_jobs(world, "page"))) == (
        before[0] + 1,  # the PagerDuty link noticed by the drain, nothing else
        before[1],
    )
    world.app.command('resolve --incident INC-1 --note "fixed"')
    assert "INC-1 is resolved" in refused("escalate", "INC-1")
    assert not _requests(pd, "POST", "/responder_requests")
