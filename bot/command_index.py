"""Every command's name, module and help line, and the settings' help lines, recorded so that a terminal
start imports only the module of the command it runs (`im --help` imports none).

The record is bot/command_index.json, generated: `python -m bot.command_index` rewrites it from the
modules `bot.wiring.register_commands` imports (tests/unit/test_command_index.py fails when it is out
of date). An out-of-date record only costs time: a command it does not know loads every module first."""

from __future__ import annotations

import json
from pathlib import Path

from commands.grammar import IndexEntry

RECORD = Path(__file__).with_suffix(".json")


def load() -> tuple[tuple[IndexEntry, ...], tuple[str, ...]]:
    data = json.loads(RECORD.read_text())
    entries = tuple(
        IndexEntry(tuple(path), module, summary, group, tuple(aliases), slack, terminal, remote)
        for path, module, summary, group, aliases, slack, terminal, remote in data["commands"]
    )
    return entries, tuple(data["environment"])


ENTRIES, ENVIRONMENT = load()


def current() -> tuple[tuple[IndexEntry, ...], tuple[str, ...]]:
    """The index as the code stands (every command module imported)."""
    from bot.wiring import register_commands
    from commands.grammar import REGISTRY, environment_lines, load_all

    load_all()
    register_commands()
    entries = tuple(
        IndexEntry(
            spec.path, spec.handler.__module__, spec.summary, spec.group, spec.aliases, spec.slack, spec.terminal, spec.remote
        )
        for _, spec in sorted(REGISTRY.items())
    )
    return entries, tuple(environment_lines())


def record_text() -> str:
    """bot/command_index.json as the code stands: one command or setting a line, so changes diff well."""
    entries, environment = current()
    commands = ",\n".join(f"    {json.dumps([list(e.path), *e[1:4], list(e.aliases), *e[5:]])}" for e in entries)
    settings = ",\n".join(f"    {json.dumps(line)}" for line in environment)
    return f'{{\n  "commands": [\n{commands}\n  ],\n  "environment": [\n{settings}\n  ]\n}}\n'


if __name__ == "__main__":
    RECORD.write_text(record_text())
