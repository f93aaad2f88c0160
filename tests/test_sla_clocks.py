"""SLA clocks end to end: incidents declared and changed with signed Slack requests into the served app,
the core's clock task ticked under freezegun by two replicas on one database, and what the fake Slack
received: the warning addressed to the owner, the breach in the thread and the channel, and the clock on
the root message (started, stopped, restarted and re-targeted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from freezegun import freeze_time

from bot.domain.people import PersonRef
from bot.scheduler import Clocks
from bot.wiring import build
from tests.clock_support import ALICE, CHANNEL, OWNER, START, at, clock_line, command, date, replies, root, tick_at
from tests.clock_support import serve as serve_with
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness


def serve(database_url: str, fake: FakeSlack) -> AppHarness:
    return serve_with(database_url, fake, IM_SLA_ACK="SEV-2=10m,SEV-3=1h", IM_SLA_RESOLVE="SEV-2=1h,SEV-3=1d", IM_REMINDERS="")


@pytest.fixture
def app(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    harness = serve(database_url, fake_slack)
    try:
        yield harness
    finally:
        harness.stop()


def test_warning_then_breach_exactly_once_across_two_racing_replicas(app: AppHarness, fake_slack: FakeSlack) -> None:
    with freeze_time(START) as clock:
        command(app, 'declare --sev SEV-2 --title "Checkout slow" --service api')
        app.im.incidents.assign(1, PersonRef(slack_user_id=OWNER, name="Bob Roe"), actor=ALICE)
        app.runtime.dispatcher.drain()
        assert clock_line(fake_slack) == f":stopwatch: Ack due {date(at(600))} · :stopwatch: Resolve due {date(at(3600))}"
        other = build(app.settings)  # a second replica on the same database
        replicas = [Clocks(app.im), Clocks(other)]
        try:
            assert tick_at(clock, 479, *replicas) == []
            assert tick_at(clock, 480, *replicas) == ["INC-1 ack SLA warning"], "80% of 10m, to the second, once"
            app.runtime.dispatcher.drain()
            assert tick_at(clock, 600, *replicas) == [], "at exactly the target it is not late yet"
            assert clock_line(fake_slack).startswith(f":hourglass_flowing_sand: Ack due {date(at(600))} · ")
            assert tick_at(clock, 601, *replicas) == ["INC-1 ack SLA breached"]
            assert tick_at(clock, 700, *replicas) == []
        finally:
            other.store.dispose()
        app.runtime.dispatcher.drain()

        [warning] = replies(fake_slack, "SLA warning")
        assert (
            warning.text == f":hourglass_flowing_sand: <@{OWNER}>: SLA warning: Acknowledge by 09:10:00 UTC, target 10m (SEV-2)"
        )
        assert not warning.broadcast, "the warning stays in the thread"
        [breach] = replies(fake_slack, "SLA breached")
        assert breach.text == f":alarm_clock: SLA breached: not acknowledged within 10m (SEV-2) — <@{OWNER}>"
        assert breach.broadcast, "the breach is also shown in the channel"
        assert clock_line(fake_slack).startswith(f":rotating_light: Ack target breached at {date(at(600))} · ")

        clock.move_to(at(630))
        command(app, "ack --incident INC-1")
        assert (
            clock_line(fake_slack)
            == f":x: Acknowledged in 10m 30s (target 10m missed) · :stopwatch: Resolve due {date(at(3600))}"
        )
        clock.move_to(at(1800))
        command(app, 'resolve --incident INC-1 --note "rolled back"')
        assert clock_line(fake_slack) == ":x: Acknowledged in 10m 30s (target 10m missed) · :white_check_mark: Resolved in 30m"
        assert tick_at(clock, 86400, Clocks(app.im)) == [], "a resolved incident's clocks are stopped"
    assert fake_slack.violations == []


def test_a_restart_in_the_middle_of_a_clock_neither_repeats_nor_loses_a_notice(database_url: str, fake_slack: FakeSlack) -> None:
    with freeze_time(START) as clock:
        first = serve(database_url, fake_slack)
        try:
            command(first, 'declare --sev SEV-3 --title "Disk filling" --service storage')
            assert tick_at(clock, 48 * 60, Clocks(first.im)) == ["INC-1 ack SLA warning"]
            first.runtime.dispatcher.drain()
        finally:
            first.stop()
        restarted = serve(database_url, fake_slack)  # a new process: a new Im on the same database
        try:
            clocks = Clocks(restarted.im)
            assert tick_at(clock, 48 * 60, clocks) == [], "the warning was given before the restart"
            assert tick_at(clock, 59 * 60, clocks) == []
            assert tick_at(clock, 3601, clocks) == ["INC-1 ack SLA breached"], "the clock kept running across the restart"
            restarted.runtime.dispatcher.drain()
            [warning] = replies(fake_slack, "SLA warning")
            assert "nobody owns this incident yet" in warning.text
            assert len(replies(fake_slack, "SLA breached")) == 1
        finally:
            restarted.stop()
    assert fake_slack.violations == []


def test_severity_change_retargets_and_reopen_restarts_the_clock(app: AppHarness, fake_slack: FakeSlack) -> None:
    with freeze_time(START) as clock:
        clocks = Clocks(app.im)
        command(app, 'declare --sev SEV-3 --title "Search stale" --service search')
        app.im.incidents.assign(1, PersonRef(slack_user_id=ALICE.id), actor=ALICE)  # the owner may lower a SEV-2
        assert tick_at(clock, 20 * 60, clocks) == [], "SEV-3: an hour to acknowledge"
        command(app, "severity --incident INC-1 --sev SEV-2")
        assert tick_at(clock, 20 * 60, clocks) == ["INC-1 ack SLA breached"], "SEV-2: 10m, long gone (no warning first)"
        app.runtime.dispatcher.drain()
        assert clock_line(fake_slack).startswith(f":rotating_light: Ack target breached at {date(at(600))} · ")
        command(app, "severity --incident INC-1 --sev SEV-3")
        assert clock_line(fake_slack).startswith(f":stopwatch: Ack due {date(at(3600))} · "), "back to the hour"
        assert tick_at(clock, 48 * 60, clocks) == ["INC-1 ack SLA warning"], "a new target: its own warning"
        assert tick_at(clock, 3601, clocks) == ["INC-1 ack SLA breached"], "and its own breach"
        clock.move_to(at(3700))
        command(app, "ack --incident INC-1")
        clock.move_to(at(55 * 60))
        command(app, "resolve --incident INC-1 --note reindexed")
        assert tick_at(clock, 3 * 3600, clocks) == []

        clock.move_to(at(3 * 3600))
        command(app, 'reopen --incident INC-1 --note "stale again"')
        assert (
            clock_line(fake_slack) == f":stopwatch: Ack due {date(at(4 * 3600))} · :stopwatch: Resolve due {date(at(27 * 3600))}"
        )
        view = app.im.describe(app.im.incidents.get(1))
        assert [(c.kind, c.started_at, c.stopped_at) for c in view.sla] == [
            ("ack", at(3 * 3600), None),
            ("resolve", at(3 * 3600), None),
        ]
        assert view.time_to_acknowledge_seconds == 3700, "the first acknowledgement is kept for reports"
        assert tick_at(clock, 3 * 3600 + 48 * 60, clocks) == ["INC-1 ack SLA warning"], "the reopened clock warns again"
        assert tick_at(clock, 4 * 3600 + 1, clocks) == ["INC-1 ack SLA breached"]
        clock.move_to(at(4 * 3600 + 120))
        command(app, "ack --incident INC-1")
        assert clock_line(fake_slack).startswith(":x: Acknowledged in 1h 2m (target 1h missed) · ")
    said = [r.text for r in fake_slack.replies(CHANNEL, root(fake_slack).ts)]
    assert [t for t in said if "SLA" in t] == [
        ":alarm_clock: SLA breached: not acknowledged within 10m (SEV-2) — <@U0LAN0Z89>",
        ":hourglass_flowing_sand: <@U0LAN0Z89>: SLA warning: Acknowledge by 10:00:00 UTC, target 1h (SEV-3)",
        ":alarm_clock: SLA breached: not acknowledged within 1h (SEV-3) — <@U0LAN0Z89>",
        ":hourglass_flowing_sand: <@U0LAN0Z89>: SLA warning: Acknowledge by 13:00:00 UTC, target 1h (SEV-3)",
        ":alarm_clock: SLA breached: not acknowledged within 1h (SEV-3) — <@U0LAN0Z89>",
    ]
    assert fake_slack.violations == []
