"""What the fast `im status` (bot/fast_status.py) takes on itself, and what it leaves to the full path."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.fast_status import Unsure, _database_url, _request


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], (None, False, False)),
        (["--json", "--utc", "status"], (None, True, True)),
        (["status", "-i", "INC-12", "--json"], (12, True, False)),
        (["status", "--incident=inc-0012"], (12, False, False)),
        (["status", "--incident", "7", "--utc"], (7, False, True)),
        (["status", "-i", "INC-2147483647"], (2147483647, False, False)),
    ],
)
def test_the_command_lines_it_answers(argv: list[str], expected: tuple[int | None, bool, bool]) -> None:
    assert _request(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["Status"],  # the grammar's to read
        ["status", "--js"],  # argparse's abbreviations: the grammar's
        ["status", "-h"],
        ["status", "--json", "--json"],
        ["status", "-i"],
        ["status", "-i", "INC-1", "-i", "INC-2"],
        ["status", "-iINC-1"],
        ["status", "-i", "INC-0"],
        ["status", "-i", "INC-2147483648"],  # past the incident table's numbers: the full path says so
        ["status", "-i", "ınc-1"],  # dotless i: str.upper() would take it, a regex need not agree
        ["status", "-i", "INC-²"],
        ["status", "-i", " INC-1"],
        ["status", "INC-1"],
        ["--version", "status"],
    ],
)
def test_everything_else_is_left_to_the_full_path(argv: list[str]) -> None:
    assert _request(argv) is None


def test_settings_environment_over_dotenv_in_any_case(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\n\nIM_DATABASE_URL = sqlite:///from-dotenv.db\nSLACK_BOT_TOKEN=xoxb-1\nOTHER=a b\n")
    assert _database_url({}, tmp_path) == "sqlite:///from-dotenv.db"
    assert _database_url({"im_database_url": "sqlite:///env.db"}, tmp_path) == "sqlite:///env.db"
    assert _database_url({"HOME": "/root", "IM_ACTOR": "x"}, tmp_path / "nowhere") == "sqlite:///./im.db"


@pytest.mark.parametrize(
    ("environ", "dotenv"),
    [
        ({"IM_PORT": "3000"}, None),
        ({"Slack_Channel": "C1"}, None),
        ({"PAGERDUTY_DEBUG": "true"}, None),
        ({"IM_DATABASE_URL": "sqlite:///a.db", "im_database_url": "sqlite:///b.db"}, None),
        ({}, "export IM_DATABASE_URL=sqlite:///x.db\n"),
        ({}, "IM_DATABASE_URL='sqlite:///x.db'\n"),
        ({}, "IM_DATABASE_URL=sqlite:///x.db # the default\n"),
        ({}, "IM_DATABASE_URL=sqlite:///${HOME}/x.db\n"),
        ({}, "IM_DATABASE_URL=sqlite:///x.db\r\n"),
        ({}, "IM_DATABASE_URL\n"),
        ({}, "IM_WORKERS=4\n"),
    ],
)
def test_settings_it_cannot_be_sure_of(environ: dict[str, str], dotenv: str | None, tmp_path: Path) -> None:
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    with pytest.raises(Unsure):
        _database_url(environ, tmp_path)
