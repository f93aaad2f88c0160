"""Rule 8, convergence: whatever the order or duplication of PagerDuty's deliveries, and whatever a timed-out
call did, im and PagerDuty end in the same state. Through the served app and the fake PagerDuty, plus the
pure rules the connector decides with."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.clock import utcnow
from bot.domain.incidents import TRANSITIONS
from bot.domain.models import JobStatus, OutboxJob
from integrations.pagerduty import links, mapping
from integrations.pagerduty.outbound import OUR_NOTE_MARK
from tests.fakes.pagerduty_api import FakeIncident
from tests.fault_support import flood_deliveries, flood_mismatches, send
from tests.pd_support import PagerDutyWorld
from tests.test_pagerduty_e2e import pd  # noqa: F401 - fixtures (world: conftest)

PD_STATUSES = ("triggered", "acknowledged", "resolved")
IM_STATUSES = ("open", "mitigated", "resolved", "closed")


# -- the pure rules -------------------------------------------------------------------------------
@pytest.mark.parametrize("im_status", IM_STATUSES)
@pytest.mark.parametrize("pd_status", PD_STATUSES)
def test_every_pagerduty_status_is_reachable_from_every_im_status(im_status: str, pd_status: str) -> None:
    status = im_status
    for verb in mapping.steps_towards(im_status, pd_status):
        rule = TRANSITIONS[verb]
        assert status in {s.value for s in rule.allowed_from}, (im_status, pd_status, verb)
        status = rule.target.value
    assert mapping.TO_PAGERDUTY_STATUS[status] == pd_status


def test_resolved_in_im_then_acknowledged_in_pagerduty_reopens_and_acknowledges() -> None:
    assert mapping.steps_towards("resolved", "acknowledged") == ["reopen", "acknowledge"]
    assert mapping.steps_towards("mitigated", "acknowledged") == []
    assert mapping.steps_towards("open", None) == []


def test_a_report_replaces_what_we_know_only_when_it_is_not_older() -> None:
    t = datetime(2026, 1, 1, 12, 0, 5, 400_000, tzinfo=UTC)
    assert links.is_newer(t, None)
    assert links.is_newer(t + timedelta(seconds=1), t)
    assert not links.is_newer(t - timedelta(seconds=1), t)
    assert links.is_newer(t.replace(microsecond=0), t), "to the second, as PagerDuty's REST times are"
    assert not links.is_newer(None, t)


# -- (a) a create answered after the client's timeout, then resolved in im ----------------------
def test_late_create_answer_then_resolve_in_im_links_and_resolves_the_one_incident(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    world.registry.configure("prod", lambda data: data.__setitem__("request_timeout", "1s"))
    app.runtime.workers.stop()  # deliver by hand
    fake.answer_late(times=2, by=1.6, path_prefix="/incidents", method="POST")
    app.command('declare --sev SEV-2 --title "Payments timing out" --service api')
    app.runtime.dispatcher.drain()
    create = _pd_jobs(world)[0]
    assert create.kind == "create" and create.status == JobStatus.PENDING, "both tries timed out: outcome unknown"
    assert len(fake.incidents) == 1, "yet PagerDuty did create it"
    assert world.links(1) == [] or world.links(1)[0].pd_incident_id is None

    app.command('resolve --incident INC-1 --note "rolled back the deploy"')
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(6):
            clock.tick(700)
            app.runtime.dispatcher.drain()
    assert len(fake.incidents) == 1, "looked up by its incident_key, not created again"
    remote = next(iter(fake.incidents.values()))
    assert (remote.status, remote.resolution) == ("resolved", "rolled back the deploy")
    [link] = world.links(1)
    assert (link.pd_incident_id, link.status) == (remote.id, "resolved")
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}
    assert fake.violations == []


def test_creates_through_a_faulty_pagerduty_page_once_and_end_in_ims_state(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    world.registry.configure("prod", lambda data: data.__setitem__("request_timeout", "1s"))
    app.runtime.workers.stop()
    fake.fail_share(0.4, seed=3, late_by=1.4, path_prefix="/incidents")
    for n in range(8):
        app.command(f'declare --sev SEV-3 --title "flaky {n}" --service {("db", "api")[n % 2]}')
    app.runtime.dispatcher.drain()
    unsettled = {j.incident_id for j in _pd_jobs(world) if j.kind == "create" and j.status != JobStatus.DONE}
    assert unsettled, "the seed leaves some creates with an unknown outcome"
    for n in sorted(unsettled | {1, 4}):
        app.command(f'resolve --incident INC-{n} --note "fixed {n}"')
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(12):
            clock.tick(700)
            app.runtime.dispatcher.drain()
    assert len({mode for mode, _, _ in fake.faults}) >= 3, fake.faults  # which ones depends on the client's jitter
    for n in range(1, 9):
        key = f"im:prod:INC-{n}:{('db', 'api')[(n - 1) % 2]}"
        paged = [i for i in fake.incidents.values() if i.incident_key == key]
        im_status = app.im.incidents.get(n).status
        assert len(paged) == (1 if im_status == "open" else len(paged)) and len(paged) <= 1, f"INC-{n} paged once at most"
        for remote in paged:
            [link] = world.links(n)
            assert (link.pd_incident_id, link.status) == (remote.id, remote.status), f"INC-{n} linked"
            assert remote.status == mapping.TO_PAGERDUTY_STATUS[im_status], f"INC-{n} in im's state"
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}


def test_late_reopen_create_then_resolve_in_im_brings_the_new_incident_to_ims_state(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    world.registry.configure("prod", lambda data: data.__setitem__("request_timeout", "1s"))
    app.runtime.workers.stop()
    app.command('declare --sev SEV-3 --title "Cache stampede" --service api')
    app.runtime.dispatcher.drain()
    app.command('resolve --incident INC-1 --note "warmed the cache"')
    app.runtime.dispatcher.drain()
    [first] = fake.incidents.values()
    assert first.status == "resolved"
    fake.answer_late(times=2, by=1.6, path_prefix="/incidents", method="POST")
    app.command('reopen --incident INC-1 --note "errors are back"')
    app.runtime.dispatcher.drain()
    assert len(fake.incidents) == 2, "the reopen paged again, but its answer came too late to be read"
    assert [j.status for j in _pd_jobs(world) if j.kind == "status"][-1] == JobStatus.PENDING

    app.command('resolve --incident INC-1 --note "it was the cache again"')
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(6):
            clock.tick(700)
            app.runtime.dispatcher.drain()
    assert len(fake.incidents) == 2, "looked up by its generation's key, not paged a third time"
    second = next(i for i in fake.incidents.values() if i.id != first.id)
    assert second.incident_key and second.incident_key.startswith("im:prod:INC-1:api:r")
    assert second.status == "resolved", "im resolved the incident: the reopen's PagerDuty incident follows"
    [link] = world.links(1)
    assert (link.pd_incident_id, link.status) == (second.id, "resolved")
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}
    assert fake.violations == []


def test_note_answered_late_is_found_not_posted_again(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    world.registry.configure("prod", lambda data: data.__setitem__("request_timeout", "1s"))
    app.runtime.workers.stop()
    app.command('declare --sev SEV-2 --title "Replica lag" --service db')
    app.runtime.dispatcher.drain()
    [remote] = fake.incidents.values()
    fake.answer_late(times=1, by=1.6, path_prefix="/incidents/", method="POST")
    app.command("note --incident INC-1 failing over to the standby")
    app.runtime.dispatcher.drain()
    assert [j.status for j in _pd_jobs(world) if j.kind == "note"] == [JobStatus.PENDING], "outcome unknown"
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(3):
            clock.tick(700)
            app.runtime.dispatcher.drain()
    ours = [n for n in remote.notes if "failing over to the standby" in n.content]
    assert len(ours) == 1, [n.content for n in remote.notes]
    assert ours[0].content.endswith(OUR_NOTE_MARK)
    assert [r.method for r in fake.requests if r.path == f"/incidents/{remote.id}/notes"] == ["POST", "GET"]
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}
    assert fake.violations == []


def test_our_acknowledgement_read_back_after_a_resolve_in_im_does_not_reopen_it(world: PagerDutyWorld) -> None:
    """im acknowledges, then resolves; the acknowledgement reaches PagerDuty after the resolve (a backlog,
    a restart) and reconciliation reads it back before the resolve is delivered. It is our own echo: held
    until the resolve is out, then settled from a fresh read, never applied as a reopen."""
    app, fake = world.app, world.pd
    remote = _declared_by_hand(world, "Queue backlog", "api")
    with freeze_time(utcnow() + timedelta(seconds=2)) as clock:
        app.command("ack --incident INC-1")
        clock.tick(2)
        app.command('resolve --incident INC-1 --note "drained"')
        clock.tick(2)
        while not [j for j in _pd_jobs(world) if j.kind == "status" and j.status == JobStatus.DONE]:
            assert app.runtime.dispatcher.run_once(), "the acknowledgement is delivered first"
        assert remote.status == "acknowledged", "PagerDuty acknowledged after im resolved"
        clock.tick(2)
        world.ticker.reconciler.sync("prod")
        assert app.im.incidents.get(1).status == "resolved", "our own acknowledgement, read back, is no news"
        clock.tick(2)
        app.runtime.dispatcher.drain()
    assert (remote.status, app.im.incidents.get(1).status) == ("resolved", "resolved")
    _, events = app.im.incidents.timeline(1)
    assert [e.data["verb"] for e in events if e.kind == "status"] == ["acknowledge", "resolve"]
    assert [link.status for link in world.links(1)] == ["resolved"]
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}
    assert fake.violations == []


def test_a_change_in_pagerduty_while_ims_own_waits_is_taken_in_after_it(world: PagerDutyWorld) -> None:
    """Held is not dropped: PagerDuty resolved while im's acknowledgement waited; once that is out (PagerDuty
    cannot be acknowledged again once resolved here: it is skipped), the settle job reads PagerDuty and im resolves."""
    app, fake = world.app, world.pd
    remote = _declared_by_hand(world, "Disk full", "db")
    with freeze_time(utcnow() + timedelta(seconds=2)) as clock:
        app.command("ack --incident INC-1")
        clock.tick(2)
        fake.set_incident_status(remote.id, "resolved", agent_user_id="PUCAROL")
        clock.tick(2)
        world.ticker.reconciler.sync("prod")
        assert app.im.incidents.get(1).status == "mitigated", "held while im's acknowledgement waits"
        app.runtime.dispatcher.drain()
    assert (remote.status, app.im.incidents.get(1).status) == ("resolved", "resolved")
    assert [link.status for link in world.links(1)] == ["resolved"]
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}
    assert [j.kind for j in _in_jobs(world)] == ["settle"]


def test_page_answered_late_is_looked_up_not_asked_again(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    world.registry.configure("prod", lambda data: data.__setitem__("request_timeout", "1s"))
    remote = _declared_by_hand(world, "Checkout errors", "api")
    fake.answer_late(times=1, by=1.6, path_prefix=f"/incidents/{remote.id}/responder_requests", method="POST")
    app.command('page INC-1 --user carol@example.com --message "join the bridge"')
    app.runtime.dispatcher.drain()
    assert [j.status for j in _pd_jobs(world) if j.kind == "page"] == [JobStatus.PENDING], "outcome unknown"
    assert len(remote.responder_requests) == 1, "yet PagerDuty did ask"
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(3):
            clock.tick(700)
            app.runtime.dispatcher.drain()
    assert len(remote.responder_requests) == 1, "found among the incident's responder requests, not asked twice"
    assert [r.method for r in fake.requests if "/responder_requests" in r.path] == ["POST"]
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}
    assert fake.violations == [] and fake.response_violations == []


def test_escalation_answered_late_is_not_escalated_again(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    fake.add_escalation_policy("PESC003", "Three levels", oncall_user_ids=["PUOPS01", "PUALICE", "PUCAROL"])
    fake.add_service("PTRI001", "Three Service", "PESC003")
    world.terminal.ok("connector", "map-service", "prod", "--im-service", "tri", "--pd-service", "PTRI001")
    world.terminal.ok("connector", "map-escalation", "prod", "--service", "tri", "--escalation-policy", "PESC003")
    world.registry.configure("prod", lambda data: data.__setitem__("request_timeout", "1s"))
    remote = _declared_by_hand(world, "Login loop", "tri")
    assert remote.assignments == ["PUOPS01"]
    fake.answer_late(times=2, by=1.6, path_prefix=f"/incidents/{remote.id}", method="PUT")
    app.command("escalate INC-1")
    app.runtime.dispatcher.drain()
    assert [j.status for j in _pd_jobs(world) if j.kind == "escalate"] == [JobStatus.PENDING], "outcome unknown"
    assert (remote.escalation_level, remote.assignments) == (2, ["PUALICE"]), "yet PagerDuty escalated"
    with freeze_time(utcnow() + timedelta(seconds=1)) as clock:
        for _ in range(3):
            clock.tick(700)
            app.runtime.dispatcher.drain()
    assert (remote.escalation_level, remote.assignments) == (2, ["PUALICE"]), "found at level 2, not escalated to 3"
    _, events = app.im.incidents.timeline(1)
    assert "escalated to level 2: now paging Alice Doe" in [e.text for e in events if e.kind == "notice"][-1]
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}


def _declared_by_hand(world: PagerDutyWorld, title: str, service: str) -> FakeIncident:
    """INC-1 declared and paged, the workers stopped: from here the test delivers jobs itself."""
    world.app.runtime.workers.stop()
    world.app.command(f'declare --sev SEV-3 --title "{title}" --service {service}')
    world.app.runtime.dispatcher.drain()
    [remote] = world.pd.incidents.values()
    return remote


def _in_jobs(w: PagerDutyWorld) -> list[OutboxJob]:
    with w.im.store.read() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.destination == "pagerduty-in:prod").order_by(OutboxJob.id)))


def _pd_jobs(w: PagerDutyWorld) -> list[OutboxJob]:
    with w.im.store.read() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.destination == "pagerduty:prod").order_by(OutboxJob.id)))


# -- (b) a shuffled, duplicated flood of webhook deliveries ---------------------------------------
def test_shuffled_duplicated_flood_converges_on_pagerdutys_final_state(world: PagerDutyWorld) -> None:
    app, fake = world.app, world.pd
    rng = random.Random(20261124)
    deliveries = flood_deliveries(fake, rng, 50, start=utcnow().replace(microsecond=0) - timedelta(hours=3))
    url = f"{world.url}/connectors/prod/webhook"
    answers = send(fake, url, world.registry.webhook_secrets(world.registry.get("prod")), deliveries)
    assert sorted(answers) == [200, 202]
    app.wait_idle(timeout=240)

    finals = {inc.id: inc.status for inc in fake.incidents.values()}
    assert {"triggered", "acknowledged", "resolved"} <= set(finals.values()), "the seed covers every final state"
    by_remote = {link.pd_incident_id: link for link in world.links()}
    assert set(by_remote) == set(finals), "one link per PagerDuty incident"
    assert len(app.im.incidents.search()) == len(finals), "one im incident per PagerDuty incident"
    wrong = flood_mismatches(app.im, fake, world.links())
    assert wrong == [], f"{len(wrong)} of {len(finals)} did not converge"
    shown = world.terminal.ok("status", "--incident", f"INC-{by_remote[next(iter(finals))].incident_id}")
    assert f" {finals[next(iter(finals))]}" in shown, "the PagerDuty status `im status` shows is PagerDuty's last"
    assert world.writes_to_pd() == [], "nothing that came from PagerDuty goes back"
    assert fake.violations == []


# -- (c) a sync that reads PagerDuty before our newer status change has reached it ---------------
def test_a_sync_before_our_status_change_reaches_pagerduty_does_not_undo_it(world: PagerDutyWorld) -> None:
    """Found by bench/storm.py: paged, then acknowledged and resolved in im; a sync that runs while those
    status changes still wait in the outbox (paced, or PagerDuty down) reads "triggered": that is older than
    what im knows and must not reopen the incident (nor may a late webhook of our own acknowledge)."""
    app, fake = world.app, world.pd
    app.runtime.workers.stop()  # deliver by hand
    app.command('declare --sev SEV-3 --title "Queue backed up" --service api')
    app.runtime.dispatcher.drain()
    remote = next(iter(fake.incidents.values()))
    assert remote.status == "triggered"
    app.command("ack --incident INC-1")
    app.command('resolve --incident INC-1 --note "drained the queue"')  # their jobs wait: not drained yet

    world.terminal.ok("connector", "sync", "prod")
    assert app.im.incidents.get(1).status == "resolved", "PagerDuty's older state did not reopen it"

    app.runtime.dispatcher.drain()
    assert remote.status == "resolved"
    assert app.im.incidents.get(1).status == "resolved"
    assert {j.status for j in _pd_jobs(world)} == {JobStatus.DONE}


def test_the_incidents_changes_reach_pagerduty_while_the_slack_thread_link_waits(world: PagerDutyWorld) -> None:
    """Found by bench/storm.py: the note linking the Slack thread waits for the thread (Slack's pace, or an
    outage); it must not hold back the incident's later changes to PagerDuty, which owe Slack nothing."""
    app, fake = world.app, world.pd
    app.runtime.workers.stop()  # deliver by hand
    world.slack.fail_next("chat.postMessage", status=503, times=10)  # no Slack thread for now
    app.command('declare --sev SEV-3 --title "Queue backed up" --service api')
    app.runtime.dispatcher.drain()
    remote = next(iter(fake.incidents.values()))
    assert [j.kind for j in _pd_jobs(world) if j.status == JobStatus.PENDING] == ["thread_link"]

    app.command('resolve --incident INC-1 --note "drained the queue"')
    app.runtime.dispatcher.drain()
    assert remote.status == "resolved", "not held back behind the thread link"
    assert [j.kind for j in _pd_jobs(world) if j.status == JobStatus.PENDING] == ["thread_link"]
