"""Steps of one incident that wait behind a held-up Slack reply go out as one thread reply and one root
update, in timeline order, each recorded delivered exactly once (bot/slack/delivery_batch.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time

from bot.app import Im
from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin
from bot.slack.delivery_batch import reply_step
from bot.wiring import build
from tests.fakes.slack_api import BOT_USER_ID, FakeSlack
from tests.harness import make_settings
from tests.test_outbox import dispatcher, jobs

CHANNEL = "C0INCIDENT"
CLI = Actor(Origin.CLI, "carol", "carol")
LATER = timedelta(seconds=30)  # past any retry delay of the first failed try


@pytest.fixture
def im(database_url: str, fake_slack: FakeSlack) -> Iterator[Im]:
    fake_slack.add_member(CHANNEL, BOT_USER_ID)  # to read back its own messages after an unknown outcome
    app = build(make_settings(database_url, fake_slack, IM_SLACK_CHANNEL=CHANNEL, IM_SLACK_TIMEOUT_SECONDS="0.4"))
    yield app
    app.store.dispose()


def declared(im: Im, fake: FakeSlack) -> int:
    incident = im.incidents.declare(title="Checkout errors", severity="SEV-3", services=["shop"], actor=CLI)
    assert incident is not None and incident.id is not None
    dispatcher(im, fake).drain()
    return incident.id


def queue_steps(im: Im, incident_id: int) -> list[str]:
    """Three more steps, a status change among them: the root changes too."""
    im.incidents.add_note(incident_id, "second: rolled back the deploy", actor=CLI)
    im.incidents.transition(incident_id, "acknowledge", actor=CLI)
    im.incidents.add_note(incident_id, "fourth: error rate back to normal", actor=CLI)
    return ["second: rolled back the deploy", "Acknowledged", "fourth: error rate back to normal"]


def steps_recorded_once(im: Im, incident_id: int) -> None:
    _, events = im.incidents.timeline(incident_id)
    for event in events:
        if event.kind != "declared":
            assert outbox.step_done(im.store, reply_step(event.id)) is not None, f"{event.kind} {event.id} not recorded"
    assert {job.status for job in jobs(im)} == {JobStatus.DONE}


def test_steps_queued_behind_a_rate_limited_reply_go_out_as_one_reply_and_one_update(im: Im, fake_slack: FakeSlack) -> None:
    incident_id = declared(im, fake_slack)
    (root,) = fake_slack.messages(CHANNEL)
    posts, updates = len(fake_slack.calls_to("chat.postMessage")), len(fake_slack.calls_to("chat.update"))
    im.incidents.add_note(incident_id, "first: looking at the checkout logs", actor=CLI)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    d = dispatcher(im, fake_slack)
    assert d.drain() == 1, "the first step is refused; the steps behind it wait"
    texts = ["first: looking at the checkout logs", *queue_steps(im, incident_id)]
    with freeze_time(utcnow() + LATER, tick=True):
        d.drain()

    (reply,) = fake_slack.replies(CHANNEL, root.ts)
    where = [reply.text.find(text) for text in texts]
    assert -1 not in where and where == sorted(where), f"every step, in timeline order: {reply.text!r}"
    tried = fake_slack.calls_to("chat.postMessage")[posts:]
    assert [call.http_status for call in tried] == [429, 200], "one refused try, then one reply for four steps"
    assert len(fake_slack.calls_to("chat.update")) == updates + 1, "one root update for all of them"
    assert "mitigated" in fake_slack.messages(CHANNEL)[0].text.lower()
    steps_recorded_once(im, incident_id)
    assert fake_slack.violations == []


def test_a_coalesced_reply_whose_answer_was_lost_is_found_not_posted_again(im: Im, fake_slack: FakeSlack) -> None:
    """The reply went out but its answer never came (the connection dropped): the retry looks for it,
    covers the same steps, and a step queued meanwhile gets a reply of its own."""
    incident_id = declared(im, fake_slack)
    (root,) = fake_slack.messages(CHANNEL)
    im.incidents.add_note(incident_id, "first: looking at the checkout logs", actor=CLI)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    d = dispatcher(im, fake_slack)
    d.drain()
    texts = ["first: looking at the checkout logs", *queue_steps(im, incident_id)]
    fake_slack.inject_faults(seed=1, rate=1.0, methods={"chat.postMessage"}, kinds=("drop",), times=1)
    with freeze_time(utcnow() + LATER, tick=True):
        assert d.run_once() == 1  # posted, answer lost: retried later
        im.incidents.add_note(incident_id, "fifth: queued while the answer was lost", actor=CLI)
    with freeze_time(utcnow() + 2 * LATER, tick=True):
        d.drain()

    replies = fake_slack.replies(CHANNEL, root.ts)
    assert len(replies) == 2, [r.text for r in replies]
    merged, alone = replies
    where = [merged.text.find(text) for text in texts]
    assert -1 not in where and where == sorted(where), merged.text
    assert alone.text.endswith("fifth: queued while the answer was lost") and "first:" not in alone.text
    assert len(fake_slack.calls_to("conversations.replies")) >= 1, "the lost answer was settled by looking"
    steps_recorded_once(im, incident_id)
    assert fake_slack.violations == []


def test_in_the_ordinary_flow_each_step_gets_its_own_reply(im: Im, fake_slack: FakeSlack) -> None:
    incident_id = declared(im, fake_slack)
    (root,) = fake_slack.messages(CHANNEL)
    texts = queue_steps(im, incident_id)
    dispatcher(im, fake_slack).drain()
    replies = fake_slack.replies(CHANNEL, root.ts)
    assert [next(t for t in texts if t in r.text) for r in replies] == texts
    steps_recorded_once(im, incident_id)
