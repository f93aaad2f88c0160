"""The rules of the clocks, without a database: SLA states at their boundaries, reminder slots, the
targets in force, the settings that set them, and how durations read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import human_duration, with_seconds
from bot.config import ConfigError, load_settings
from bot.domain.people import PersonView
from bot.reminders import due_slot
from bot.sla import ClockTimes, clocks, per_kind, tightest
from bot.slack.mrkdwn import date
from bot.slack.render import addressee

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGETS = {"SEV-2": {"ack": 900, "resolve": 3600}}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state(now: float, *, acked: float | None = None, resolved: float | None = None, fraction: float = 0.8) -> dict[str, str]:
    times = ClockTimes("SEV-2", T0, at(acked) if acked is not None else None, at(resolved) if resolved is not None else None)
    return {c.kind: c.state for c in clocks(times, TARGETS, fraction, at(now))}


def test_a_clock_runs_warns_at_its_fraction_and_breaches_only_past_its_target() -> None:
    assert state(0) == {"ack": "running", "resolve": "running"}
    assert state(719)["ack"] == "running"
    assert state(720)["ack"] == "warned", "warned from 80% of 15m on, to the second"
    assert state(900)["ack"] == "warned", "at exactly the target it is not late yet"
    assert state(901)["ack"] == "breached"
    assert state(2879)["resolve"] == "running" and state(2880)["resolve"] == "warned" and state(3601)["resolve"] == "breached"


def test_a_clock_stops_when_acknowledged_or_resolved_and_says_whether_in_time() -> None:
    assert state(5000, acked=900) == {"ack": "met", "resolve": "breached"}, "acknowledged at exactly the target is in time"
    assert state(5000, acked=901, resolved=3600) == {"ack": "breached", "resolve": "met"}
    assert state(5000, resolved=600) == {"ack": "met", "resolve": "met"}, "resolving stops the ack clock too"
    [ack, _] = clocks(ClockTimes("SEV-2", T0, at(270), None), TARGETS, 0.8, at(5000))
    assert (ack.stopped_at, ack.elapsed_seconds, ack.due_at, ack.warning_at) == (at(270), 270, at(900), at(720))


def test_clock_shape_follows_targets_and_fraction() -> None:
    times = ClockTimes("SEV-4", T0, None, None)
    assert clocks(times, TARGETS, 0.8, at(10)) == [], "no target for the severity: no clock"
    only_ack = clocks(ClockTimes("SEV-2", T0, None, None), {"SEV-2": {"ack": 300}}, 1.0, at(299))
    assert [(c.kind, c.warning_at, c.state) for c in only_ack] == [("ack", None, "running")], "fraction 1: no warning"
    assert state(1.0, fraction=0.001)["ack"] == "warned", "the warning time is rounded to the second"


def test_the_tightest_target_wins_per_severity_and_kind() -> None:
    settings = per_kind({"SEV-1": 300, "SEV-2": 900}, {"SEV-1": 14400})
    assert settings == {"SEV-1": {"ack": 300, "resolve": 14400}, "SEV-2": {"ack": 900}}
    connector = {"SEV-2": {"ack": 600, "resolve": 3600}, "SEV-1": {"ack": 900}}
    assert tightest([settings, connector, {}]) == {
        "SEV-1": {"ack": 300, "resolve": 14400},
        "SEV-2": {"ack": 600, "resolve": 3600},
    }


def test_reminder_slots_count_from_the_last_update_and_wait_for_a_snooze() -> None:
    cadence = 900
    assert due_slot(T0, None, cadence, None, at(899)) is None
    slot = due_slot(T0, None, cadence, None, at(900))
    assert slot is not None and (slot.since, slot.number) == (T0, 1)
    later = due_slot(T0, None, cadence, None, at(3 * 900 + 5))
    assert later is not None and later.number == 3, "after missed ticks only the current slot is due"
    assert due_slot(T0, at(600), cadence, None, at(1200)) is None, "a note 10 min ago: nothing due"
    moved = due_slot(T0, at(600), cadence, None, at(1500))
    assert moved is not None and (moved.since, moved.number) == (at(600), 1)
    assert due_slot(T0, None, cadence, at(2000), at(1999)) is None, "snoozed"
    after = due_slot(T0, None, cadence, at(2000), at(2000))
    assert after is not None and after.number == 2, "the slot due when the snooze ends comes at once"


def test_clock_settings_are_read_per_severity() -> None:
    settings = load_settings(
        _env_file=None, IM_SLA_ACK="sev1=2m, SEV-3=off,SEV-4=1d", IM_REMINDERS="", IM_SLA_WARN_FRACTION="0.5"
    )
    assert settings.sla_ack == {"SEV-1": 120, "SEV-4": 86400}
    assert settings.reminders == {}
    assert settings.sla_warn_fraction == 0.5
    defaults = load_settings(_env_file=None)
    assert defaults.sla_ack == {"SEV-1": 300, "SEV-2": 900, "SEV-3": 3600, "SEV-4": 14400}
    assert defaults.sla_resolve == {"SEV-1": 14400, "SEV-2": 28800, "SEV-3": 86400, "SEV-4": 259200}
    assert defaults.reminders == {"SEV-1": 900, "SEV-2": 1800} and defaults.sla_warn_fraction == 0.8


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IM_SLA_ACK", "SEV-9=5m", "invalid setting IM_SLA_ACK: 'SEV-9' is not a severity"),
        ("IM_SLA_RESOLVE", "SEV-1=soon", "invalid setting IM_SLA_RESOLVE: SEV-1: expected a duration such as 30s, 5m, 1h"),
        ("IM_REMINDERS", "SEV-1", "invalid setting IM_REMINDERS: SEV-1: expected a duration"),
        ("IM_SLA_WARN_FRACTION", "0", "invalid setting IM_SLA_WARN_FRACTION"),
        ("IM_SLA_WARN_FRACTION", "1.5", "invalid setting IM_SLA_WARN_FRACTION"),
    ],
)
def test_bad_clock_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **{name: value})
    assert str(caught.value).startswith(message), str(caught.value)


def test_durations_read_as_people_say_them() -> None:
    assert [human_duration(s) for s in (0, 45, 270, 3720, 97205, 259200)] == ["0s", "45s", "4m 30s", "1h 2m", "1d 3h", "3d"]
    assert with_seconds(at(5)) == "2026-03-01 12:00:05 UTC"


def test_notices_address_a_person_by_mention_or_by_escaped_name() -> None:
    assert addressee(PersonView(slack_user_id="U0BOB0001", name="Bob")) == "<@U0BOB0001>"
    assert addressee(PersonView(email="carol@example.com", name="Carol <!channel>")) == "Carol &lt;!channel&gt; (not in Slack)"
    assert addressee(None) == "nobody owns this incident yet"
    assert date(T0) == "<!date^1772366400^{date_short_pretty} {time}|2026-03-01 12:00 UTC>"
