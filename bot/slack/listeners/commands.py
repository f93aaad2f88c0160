"""`/im <text>`: parsed by the shared grammar; the answer rides on the ack, after the local commit."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import render
from bot.slack.listeners.common import incident_for_channel, run_command, slack_actor, user_message
from bot.wiring import Im
from commands.grammar import UsageError, split_chat_text
from commands.results import OpenDeclareModal
from commands.run import wants_json


def register(app: App, im: Im) -> None:
    def handle(ack: Ack, command: dict[str, Any]) -> None:
        try:
            argv = split_chat_text(command.get("text", ""))
            if not argv:
                argv = ["help"]
            result = run_command(
                im,
                argv,
                actor=slack_actor(command["user_id"], command.get("user_name")),
                channel_id=command.get("channel_id"),
                default_incident=incident_for_channel(im, command.get("channel_id")),
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes an ephemeral answer
            message, usage = user_message(exc)
            ack(render.error_answer(message, usage))
            return
        if isinstance(result, OpenDeclareModal):
            ack()  # the form opens from the lazy listener, after this answer
            return
        ack(render.command_answer(result, as_json=wants_json(argv)))

    def open_declare_modal(command: dict[str, Any], client: WebClient) -> None:
        try:
            argv = split_chat_text(command.get("text", ""))
        except UsageError:
            return
        if [a.lower() for a in argv] == ["declare"]:
            client.views_open(trigger_id=command["trigger_id"], view=render.declare_modal(command.get("channel_id", "")))

    app.command("/im")(ack=handle, lazy=[open_declare_modal])
