"""Events: `@im <command>` in an incident's thread (slash commands cannot be typed in threads).

Slack retries events (X-Slack-Retry-Num) with the same event_id. The command's change claims the id
in its own transaction, and the reply claims `<id>:reply` in the transaction that queues it, so a
retry has no second effect and gets no second reply.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.app import Im
from bot.domain.incidents import first_time
from bot.domain.models import InboundKey
from bot.slack import render
from bot.slack.listeners.common import slack_actor, slack_context, user_message
from bot.slack.responses import queue_ephemeral
from bot.slack.uploads import queue_upload
from bot.slack.workspace import Workspace
from commands.grammar import UsageError, resolve, split_chat_text
from commands.results import DocumentRequest
from commands.run import execute

MENTION = re.compile(r"^\s*<@[A-Z0-9]+(\|[^>]*)?>\s*")


def _text(event: dict[str, Any]) -> str:
    return MENTION.sub("", event.get("text", ""))


def _remote(event: dict[str, Any]) -> bool:
    """A command that asks another system (oncall): answered after the ack, never inside it."""
    try:
        argv = split_chat_text(_text(event))
        return bool(argv) and resolve(argv, "/im", "slack")[0].remote
    except UsageError:
        return False


def register(app: App, im: Im, workspace: Workspace) -> None:
    def answer(body: dict[str, Any], event: dict[str, Any]) -> None:
        event_id = body.get("event_id")
        key = f"slack-event:{event_id}" if event_id else None
        reply_key = f"{key}:reply" if key else None
        channel, thread_ts = event.get("channel"), event.get("thread_ts")
        if reply_key:
            with im.store.read() as session:
                if session.get(InboundKey, reply_key) is not None:
                    return  # a retry of an event we answered
        try:
            argv = split_chat_text(_text(event)) or ["help"]
            team = event.get("user_team") or body.get("team_id")
            actor = slack_actor(event["user"], workspace=workspace, team=team)
            ctx = slack_context(im, actor=actor, channel_id=channel, thread_ts=thread_ts, once_key=key)
            result = execute(ctx, argv)
            reply = render.answer_text(result, as_json=ctx.as_json)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer
            result, reply = None, render.warning_text(*user_message(exc))
        with im.store.transaction() as session:
            if not first_time(session, reply_key):
                return
            if isinstance(result, DocumentRequest):  # uploaded into this thread by a worker, after the ack
                queue_upload(session, result, user=event["user"], channel=channel, thread_ts=thread_ts)
            queue_ephemeral(session, response_url=None, channel=channel, user=event["user"], text=reply, thread_ts=thread_ts)

    def mention(ack: Ack, body: dict[str, Any], event: dict[str, Any]) -> None:
        ack()
        answer(body, event)  # local work only: the HTTP answer goes out when this returns

    def acknowledge(ack: Ack) -> None:
        ack()

    app.event("app_mention", matchers=[lambda event: _remote(event)])(ack=acknowledge, lazy=[answer])
    app.event("app_mention")(mention)
