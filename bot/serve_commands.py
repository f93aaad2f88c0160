"""Terminal-only commands that run the service itself: serve, db upgrade."""

from __future__ import annotations

import argparse

from commands.context import Context
from commands.grammar import command
from commands.results import Lines, Result


@command(
    "serve",
    summary="run the app: Slack endpoint, webhooks, workers and scheduler",
    slack=False,
    examples=("serve",),
)
def serve(ctx: Context, args: argparse.Namespace) -> Result:
    from bot.server import run

    run(ctx.im)
    return Lines(lines=["stopped"])


@command(
    "db upgrade",
    summary="apply database migrations (a release step: run once before starting new replicas)",
    slack=False,
    examples=("db upgrade", "db upgrade --json"),
)
def db_upgrade(ctx: Context, args: argparse.Namespace) -> Result:
    ctx.im.store.upgrade()
    return Lines(lines=[f"database at {ctx.im.store.engine.url.render_as_string(hide_password=True)} is up to date"])
