"""The terminal front end: `im <command> [options]`. Bad input: stderr and exit code 2; Ctrl-C: 130.

The app is built by the caller's `build` (the wiring, `bot/main.py`): this adapter only parses, asks,
prints and chooses the exit code.

Start-up is kept short by importing only what the command at hand uses (tests/test_cli_startup.py
checks which modules `im --help` and `im status` import):
- `im --help`, `im help` and bad input import the grammar and nothing of the app: commands not yet
  imported are stubs from the index (bot/command_index.py: name, summary, group, module).
- a command imports its own module (`grammar.loaded`), then settings and the store; the store runs
  Alembic only when the database is behind (`Store.upgrade_if_behind`).
- a command module (a new group such as `im logs`) stays lazy when its top imports are light and what
  only its handlers use (an HTTP client, a vendor SDK, report renderers) is imported inside them.
  Add it to `bot.wiring.register_commands`, then run `python -m bot.command_index` to record it.
- imports here are inside functions for the same reason; they still follow the layers.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from commands.grammar import Parsed, UsageError, help_text, leading_globals, parse

if TYPE_CHECKING:
    from bot.app import Im
    from bot.config import Settings
    from commands.results import FileOutput

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # as a shell reports a process ended by SIGPIPE


def _prompt(label: str, default: str | None, secret: bool) -> str:
    import getpass

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
    from pathlib import Path

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


def _offline(parsed: Parsed, as_json: bool) -> str | None:
    """Commands that need neither settings nor a database: answered before either is opened."""
    if parsed.spec.path == ("help",):
        text = help_text(parsed.args.command, "im", frontend="cli")
        return json.dumps({"kind": "help", "text": text}, indent=2) if as_json else text
    if parsed.spec.path == ("completion",):
        from commands.completion import completion_script

        script = completion_script(parsed.args.shell).splitlines()
        return (
            json.dumps({"kind": "lines", "lines": script, "ok": True, "data": None}, indent=2) if as_json else "\n".join(script)
        )
    return None


def main(
    argv: Sequence[str] | None,
    *,
    build: Callable[[Settings], Im],
    version: str,
    fast: Callable[[list[str]], str | None] | None = None,
) -> int:
    """`fast`: a read that may answer a command before anything heavy is imported (the wiring's fast
    `im status`, bot/fast_status.py); it returns None when the full path must run."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), build, version, fast)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `im list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the interpreter's final flush is quiet
        return EXIT_PIPE_CLOSED


def _main(argv: list[str], build: Callable[[Settings], Im], version: str, fast: Callable[[list[str]], str | None] | None) -> int:
    options, words = leading_globals(argv)
    if words[:1] == ["--version"]:
        print(f"im {version}")
        return 0
    if not words or words[0] in ("-h", "--help"):
        argv = [*options, "help", *words[1:]]
    quick = fast(argv) if fast is not None else None
    if quick is not None:
        print(quick)
        return 0
    try:
        parsed = parse(argv, prog_prefix="im")  # a typo is reported before any database is opened
        answer = _offline(parsed, as_json=bool(getattr(parsed.args, "json", False)))
    except UsageError as exc:
        return _usage_error(exc)
    if answer is not None:
        print(answer)
        return 0
    return _online(argv, parsed, build)


def _online(argv: list[str], parsed: Parsed, build: Callable[[Settings], Im]) -> int:
    """A command that reads settings and opens the database."""
    import getpass

    from sqlalchemy.exc import SQLAlchemyError

    from bot.config import ConfigError, load_settings
    from bot.domain.incidents import Actor
    from bot.domain.models import Origin
    from bot.logging_setup import configure as configure_logging
    from commands.context import Context
    from commands.render_text import render, terminal_style
    from commands.results import FileOutput
    from commands.run import execute

    style = terminal_style(sys.stdout, os.environ, utc=bool(getattr(parsed.args, "utc", False)))
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"im: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings, default_level="WARNING", force=False)  # `im serve` sets its own at start
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
    ctx.follow = lambda partial: print(render(partial, as_json=ctx.as_json, style=style), flush=True)
    try:
        result = execute(ctx, argv)
    except UsageError as exc:
        return _usage_error(exc)
    except SQLAlchemyError as exc:
        print(f"im: database error ({where}): {str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if isinstance(result, FileOutput):
        return _deliver_file(result)
    print(render(result, as_json=ctx.as_json, style=style))
    for warning in ctx.warnings:
        print(f"im: warning: {warning}", file=sys.stderr)
    return 0 if getattr(result, "ok", True) else 1
