"""`help`: the commands, or one command's options, from the registry (light: `im --help` imports no more)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from commands.grammar import argument, command, help_text

if TYPE_CHECKING:
    from commands.context import Context
    from commands.results import Result


@command("help", summary="show commands, or one command's options", examples=("help", "help declare", "help connector"))
@argument("command", nargs="*", metavar="COMMAND")
def help_(ctx: Context, args: argparse.Namespace) -> Result:
    from commands.results import HelpText

    return HelpText(text=help_text(args.command, ctx.prog, frontend=ctx.frontend))
