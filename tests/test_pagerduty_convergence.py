"""Rule 8, convergence: whatever the order or duplication of PagerDuty's deliveries, and whatever a timed-out
call did, im and PagerDuty end in the same state. Through the served app and the fake PagerDuty, plus the
pure rules the connector decides with."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.clock import utcnow
from bot.domain.incidents import TRANSITIONS
from bot.domain.models import JobStatus, OutboxJob
from integrations.pagerduty import links, mapping
from tests.pd_support import PagerDutyWorld
from tests.test_pagerduty_e2e import pd, world  # noqa: F401 - fixtures

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
def test_late_create_answer_then_resolve_in_im_links_and_resolves_the_one_incident(world: PagerDutyWorld) -> None:  # noqa: F811
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


def test_creates_through_a_faulty_pagerduty_page_once_and_end_in_ims_state(world: PagerDutyWorld) -> None:  # noqa: F811
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


def _pd_jobs(w: PagerDutyWorld) -> list[OutboxJob]:
    with w.im.store.read() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.destination == "pagerduty:prod").order_by(OutboxJob.id)))


# -- (b) a shuffled, duplicated flood of webhook deliveries ---------------------------------------
def _lifecycle(rng: random.Random) -> list[str]:
    steps = [rng.choice(["acknowledge", "reassign", "escalate"]) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.7:
        steps.append("resolve")
        if rng.random() < 0.3:
            steps += ["reopen", rng.choice(["acknowledge", "reassign", "escalate"])]
    return steps


def _play(fake: Any, rng: random.Random, n: int, start: datetime) -> list[tuple[str, str, str, datetime, dict[str, Any]]]:
    """Run one incident's life in the fake PagerDuty; -> the webhook events it made, each with its data
    as it was at that moment: (event id, type, incident id, occurred_at, data)."""
    at = start
    inc = fake.trigger_incident(service_id=rng.choice(["PDAT001", "PAPI001"]), title=f"flood {n}", created_at=at)
    events = []

    def told(kind: str) -> None:
        data = fake.build_event(f"incident.{kind}", inc.id)["event"]["data"]
        events.append((f"EV{n:03d}{len(events):02d}", f"incident.{kind}", inc.id, at, data))

    told("triggered")
    for step in _lifecycle(rng):
        at += timedelta(seconds=rng.randint(2, 90))
        if step == "acknowledge" and inc.status == "triggered":
            fake.set_incident_status(inc.id, "acknowledged", agent_user_id="PUCAROL", at=at)
            told("acknowledged")
        elif step in ("acknowledge", "reassign"):
            fake.reassign_incident(inc.id, [rng.choice(["PUALICE", "PUCAROL", "PUOPS01"])], agent_user_id="PUCAROL", at=at)
            told("reassigned")
        elif step == "escalate":
            fake.escalate_incident(inc.id, inc.escalation_level % 2 + 1, at=at)
            told("escalated")
        elif step == "resolve":
            fake.set_incident_status(inc.id, "resolved", agent_user_id="PUCAROL", at=at)
            told("resolved")
        elif step == "reopen":
            fake.set_incident_status(inc.id, "triggered", agent_user_id="PUCAROL", at=at)
            told("reopened")
    return events


def test_shuffled_duplicated_flood_converges_on_pagerdutys_final_state(world: PagerDutyWorld) -> None:  # noqa: F811
    app, fake = world.app, world.pd
    fake.escalation_policies["PESC001"].oncall_user_ids.append("PUALICE")
    fake.escalation_policies["PESCAPI"].oncall_user_ids.append("PUOPS01")
    rng = random.Random(20261124)
    start = utcnow().replace(microsecond=0) - timedelta(hours=3)
    events = [e for n in range(50) for e in _play(fake, rng, n, start + timedelta(seconds=7 * n))]
    deliveries = events + rng.sample(events, len(events) // 5)  # 20% delivered twice
    rng.shuffle(deliveries)
    url = f"{world.url}/connectors/prod/webhook"
    secret = world.registry.webhook_secrets(world.registry.get("prod"))
    answers = [
        fake.send_webhook(url, kind, pd_id, secrets=secret, event_id=event_id, occurred_at=at, data=data).status_code
        for event_id, kind, pd_id, at, data in deliveries
    ]
    assert sorted(set(answers)) == [200, 202]
    app.wait_idle(timeout=240)

    finals = {inc.id: inc.status for inc in fake.incidents.values()}
    assert {"triggered", "acknowledged", "resolved"} <= set(finals.values()), "the seed covers every final state"
    by_remote = {link.pd_incident_id: link for link in world.links()}
    assert set(by_remote) == set(finals), "one link per PagerDuty incident"
    assert len(app.im.incidents.search()) == len(finals), "one im incident per PagerDuty incident"
    wrong = []
    for pd_id, pd_status in finals.items():
        link = by_remote[pd_id]
        im_status = app.im.incidents.get(link.incident_id).status
        if (mapping.TO_PAGERDUTY_STATUS[im_status], link.status) != (pd_status, pd_status):
            wrong.append((pd_id, pd_status, im_status, link.status))
    assert wrong == [], f"{len(wrong)} of {len(finals)} did not converge"
    shown = world.terminal.ok("status", "--incident", f"INC-{by_remote[next(iter(finals))].incident_id}")
    assert f" {finals[next(iter(finals))]}" in shown, "the PagerDuty status `im status` shows is PagerDuty's last"
    assert world.writes_to_pd() == [], "nothing that came from PagerDuty goes back"
    assert fake.violations == []
