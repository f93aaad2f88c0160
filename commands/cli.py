"""The terminal front end: `im <command> [options]`. Bad input: stderr and exit code 2."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Sequence

from bot.config import ConfigError, load_settings
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from commands.context import Context
from commands.grammar import UsageError
from commands.render_text import render
from commands.run import execute, wants_json

EXIT_USAGE = 2


def _prompt(label: str, default: str | None, secret: bool) -> str:
    suffix = f" [{default}]" if default else ""
    answer = getpass.getpass(f"{label}: ") if secret else input(f"{label}{suffix}: ")
    return answer.strip() or (default or "")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=os.environ.get("IM_LOG_LEVEL", "WARNING").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"im: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from bot.wiring import build

    if argv[:1] in (["help"], ["--help"], ["-h"], []):
        from commands.grammar import help_text
        from commands import run as _  # noqa: F401  (registers the commands)

        words = argv[1:] if argv[:1] == ["help"] else []
        try:
            print(help_text(words, "im", frontend="cli"))
        except UsageError as exc:
            print(f"im: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return 0
    try:
        im = build(settings)
    except Exception as exc:  # a database we cannot reach is the user's to fix, not a traceback
        print(f"im: cannot open the database {settings.database_url.split('@')[-1]}: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    user = os.environ.get("IM_ACTOR") or getpass.getuser()
    ctx = Context(im=im, actor=Actor(Origin.CLI, user, user), frontend="cli", prog="im", prompt=_prompt if sys.stdin.isatty() else None)
    try:
        result = execute(ctx, argv)
    except UsageError as exc:
        print(f"im: {exc.message}", file=sys.stderr)
        if exc.usage:
            print(exc.usage, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    print(render(result, as_json=wants_json(argv)))
    return 0 if getattr(result, "ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
