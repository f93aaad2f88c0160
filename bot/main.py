"""The `im` command: the terminal front end with the app's builder and the command index.

Nothing heavy is imported here: the index (bot/command_index.py) lets the terminal import only the
module of the command it runs, and `build_for_terminal` imports the app when a command needs it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot import __version__
from bot.command_index import ENTRIES, ENVIRONMENT
from bot.wiring import build_for_terminal, register_commands
from commands import cli
from commands.grammar import register_index


def main(argv: Sequence[str] | None = None) -> int:
    register_index(ENTRIES, ENVIRONMENT, load_all=register_commands)
    return cli.main(argv, build=build_for_terminal, version=__version__, fast=fast_status)


def fast_status(argv: list[str]) -> str | None:
    """`im status` read with sqlite3 alone when that gives exactly the full path's answer (bot/fast_status.py)."""
    if "status" not in argv:
        return None
    from bot.fast_status import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
