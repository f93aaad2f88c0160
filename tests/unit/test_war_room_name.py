"""War-room channel names: Slack's rules (lowercase letters, digits, dashes; at most 80 characters)."""

from __future__ import annotations

import re

import pytest

from bot.slack.delivery import war_room_name

SLACK_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # no leading, trailing or doubled dash


@pytest.mark.parametrize(
    ("ref", "title", "attempt", "name"),
    [
        ("INC-12", "DB primary down", 0, "inc-12-db-primary-down"),
        ("INC-12", "  Payments: 502s / EU & US!! ", 0, "inc-12-payments-502s-eu-us"),
        ("INC-3", "Caf\u00e9 orders \u2615 failing", 0, "inc-3-caf-orders-failing"),  # letters Slack may refuse are dropped
        ("INC-3", "\u6570\u636e\u5e93\u6545\u969c", 0, "inc-3"),  # nothing left of the title: the ref alone
        ("INC-3", "", 0, "inc-3"),
        ("INC-3", "---", 0, "inc-3"),
        ("INC-1", "payments down", 1, "inc-1-payments-down-2"),  # the second try after a name was taken
        ("INC-1", "payments down", 9, "inc-1-payments-down-10"),
        ("INC-3", "", 1, "inc-3-2"),
    ],
)
def test_war_room_name(ref: str, title: str, attempt: int, name: str) -> None:
    assert war_room_name(ref, title, attempt) == name


@pytest.mark.parametrize(
    "title",
    [
        "x" * 200,
        "word " * 40,
        "a" * 68 + " b",  # without a suffix the cut at 80 falls right after a dash
        "\u00e9t\u00e9 " * 50,
        "Database cluster failure in eu-west-1 after the failover of the primary to the standby replica",
    ],
)
def test_long_titles_fit_in_80_characters(title: str) -> None:
    for attempt in (0, 1, 9, 99):
        name = war_room_name("INC-123456", title, attempt)
        assert len(name) <= 80 and SLACK_NAME.match(name), name
        assert name.startswith("inc-123456")
        assert not attempt or name.endswith(f"-{attempt + 1}"), name


def test_a_long_name_uses_the_whole_80_characters() -> None:
    assert len(war_room_name("INC-1", "x" * 200)) == 80
    assert len(war_room_name("INC-1", "x" * 200, 1)) == 80
