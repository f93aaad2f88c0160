"""Storms paced to the vendors' limits, end to end over real HTTP: one PagerDuty key's budget (replicas
sharing it through the database: tests/test_pacing.py), and a Slack channel's posts at Slack's pace with roots in
declaration order. The fakes enforce small budgets; the tests check what they saw, not timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.models import JobStatus, OutboxJob
from bot.pacing import secret_key
from integrations.pagerduty.connection import BUDGET as BUDGET_960
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_limits import SlackLimits
from tests.harness import BOT_TOKEN, AppHarness, make_settings
from tests.pd_support import PD_KEY, PagerDutyWorld, pagerduty_account

CHANNEL = "C0INCIDENT"
BUDGET = (12, 3.0)  # PagerDuty's 960 a minute, scaled down: 12 requests in any 3 seconds
INCIDENTS = 6


def wait_for(done: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the storm did not finish"
        time.sleep(0.1)


def no_dead_jobs(app: AppHarness) -> None:
    with app.im.store.read() as session:
        dead = session.exec(select(OutboxJob).where(OutboxJob.status == JobStatus.DEAD)).all()
    assert not dead, [(j.kind, j.last_error) for j in dead]


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    fake = pagerduty_account()
    fake.budget = BUDGET
    yield fake
    fake.stop()


@pytest.fixture
def paced_world(
    database_url: str,
    fake_slack: FakeSlack,
    pd: FakePagerDuty,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[str], PagerDutyWorld]]:
    """The app and both fakes, with IM_RATE_LIMITS as given."""
    worlds: list[PagerDutyWorld] = []

    def make(rate_limits: str) -> PagerDutyWorld:
        worlds.append(PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys, rate_limits=rate_limits))
        return worlds[-1]

    yield make
    for world in worlds:
        world.stop()


def test_a_storm_stays_within_the_pagerduty_budget(paced_world: Callable[[str], PagerDutyWorld], pd: FakePagerDuty) -> None:
    world = paced_world(f"pagerduty={BUDGET[0]}/{int(BUDGET[1])}s")
    for n in range(1, INCIDENTS + 1):
        assert world.app.command(f'declare --sev SEV-3 --title "storm {n}" --service api').status_code == 200
    wait_for(lambda: len(pd.incidents) == INCIDENTS)
    for n in range(1, INCIDENTS + 1):
        assert world.app.command(f"ack --incident INC-{n}").status_code == 200
        assert world.app.command(f'note --incident INC-{n} "step {n}"').status_code == 200

    def settled() -> bool:
        return all(i.status == "acknowledged" and any("step" in note.content for note in i.notes) for i in pd.incidents.values())

    wait_for(settled)
    world.app.wait_idle(30)

    assert pd.over_budget <= 2, f"{pd.over_budget} requests beyond the budget"
    assert pd.served_per_window() <= BUDGET[0]
    for incident in pd.incidents.values():
        step_notes = [note for note in incident.notes if "step" in note.content]
        assert len(step_notes) == 1, "each note once"
        # per-incident order: created, then acknowledged, then the note
        writes = [r for r in pd.requests if r.status < 300 and r.method in ("PUT", "POST") and incident.id in r.path]
        kinds = [("note" if r.path.endswith("/notes") else "status") for r in writes]
        assert kinds.index("status") < max(i for i, k in enumerate(kinds) if k == "note"), kinds
    assert len({i.incident_key for i in pd.incidents.values()}) == INCIDENTS, "no incident paged twice"
    no_dead_jobs(world.app)
    assert not pd.violations


def test_a_pagerduty_job_spends_a_turn_only_on_the_calls_it_makes(
    paced_world: Callable[[str], PagerDutyWorld], fake_slack: FakeSlack, pd: FakePagerDuty
) -> None:
    """Found by bench/storm.py: each PagerDuty job took its key's turn before it started, so a thread-link note
    retrying while its Slack thread was not posted, and a status the create had pushed already, spent turns
    on calls never made (half the turns of a storm). A job's turn is taken at its first call; a job deferred
    to it has written nothing yet that would send it looking up its own create when it comes back."""
    world = paced_world("pagerduty=200/60s")
    app, pacer = world.app, world.registry.pacer
    key, limit = secret_key("pagerduty", PD_KEY), pacer.limit("pagerduty", BUDGET_960)
    app.runtime.workers.stop()  # deliver by hand, on a frozen clock: no token comes back meanwhile
    fake_slack.fail_next("chat.postMessage", status=503, times=50)  # no Slack thread: the thread link waits
    with freeze_time(utcnow() + timedelta(seconds=5)) as clock:
        pacer.borrow(key, limit)  # the bucket as of now
        before, served = pacer.tokens(key), len(pd.requests)
        assert before is not None and before >= 3
        app.command('declare --sev SEV-3 --title "storm 1" --service api')
        app.command("ack --incident INC-1")  # before the create goes: the create pushes it, its job calls nothing
        app.runtime.dispatcher.drain()
        calls = len(pd.requests) - served
        assert [r.template for r in pd.requests[served:]].count("/incidents") == 1  # the create
        assert next(iter(pd.incidents.values())).status == "acknowledged"
        jobs = {job.kind: job for job in pd_jobs(app)}
        assert jobs["status"].status == JobStatus.DONE
        assert (jobs["thread_link"].status, jobs["thread_link"].attempts) == (JobStatus.PENDING, 1)
        assert pacer.tokens(key) == pytest.approx(before - calls), "a turn for each call made, none for the others"

        pacer.hold_off(key, limit, 20.0)  # the key is busy for a while
        served = len(pd.requests)
        app.command('declare --sev SEV-3 --title "storm 2" --service api')
        app.runtime.dispatcher.drain()
        assert len(pd.requests) == served and len(pd.incidents) == 1, "deferred to its turn"
        assert outbox.step_done(app.im.store, "pd-create:prod:2:api") is None, "nothing noted before the turn"
        clock.tick(25)
        app.runtime.dispatcher.drain()
    assert len(pd.incidents) == 2
    assert not [r for r in pd.requests[served:] if r.method == "GET" and r.template == "/incidents"], "no look-up"
    no_dead_jobs(app)


def pd_jobs(app: AppHarness) -> list[OutboxJob]:
    with app.im.store.read() as session:
        return list(session.exec(select(OutboxJob).where(OutboxJob.destination == "pagerduty:prod").order_by(OutboxJob.id)))


@pytest.fixture
def paced_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, limits=SlackLimits())
    fake.start()
    fake.add_channel(CHANNEL, "incidents", members=["U0LAN0Z89"])
    fake.add_user("U0LAN0Z89", "alice", email="alice@example.com", real_name="Alice Doe")
    yield fake
    fake.stop()


def test_slack_posts_follow_the_channel_pace_roots_in_declaration_order(database_url: str, paced_slack: FakeSlack) -> None:
    """Slack's real pace (about a post a second per channel, chat.update Tier 3), enforced by the fake."""
    app = AppHarness(make_settings(database_url, paced_slack, IM_SLACK_CHANNEL=CHANNEL, IM_RATE_LIMITS=""), paced_slack)
    try:
        for n in range(1, INCIDENTS + 1):
            assert app.command(f'declare --sev SEV-3 --title "storm {n}" --service api').status_code == 200
        for n in range(1, INCIDENTS + 1):
            assert app.command(f"ack --incident INC-{n}").status_code == 200

        def roots() -> list[str]:
            return [m.text for m in paced_slack.messages(CHANNEL)]

        wait_for(
            lambda: len(roots()) == INCIDENTS and all(paced_slack.replies(CHANNEL, m.ts) for m in paced_slack.messages(CHANNEL))
        )
        app.wait_idle(60)

        assert len(paced_slack.rate_limited) <= 2, [c.method for c in paced_slack.rate_limited]
        numbers = [int(text.split("INC-")[1].split()[0].strip(":*")) for text in roots()]
        assert numbers == list(range(1, INCIDENTS + 1)), "roots in declaration order, each once"
        posts = sorted(c.at for c in paced_slack.calls if c.method == "chat.postMessage" and c.at is not None)
        busiest = max(sum(1 for t in posts if start <= t < start + 1.0) for start in posts)
        assert busiest <= SlackLimits().post_burst
        no_dead_jobs(app)
    finally:
        app.stop()


def test_a_root_waits_only_for_earlier_roots_of_its_own_channel(database_url: str, paced_slack: FakeSlack) -> None:
    """Without IM_SLACK_CHANNEL each root goes where its incident was declared, at that channel's own pace:
    a root still waiting its turn in one channel holds back later roots of that channel only."""
    other = "C0OTHER"
    paced_slack.add_channel(other, "payments", members=["U0LAN0Z89"])
    app = AppHarness(make_settings(database_url, paced_slack, IM_RATE_LIMITS="slack.post=1/60s"), paced_slack)
    try:
        app.runtime.workers.stop()  # deliver by hand
        for n, channel in enumerate([CHANNEL, CHANNEL, other], start=1):
            assert app.command(f'declare --sev SEV-3 --title "storm {n}" --service api', channel_id=channel).status_code == 200
        app.runtime.dispatcher.drain()  # INC-1 takes the channel's one post a minute; INC-2 waits its turn

        assert [m.text.split()[0] for m in paced_slack.messages(CHANNEL)] == ["INC-1"]
        assert [m.text.split()[0] for m in paced_slack.messages(other)] == ["INC-3"], "not held back by INC-2"
        assert not paced_slack.rate_limited
    finally:
        app.stop()
