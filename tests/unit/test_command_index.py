"""The terminal's command index (bot/command_index.json) says what the command modules register."""

from __future__ import annotations

from bot import command_index


def test_the_index_is_current() -> None:
    entries, environment = command_index.current()
    hint = "run `python -m bot.command_index` to record the commands and settings as they are now"
    assert entries == command_index.ENTRIES, hint
    assert environment == command_index.ENVIRONMENT, hint
