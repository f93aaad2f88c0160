"""The `im` command: every command registered, then the terminal front end with the app's builder."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot import __version__
from bot.wiring import build, register_commands
from commands import cli


def main(argv: Sequence[str] | None = None) -> int:
    register_commands()
    return cli.main(argv, build=build, version=__version__)


if __name__ == "__main__":
    sys.exit(main())
