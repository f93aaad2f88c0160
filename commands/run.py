"""Run one command line: parse, check the front end may run it, call the handler, map domain errors."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.errors import DomainError
from commands.context import Context
from commands.grammar import UsageError, parse
from commands.results import Result


def execute(ctx: Context, argv: Sequence[str]) -> Result:
    parsed = parse(argv, prog_prefix=ctx.prog, frontend=ctx.frontend)
    spec = parsed.spec
    usage = spec.usage(ctx.prog, ctx.frontend)
    ctx.usage = usage
    if ctx.frontend == "slack" and not spec.slack:
        raise UsageError(f"'{spec.name}' changes configuration and only runs from a terminal: im {spec.name} ...")
    if ctx.frontend == "cli" and not spec.terminal:
        raise UsageError(f"'{spec.name}' only runs in Slack")
    ctx.as_json = bool(getattr(parsed.args, "json", False))
    try:
        return spec.handler(ctx, parsed.args)
    except DomainError as exc:  # the user's to fix: say what, show usage
        raise UsageError(str(exc), usage) from None
