"""The message shortcut "Add to incident timeline": any message in an incident's thread or war room
becomes a note, with its author and permalink. Acknowledged after the local write; the answer to a
message elsewhere is an ephemeral, queued (a local write) and sent after the ack."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.app import Im
from bot.domain.errors import DomainError
from bot.slack import render
from bot.slack.listeners.common import incident_for_channel, slack_actor, user_message
from bot.slack.models import SlackUser
from bot.slack.responses import queue_ephemeral
from bot.slack.workspace import Workspace

MAX_QUOTED = 2500
_ENTITIES = re.compile(r"&(amp|lt|gt);")
_DECODED = {"amp": "&", "lt": "<", "gt": ">"}


def permalink(channel: str, ts: str, thread_ts: str | None) -> str:
    """The message's address, built from what we hold (no chat.getPermalink on the ack path)."""
    url = f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"
    return f"{url}?thread_ts={thread_ts}&cid={channel}" if thread_ts and thread_ts != ts else url


def _slack_text(text: str) -> str:
    """A message's text as its author typed it: Slack's three escapes undone in one pass (mentions and
    links stay as Slack's tokens; shown back, they are escaped like any text)."""
    return _ENTITIES.sub(lambda m: _DECODED[m.group(1)], text)


def register(app: App, im: Im, workspace: Workspace) -> None:
    def tell(body: dict[str, Any], text: str) -> None:
        channel = (body.get("channel") or {}).get("id")
        with im.store.transaction() as session:
            queue_ephemeral(session, response_url=body.get("response_url"), channel=channel, user=body["user"]["id"], text=text)

    def add_to_timeline(ack: Ack, body: dict[str, Any]) -> None:
        channel = (body.get("channel") or {}).get("id")
        message = body.get("message") or {}
        ts, thread_ts = body.get("message_ts") or message.get("ts"), message.get("thread_ts")
        try:
            incident = incident_for_channel(im, channel, thread_ts or ts)
            if incident is None or not channel or not ts:
                tell(body, ":warning: That message is not in an incident thread or war room: nothing was added.")
            else:
                author = message.get("user") or message.get("bot_id") or "someone"
                text = _slack_text(message.get("text") or "")[:MAX_QUOTED]
                link = permalink(channel, ts, thread_ts)
                with im.store.read() as session:
                    known = session.get(SlackUser, author)
                by = (known.real_name or known.name) if known else author
                im.incidents.add_note(
                    incident,
                    f"{text} (message by {by}: {link})" if text else f"(a message by {by}: {link})",
                    actor=slack_actor(body["user"], workspace=workspace),
                    context={"slack_channel": channel, "slack_author": author, "slack_permalink": link, "slack_text": text},
                    once_key=f"slack-shortcut:{body.get('trigger_id') or body.get('action_ts')}",
                )
        except DomainError as exc:
            tell(body, render.warning_text(str(exc)))
        except Exception as exc:  # noqa: BLE001
            tell(body, render.warning_text(user_message(exc)[0]))
        ack()

    app.shortcut(render.ADD_TO_TIMELINE)(add_to_timeline)
