"""Terminal-only commands about the secrets at rest: `im secrets rotate`."""

from __future__ import annotations

import argparse

from bot.connectors.rotation import rotate
from bot.connectors.secrets import Keyring
from commands.context import Context
from commands.grammar import command
from commands.results import Lines, Result


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@command(
    "secrets rotate",
    summary="re-seal every stored secret under the current IM_SECRET_KEY",
    description=(
        "Re-seal every stored connector secret (API keys, webhook secrets) under IM_SECRET_KEY, in one transaction.\n"
        "Secrets sealed under an older key open when that key is in IM_SECRET_KEY_PREVIOUS (comma-separated).\n"
        "env:VAR references are left as they are. When a secret opens under no key, nothing is changed."
    ),
    slack=False,
    examples=("secrets rotate",),
)
def secrets_rotate(ctx: Context, args: argparse.Namespace) -> Result:
    done = rotate(ctx.im.store, Keyring.from_settings(ctx.im.settings))
    lines = [f"Re-sealed {_plural(done.resealed, 'secret')} of {_plural(done.connectors, 'connector')} under IM_SECRET_KEY."]
    if done.references:
        lines.append(f"{_plural(done.references, 'env: reference')} left as {'it is' if done.references == 1 else 'they are'}.")
    if ctx.im.settings.secret_key_previous is not None:
        lines.append("Once every process runs with this IM_SECRET_KEY, IM_SECRET_KEY_PREVIOUS can be removed.")
    return Lines(lines=lines, data={"connectors": done.connectors, "resealed": done.resealed, "references": done.references})
