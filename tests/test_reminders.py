"""Status-update reminders end to end: the served app driven with signed Slack requests at frozen
times, the core's clock task ticked by two replicas on one database, and the nudges the fake Slack
received (addressed to the commander, else the owner; a Snooze button that works over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import freezegun.api
import pytest
from freezegun import freeze_time

from bot.clock import as_utc
from bot.domain.people import PersonRef
from bot.scheduler import Clocks
from bot.slack.render import SNOOZE_ACTION
from bot.wiring import build
from tests.clock_support import ALICE, OWNER, START, at, command, replies, root, tick_at
from tests.clock_support import serve as serve_with
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeMessage, FakeSlack
from tests.harness import AppHarness

NUDGE = ":speech_balloon: <@{user}>: Status update due: nothing posted for {quiet} ({sev}, every {every})"


@pytest.fixture
def app(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    harness = serve_with(database_url, fake_slack, IM_SLA_ACK="", IM_SLA_RESOLVE="", IM_REMINDERS="SEV-1=15m,SEV-2=30m")
    try:
        yield harness
    finally:
        harness.stop()


def nudges(fake: FakeSlack) -> list[FakeMessage]:
    return replies(fake, "Status update due")


def test_one_nudge_per_slot_across_replicas_and_none_within_a_period_after_an_update(
    app: AppHarness, fake_slack: FakeSlack
) -> None:
    with freeze_time(START) as clock:
        command(app, 'declare --sev SEV-1 --title "API down" --service api')
        app.im.incidents.assign(1, PersonRef(slack_user_id=ALICE.id), actor=ALICE)
        other = build(app.settings)  # a second replica on the same database
        replicas = [Clocks(app.im), Clocks(other)]
        try:
            assert tick_at(clock, 899, *replicas) == []
            assert tick_at(clock, 900, *replicas) == ["INC-1 status-update reminder 1"], "every 15m for SEV-1, once"
            assert tick_at(clock, 1000, *replicas) == []
            app.runtime.dispatcher.drain()
            app.im.incidents.set_role(1, "commander", PersonRef(slack_user_id=OWNER), actor=ALICE)
            clock.move_to(at(1200))
            command(app, 'note --incident INC-1 "failing over to eu-west"')
            assert tick_at(clock, 1800, *replicas) == [], "someone posted an update within the period"
            assert tick_at(clock, 2099, *replicas) == []
            assert tick_at(clock, 2100, *replicas) == ["INC-1 status-update reminder 1"], "15m after the note"
            clock.move_to(at(2200))
            command(app, "ack --incident INC-1")  # a status change is an update too; mitigated is still nudged
            assert tick_at(clock, 3099, *replicas) == []
            assert tick_at(clock, 3100, *replicas) == ["INC-1 status-update reminder 1"]
            assert tick_at(clock, 4000, *replicas) == ["INC-1 status-update reminder 2"], "our own nudge is no update"
        finally:
            other.store.dispose()
        app.runtime.dispatcher.drain()
    said = nudges(fake_slack)
    assert [n.text for n in said] == [
        NUDGE.format(user=ALICE.id, quiet="15m", sev="SEV-1", every="15m"),  # the owner, while there is no commander
        NUDGE.format(user=OWNER, quiet="15m", sev="SEV-1", every="15m"),  # then the commander
        NUDGE.format(user=OWNER, quiet="15m", sev="SEV-1", every="15m"),
        NUDGE.format(user=OWNER, quiet="30m", sev="SEV-1", every="15m"),
    ]
    assert not any(n.broadcast for n in said)
    button = (said[0].blocks or [])[1]["elements"][0]
    assert (button["action_id"], button["value"], button["text"]["text"]) == (SNOOZE_ACTION, "INC-1", "Snooze 30 min")
    assert fake_slack.violations == []


def test_snooze_button_over_http_holds_reminders_and_none_come_after_resolve(app: AppHarness, fake_slack: FakeSlack) -> None:
    with freeze_time(START) as clock:
        command(app, 'declare --sev SEV-2 --title "Slow checkout" --service web')
        command(app, 'declare --sev SEV-3 --title "Typo on the status page" --service web')  # no reminders for SEV-3
        clocks = Clocks(app.im)
        assert tick_at(clock, 1800, clocks) == ["INC-1 status-update reminder 1"], "every 30m for SEV-2"
        app.runtime.dispatcher.drain()
        [nudge] = nudges(fake_slack)
        thread = root(fake_slack)

        clock.move_to(at(1900))
        click = sr.block_actions(SNOOZE_ACTION, "INC-1", message_ts=nudge.ts, thread_ts=thread.ts, block_id="reminder_actions")
        answer = app.slack.post(click, timestamp=int(freezegun.api.real_time()))
        assert answer.status_code == 200
        snoozed = app.im.incidents.get(1).reminders_snoozed_until
        assert snoozed is not None and as_utc(snoozed) == at(1900) + timedelta(minutes=30), "written before the ack"
        app.runtime.dispatcher.drain()
        assert tick_at(clock, 3600, clocks) == [], "the next slot falls in the snooze"
        assert tick_at(clock, 3699, clocks) == []
        assert tick_at(clock, 3700, clocks) == ["INC-1 status-update reminder 2"], "the slot due is given when it ends"

        clock.move_to(at(3800))
        command(app, 'resolve --incident INC-1 --note "added an index"')
        assert tick_at(clock, 3800 + 10 * 3600, clocks) == [], "none after resolve (and none for SEV-3)"
        app.runtime.dispatcher.drain()
    assert [r.text for r in replies(fake_slack, "snoozed")] == [
        f":information_source: Status-update reminders snoozed until 10:01 UTC — <@{ALICE.id}>"
    ]
    assert len(nudges(fake_slack)) == 2 and replies(fake_slack, "Status update due", ref="INC-2") == []
    assert fake_slack.violations == []
