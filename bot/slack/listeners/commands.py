"""`/im <text>`: parsed by the shared grammar; the answer rides on the ack, after the local commit."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import render
from bot.slack.listeners.common import slack_actor, slack_context, user_message
from commands.run import execute
from bot.wiring import Im
from commands.grammar import UsageError, split_chat_text
from commands.results import OpenDeclareModal


def _bare_declare(command: dict[str, Any]) -> bool:
    """`/im declare` with nothing else: the one case that opens a form."""
    try:
        return [a.lower() for a in split_chat_text(command.get("text", ""))] == ["declare"]
    except UsageError:
        return False


def register(app: App, im: Im) -> None:
    def handle(ack: Ack, command: dict[str, Any]) -> None:
        try:
            argv = split_chat_text(command.get("text", "")) or ["help"]
            ctx = slack_context(im, actor=slack_actor(command["user_id"], command.get("user_name")),
                                channel_id=command.get("channel_id"))
            result = execute(ctx, argv)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an ephemeral answer
            message, usage = user_message(exc)
            ack(render.error_answer(message, usage))
            return
        if isinstance(result, OpenDeclareModal):
            ack()  # the form opens from the lazy listener, after this answer
            return
        ack(render.command_answer(result, as_json=ctx.as_json))

    def open_declare_modal(command: dict[str, Any], client: WebClient) -> None:
        # trigger_id lives 3 s and only once: opened right after the ack, not through the outbox
        client.views_open(trigger_id=command["trigger_id"], view=render.declare_modal(command.get("channel_id", "")))

    # Bolt runs the first listener whose matchers pass; only a bare declare pays for a lazy thread.
    app.command("/im", matchers=[_bare_declare])(ack=handle, lazy=[open_declare_modal])
    app.command("/im")(handle)
