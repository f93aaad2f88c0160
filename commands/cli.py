"""The terminal front end: `im <command> [options]`. Bad input: stderr and exit code 2.

The app is built by the caller's `build` (the wiring, `bot/main.py`): this adapter only parses, asks,
prints and chooses the exit code."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.app import Im
from bot.config import ConfigError, Settings, load_settings
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from commands.context import Context
from commands.grammar import UsageError, help_text, parse
from commands.render_text import render
from commands.results import FileOutput
from commands.run import execute

EXIT_USAGE = 2


def _prompt(label: str, default: str | None, secret: bool) -> str:
    suffix = f" [{default}]" if default else ""
    answer = getpass.getpass(f"{label}: ") if secret else input(f"{label}{suffix}: ")
    return answer.strip() or (default or "")


def _usage_error(exc: UsageError) -> int:
    print(f"im: {exc.message}", file=sys.stderr)
    if exc.usage:
        print(exc.usage, file=sys.stderr)
    return EXIT_USAGE


def _deliver_file(result: FileOutput) -> int:
    """Print a text document, or write it whole (a temporary file renamed into place: never half a file)."""
    if result.output is None:
        sys.stdout.write(result.content.decode())
        return 0
    target = Path(result.output)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(result.content)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        print(f"im: cannot write {result.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Written to {result.output}: {result.summary}")
    return 0


def main(argv: Sequence[str] | None, *, build: Callable[[Settings], Im]) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=os.environ.get("IM_LOG_LEVEL", "WARNING").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if argv[:1] in (["help"], ["--help"], ["-h"], []):  # help needs neither settings nor a database
        try:
            print(help_text(argv[1:] if argv[:1] == ["help"] else [], "im", frontend="cli"))
        except UsageError as exc:
            return _usage_error(exc)
        return 0
    try:
        parse(argv, prog_prefix="im")  # a typo is reported before any database is opened
    except UsageError as exc:
        return _usage_error(exc)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"im: {exc}", file=sys.stderr)
        return EXIT_USAGE
    where = settings.database_url.split("@")[-1]
    try:
        im = build(settings)
    except Exception as exc:  # noqa: BLE001 - a database we cannot reach is the user's to fix, not a traceback
        print(f"im: cannot open the database {where}: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    user = os.environ.get("IM_ACTOR") or getpass.getuser()
    ctx = Context(
        im=im, actor=Actor(Origin.CLI, user, user), frontend="cli", prog="im", prompt=_prompt if sys.stdin.isatty() else None
    )
    try:
        result = execute(ctx, argv)
    except UsageError as exc:
        return _usage_error(exc)
    except SQLAlchemyError as exc:
        print(f"im: database error ({where}): {str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if isinstance(result, FileOutput):
        return _deliver_file(result)
    print(render(result, as_json=ctx.as_json))
    for warning in ctx.warnings:
        print(f"im: warning: {warning}", file=sys.stderr)
    return 0 if getattr(result, "ok", True) else 1
