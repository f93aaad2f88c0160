"""Slack calls whose outcome is unknown (answered after the client's timeout, or the connection dropped
after the request left) are looked up before they are redone: each message and war room exists once.
Over real HTTP: signed commands into the served app, a fake Slack that carries a call out and answers late."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.app import Im
from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob
from bot.slack.delivery import SlackDelivery, make_client
from bot.slack.models import SlackThread
from bot.wiring import build
from bot.workers import Dispatcher
from tests.fakes.slack_api import BOT_USER_ID, FakeMessage, FakeSlack
from tests.harness import AppHarness, make_settings
from tests.pd_support import Terminal

CHANNEL = "C0INCIDENT"
TIMEOUT = 0.4  # the client's; the fake answers a "late" call after LATE seconds
LATE = 0.8
CLI = Actor(Origin.CLI, "carol", "Carol Lin")


def served(database_url: str, fake: FakeSlack, *, bot_in_channel: bool = True) -> AppHarness:
    if bot_in_channel:  # a bot token reads back only channels the bot is in
        fake.add_member(CHANNEL, BOT_USER_ID)
    settings = make_settings(database_url, fake, IM_SLACK_CHANNEL=CHANNEL, IM_SLACK_TIMEOUT_SECONDS=str(TIMEOUT), IM_WORKERS="3")
    return AppHarness(settings, fake)


@pytest.fixture
def app(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    harness = served(database_url, fake_slack)
    try:
        yield harness
    finally:
        harness.stop()


def markers(messages: list[FakeMessage]) -> list[str | None]:
    return [(m.metadata or {}).get("event_payload", {}).get("key") for m in messages]


def test_late_and_lost_answers_to_posts_never_double_a_message(app: AppHarness) -> None:
    fake = app.fake
    assert fake is not None
    fake.inject_faults(seed=20261123, rate=0.3, methods={"chat.postMessage"}, kinds=("late", "drop"), late_by=LATE)
    n = 5
    for i in range(1, n + 1):
        assert "declared" in app.command(f'declare --sev SEV-3 --title "Outage {i}" --service svc{i}').json()["text"]
    for i in range(1, n + 1):
        app.command(f"note --incident INC-{i} first look at {i}")
        app.command(f"ack --incident INC-{i}")
        app.command(f"note --incident INC-{i} rolled back {i}")
    app.wait_idle(timeout=25)

    kinds = Counter(f.kind for f in fake.faults)
    assert kinds["late"] >= 2 and kinds["drop"] >= 1, kinds  # the seed makes the test mean something
    roots = fake.messages(CHANNEL)
    for i in range(1, n + 1):
        mine = [r for r in roots if re.search(rf"\bINC-{i}\b", r.text)]
        assert len(mine) == 1, f"INC-{i} has {len(mine)} root messages"
        (root,) = mine
        _, events = app.im.incidents.timeline(i)
        steps = [e for e in events if e.kind != "declared"]
        replies = fake.replies(CHANNEL, root.ts)
        assert len(steps) == 3
        # steps held up behind a failed try may share its reply (coalesced): each is in exactly one reply
        for said in (f"first look at {i}", "Acknowledged", f"rolled back {i}"):
            assert sum(said in r.text for r in replies) == 1, (said, [r.text for r in replies])
            assert sum(r.text.count(said) for r in replies) == 1, (said, [r.text for r in replies])
        assert markers([root]) == [f"slack-root:{i}"]
        mine_markers = markers(replies)
        assert len(set(mine_markers)) == len(mine_markers) and set(mine_markers) <= {f"slack-reply:{e.id}" for e in steps}
        assert all(outbox.step_done(app.im.store, f"slack-reply:{e.id}") for e in steps)
        with app.im.store.read() as session:
            thread = session.get(SlackThread, i)
        assert thread is not None and thread.ts == root.ts
    with app.im.store.read() as session:
        assert outbox.dead_jobs(session) == []
    # only a retried post is looked for; every look-up asks for the markers
    looks = fake.calls_to("conversations.history") + fake.calls_to("conversations.replies")
    assert 0 < len(looks) <= len(fake.faults) * 2, (len(looks), kinds)
    assert all(c.args.get("include_all_metadata") in (True, "true", "1") for c in looks)
    assert fake.violations == []


def test_refused_posts_are_retried_once_each_after_a_look(app: AppHarness) -> None:
    """429, 500 and an HTML 503: the step was noted unsure before the request left (a 500 may still have
    posted: Slack's internal_error), so each retry looks once, finds nothing, and posts once."""
    fake = app.fake
    assert fake is not None
    fake.inject_faults(seed=5, rate=1.0, methods={"chat.postMessage"}, kinds=("429", "500", "503"), times=2)
    app.command('declare --sev SEV-3 --title "Refused twice" --service web')
    app.wait_idle(timeout=20)
    assert len(fake.faults) == 2
    assert markers(fake.messages(CHANNEL)) == ["slack-root:1"]
    assert len(fake.calls_to("conversations.history")) == 2, "one look before each retry"
    assert fake.violations == []


def test_war_room_create_answered_late_is_adopted_not_doubled(app: AppHarness) -> None:
    fake = app.fake
    assert fake is not None
    fake.inject_faults(seed=1, rate=1.0, methods={"conversations.create"}, kinds=("late",), late_by=LATE, times=1)
    app.command('declare --sev SEV-1 --title "Payments down" --service payments')
    app.wait_idle(timeout=20)

    assert [f.kind for f in fake.faults] == ["late"]
    rooms = [c for c in fake.channels.values() if c.name.startswith("inc-1-")]
    assert [r.name for r in rooms] == ["inc-1-payments-down"], "the timed-out create made the room; no -2"
    (room,) = rooms
    # the first create was carried out (its answer came too late to be read), the retry found the name taken
    assert [c.response.get("error") for c in fake.calls_to("conversations.create")] == [None, "name_taken"]
    assert fake.calls_to("conversations.list"), "looked the room up by name"
    with app.im.store.read() as session:
        thread = session.get(SlackThread, 1)
    assert thread is not None and thread.war_room == room.id and thread.war_room_name == room.name
    assert markers(fake.messages(room.id)) == ["slack-war-room-hello:1"]
    root = fake.messages(CHANNEL)[0]
    assert [r for r in fake.replies(CHANNEL, root.ts) if f"<#{room.id}>" in r.text]
    assert "U0LAN0Z89" in room.members  # the declarer, invited into the adopted room
    assert fake.violations == []


def test_a_taken_name_that_is_not_ours_gets_the_next_suffix(app: AppHarness) -> None:
    fake = app.fake
    assert fake is not None
    fake.add_channel("C0TAKEN01", "inc-1-payments-down")  # someone else's (created by USLACKBOT)
    app.command('declare --sev SEV-1 --title "Payments down" --service payments')
    app.wait_idle(timeout=20)
    assert fake.find_channel_by_name("inc-1-payments-down-2") is not None
    with app.im.store.read() as session:
        thread = session.get(SlackThread, 1)
    assert thread is not None and thread.war_room_name == "inc-1-payments-down-2"
    assert fake.violations == []


def test_unknown_outcome_in_a_public_channel_the_bot_is_not_in_joins_and_adopts(database_url: str, fake_slack: FakeSlack) -> None:
    """The bot posts to the public incidents channel without being a member (chat:write.public); to look
    for its own message after a late answer it joins, reads, and adopts the post: one root, no dead job."""
    app = served(database_url, fake_slack, bot_in_channel=False)
    try:
        fake_slack.inject_faults(seed=3, rate=1.0, methods={"chat.postMessage"}, kinds=("late",), late_by=LATE, times=1)
        app.command('declare --sev SEV-3 --title "Quiet channel" --service web')
        app.wait_idle(timeout=20)
        assert markers(fake_slack.messages(CHANNEL)) == ["slack-root:1"]  # the late post went through, once
        assert len(fake_slack.calls_to("conversations.join")) == 1
        with app.im.store.read() as session:
            assert outbox.dead_jobs(session) == []
            assert session.get(SlackThread, 1).ts == fake_slack.messages(CHANNEL)[0].ts
        assert fake_slack.violations == []
    finally:
        app.stop()


# -- a look-up Slack cannot answer yet is transient: it never dead-letters the job ------------------
@pytest.fixture
def lone_im(database_url: str, fake_slack: FakeSlack) -> Iterator[Im]:
    """The app's Slack delivery driven by a dispatcher of the test's own (no workers): the test turns the clock."""
    fake_slack.add_member(CHANNEL, BOT_USER_ID)
    settings = make_settings(database_url, fake_slack, IM_SLACK_CHANNEL=CHANNEL, IM_SLACK_TIMEOUT_SECONDS=str(TIMEOUT))
    im = build(settings)
    yield im
    im.store.dispose()


def _deliver_until_settled(im: Im, rounds: int = 40) -> OutboxJob:
    """Run the dispatcher (default policy: 8 ordinary attempts) with the clock moved past each retry's delay."""
    dispatcher = Dispatcher(im.store, {"slack": SlackDelivery(im, make_client(im.settings))})
    with freeze_time(utcnow(), tick=True) as clock:
        for _ in range(rounds):
            dispatcher.run_once()
            with im.store.read() as session:
                (job,) = session.exec(select(OutboxJob)).all()
            if job.status in (JobStatus.DONE, JobStatus.DEAD):
                return job
            clock.tick(600)
    raise AssertionError(f"job still {job.status} after {rounds} rounds: {job.last_error}")


def test_a_lookup_slack_cannot_answer_is_retried_on_the_rate_limited_budget(lone_im: Im, fake_slack: FakeSlack) -> None:
    """The root's post is carried out but answered too late; then the look for it in the channel times out,
    drops, and meets 500s and an HTML 503, more times than a job's 8 ordinary attempts. Each failed look is
    transient: the job is not dead-lettered, the look that finally gets an answer adopts the post."""
    lone_im.incidents.declare(title="Slow look", severity="SEV-3", services=["web"], actor=CLI)
    # draw_fault comes first: the post answered late, then five looks carried out but never answered
    fake_slack.inject_faults(
        seed=7, rate=1.0, methods={"chat.postMessage", "conversations.history"}, kinds=("late", "drop"), late_by=LATE, times=6
    )
    # a look answered late is carried out, so it takes its turn of these too: looks 6-8 get a 500, 9-12 a 503
    fake_slack.fail_next("conversations.history", status=500, times=8)
    fake_slack.fail_next("conversations.history", status=503, times=4)
    job = _deliver_until_settled(lone_im)

    assert job.status == JobStatus.DONE, job.last_error
    assert [f.method for f in fake_slack.faults][0] == "chat.postMessage"
    assert markers(fake_slack.messages(CHANNEL)) == ["slack-root:1"], "adopted, not posted again"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    looks = fake_slack.calls_to("conversations.history")
    # every try was refused transiently (the late post, 12 looks): none spent the 8 ordinary attempts
    assert len(looks) == 13 and job.attempts == 14 and job.rate_limited_attempts == 13, (len(looks), job.attempts)
    with lone_im.store.read() as session:
        assert session.get(SlackThread, 1).ts == fake_slack.messages(CHANNEL)[0].ts
    assert fake_slack.violations == []


def test_a_war_room_lookup_slack_cannot_answer_is_retried_on_the_rate_limited_budget(lone_im: Im, fake_slack: FakeSlack) -> None:
    """conversations.create carried out but answered late; the retry finds the name taken and looks the room
    up by name, and conversations.list fails more times than 8 ordinary attempts: one room, adopted."""
    lone_im.incidents.declare(title="Payments down", severity="SEV-1", services=["payments"], actor=CLI)
    fake_slack.inject_faults(seed=1, rate=1.0, methods={"conversations.create"}, kinds=("late",), late_by=LATE, times=1)
    fake_slack.fail_next("conversations.list", status=500, times=10)
    job = _deliver_until_settled(lone_im)

    assert job.status == JobStatus.DONE, job.last_error
    assert [c.name for c in fake_slack.channels.values() if c.name.startswith("inc-1-")] == ["inc-1-payments-down"]
    assert len(fake_slack.calls_to("conversations.list")) == 11
    assert job.rate_limited_attempts == 11, "the late create and 10 failed looks: all transient"
    assert fake_slack.violations == []


def test_a_post_retried_long_after_its_first_try_is_looked_for_around_its_own_try(lone_im: Im, fake_slack: FakeSlack) -> None:
    """First try: a 500 (noted unsure: Slack may have posted). The retry comes 10 minutes later (a long
    backoff), looks, finds nothing, posts, and its answer comes too late. The third try must look around
    the second try, not the first: one root, never two."""
    lone_im.incidents.declare(title="Late retry", severity="SEV-3", services=["web"], actor=CLI)
    dispatcher = Dispatcher(lone_im.store, {"slack": SlackDelivery(lone_im, make_client(lone_im.settings))})
    fake_slack.fail_next("chat.postMessage", status=500)
    with freeze_time(utcnow(), tick=True) as clock:
        assert dispatcher.run_once() == 1
        clock.tick(600)
        fake_slack.inject_faults(seed=1, rate=1.0, methods={"chat.postMessage"}, kinds=("late",), late_by=LATE, times=1)
        assert dispatcher.run_once() == 1
        assert [f.kind for f in fake_slack.faults] == ["late"] and len(fake_slack.messages(CHANNEL)) == 1
        clock.tick(600)
        assert dispatcher.run_once() == 1
    with lone_im.store.read() as session:
        (job,) = session.exec(select(OutboxJob)).all()
        thread = session.get(SlackThread, 1)
    assert job.status == JobStatus.DONE, job.last_error
    assert markers(fake_slack.messages(CHANNEL)) == ["slack-root:1"], "the late post adopted, not posted again"
    assert thread is not None and thread.ts == fake_slack.messages(CHANNEL)[0].ts
    assert len(fake_slack.calls_to("conversations.history")) == 2, "one look before each retry"


def test_unknown_outcome_in_a_private_channel_the_bot_cannot_read_is_dead_lettered_with_the_fix_and_retried_looking_first(
    database_url: str, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The root's post is carried out but answered too late, and the look for it cannot be made: a private
    channel cannot be joined, and posting again could double the message, so the job stops and says what to
    do. Once the bot is invited, `im outbox retry` gives it a second chance, and that try still looks first
    (the unsure note outlives the dead letter): the late post is adopted, one root."""
    app = served(database_url, fake_slack, bot_in_channel=False)
    fake_slack.channels[CHANNEL].is_private = True
    try:
        fake_slack.inject_faults(seed=3, rate=1.0, methods={"chat.postMessage"}, kinds=("late",), late_by=LATE, times=1)
        app.command('declare --sev SEV-3 --title "Quiet channel" --service web')
        app.wait_idle(timeout=20)
        with app.im.store.read() as session:
            (dead,) = outbox.dead_jobs(session)
        assert "invite the bot to the channel" in (dead.last_error or "")
        assert markers(fake_slack.messages(CHANNEL)) == ["slack-root:1"]

        fake_slack.add_member(CHANNEL, BOT_USER_ID)  # the operator does what the dead letter says
        looks_before = len(fake_slack.calls_to("conversations.history"))
        im = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": database_url})
        assert f"job {dead.id} (slack timeline_event, INC-1) queued again" in im.ok("outbox", "retry", str(dead.id))
        app.wait_idle(timeout=20)

        with app.im.store.read() as session:
            assert outbox.dead_jobs(session) == []
            assert session.get(OutboxJob, dead.id).status == JobStatus.DONE
            thread = session.get(SlackThread, 1)
        assert markers(fake_slack.messages(CHANNEL)) == ["slack-root:1"], "looked, found, adopted: never posted twice"
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
        assert len(fake_slack.calls_to("conversations.history")) == looks_before + 1
        assert thread is not None and thread.ts == fake_slack.messages(CHANNEL)[0].ts
        assert fake_slack.violations == []
    finally:
        app.stop()
