"""`/im <text>`: parsed by the shared grammar; the answer rides on the ack, after the local commit.

Commands that must ask another system (`oncall` asks PagerDuty) are acknowledged at once and answered
through the response URL from a lazy listener: Slack's answer never waits on a remote call.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.app import Im
from bot.slack import render
from bot.slack.listeners.common import plain_text, slack_actor, slack_context, user_message
from bot.slack.uploads import is_dm, queue_upload
from bot.slack.workspace import Workspace
from commands.context import Context
from commands.grammar import UsageError, parse, resolve, split_chat_text
from commands.results import DocumentRequest, OpenDeclareModal
from commands.run import execute


@lru_cache(maxsize=256)
def _words(text: str) -> tuple[str, ...]:
    """A command's text as argv, split once per request (the matchers and the listener all ask)."""
    return tuple(split_chat_text(plain_text(text)))


def _argv(command: dict[str, Any]) -> list[str]:
    try:
        return list(_words(command.get("text", "")))
    except UsageError:
        return []


def _bare_declare(command: dict[str, Any]) -> bool:
    """`/im declare` with nothing else: the one case that opens a form."""
    return [a.lower() for a in _argv(command)] == ["declare"]


def _remote(command: dict[str, Any]) -> bool:
    argv = _argv(command)
    try:
        if not argv or not resolve(argv, "/im", "slack")[0].remote:
            return False  # most commands: decided by their first word, without a full parse
        parse(argv, prog_prefix="/im", frontend="slack")  # bad input is answered at once by the plain listener
        return True
    except UsageError:
        return False


def register(app: App, im: Im, workspace: Workspace) -> None:
    def context(command: dict[str, Any]) -> Context:
        team = command.get("user_team") or command.get("team_id")
        actor = slack_actor(command["user_id"], command.get("user_name"), workspace=workspace, team=team)
        return slack_context(im, actor=actor, channel_id=command.get("channel_id"))

    def handle(ack: Ack, command: dict[str, Any]) -> None:
        try:
            argv = list(_words(command.get("text", ""))) or ["help"]
            ctx = context(command)
            result = execute(ctx, argv)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an ephemeral answer
            message, usage = user_message(exc)
            ack(render.error_answer(message, usage))
            return
        if isinstance(result, OpenDeclareModal):
            ack()  # the form opens from the lazy listener, after this answer
            return
        if isinstance(result, DocumentRequest):  # computed and uploaded by a worker, after this answer
            channel = command.get("channel_id")
            with im.store.transaction() as session:
                direct = is_dm(channel, command.get("channel_name"))
                queue_upload(
                    session,
                    result,
                    user=command["user_id"],
                    channel=channel,
                    direct=direct,
                    response_url=command.get("response_url"),
                )
        ack(render.command_answer(result, as_json=ctx.as_json))

    def open_declare_modal(command: dict[str, Any], client: WebClient) -> None:
        # trigger_id lives 3 s and only once: opened right after the ack, not through the outbox
        client.views_open(
            trigger_id=command["trigger_id"], view=render.declare_modal(command.get("channel_id", ""), im.incidents.field_names)
        )

    def acknowledge_remote(ack: Ack) -> None:
        ack({"response_type": "ephemeral", "text": ":hourglass_flowing_sand: Asking PagerDuty…"})

    def answer_remote(command: dict[str, Any], respond: Respond) -> None:
        try:
            ctx = context(command)
            answer = render.command_answer(execute(ctx, _argv(command)), as_json=ctx.as_json)
        except Exception as exc:  # noqa: BLE001
            message, usage = user_message(exc)
            answer = render.error_answer(message, usage)
        respond(text=answer["text"], response_type="ephemeral", replace_original=False)

    # Bolt runs the first listener whose matchers pass; only these two pay for a lazy thread.
    app.command("/im", matchers=[_bare_declare])(ack=handle, lazy=[open_declare_modal])
    app.command("/im", matchers=[_remote])(ack=acknowledge_remote, lazy=[answer_remote])
    app.command("/im")(handle)
