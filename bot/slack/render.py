"""Block Kit for incidents: the root message, thread replies, command answers and modals.

Invariant: stored text (titles, notes, descriptions, names, labels, command output) reaches a `text`
or a mrkdwn object only through `bot.slack.mrkdwn`; plain_text objects take it as it is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bot.clock import short
from bot.domain.models import Status, TimelineEvent
from bot.domain.views import IncidentView
from bot.slack import mrkdwn
from commands.render_text import render as render_text
from commands.results import Done, Result

ACK_ACTION = "incident_ack"
RESOLVE_ACTION = "incident_resolve"
RESOLVE_VIEW = "incident_resolve_modal"
DECLARE_VIEW = "incident_declare_modal"

SEV_EMOJI = {
    "SEV-1": ":red_circle:",
    "SEV-2": ":large_orange_circle:",
    "SEV-3": ":large_yellow_circle:",
    "SEV-4": ":white_circle:",
}
STATUS_EMOJI = {"open": ":rotating_light:", "mitigated": ":construction:", "resolved": ":white_check_mark:", "closed": ":lock:"}


def actor_mention(actor: str, name: str | None) -> str:
    """Who did it, as mrkdwn: a Slack user is mentioned by ID; anyone else is named, escaped."""
    origin, _, ident = actor.partition(":")
    if origin == "slack":
        return mrkdwn.user(ident)
    label = {"cli": "terminal", "pagerduty": "PagerDuty", "scheduler": "scheduler"}.get(origin, origin)
    return mrkdwn.escape(f"{name or ident} ({label})")


def root_text(view: IncidentView) -> str:
    return mrkdwn.escape(f"{view.id} [{view.severity}] {view.title} ({view.status})")


def root_blocks(view: IncidentView, declared_by: str) -> list[dict[str, Any]]:
    fields = [
        f"*Severity*\n{SEV_EMOJI.get(view.severity, '')} {view.severity}",
        f"*Status*\n{STATUS_EMOJI.get(view.status, '')} {view.status}",
        f"*Services*\n{mrkdwn.escape(', '.join(view.services))}",
        f"*Declared*\n{declared_by}, {short(view.declared_at)}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{view.id}: {view.title}"[:150], "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if view.description:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.escape(view.description, 2900)}})
    if view.resolution and view.status in (Status.RESOLVED, Status.CLOSED):
        resolution = mrkdwn.escape(view.resolution, 2800)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Resolution*\n{resolution}"}})
    links = [link for link in view.links if link.system != "slack"]  # the root message is the Slack thread
    parts = [f"{mrkdwn.link(link.url, link.label)} {mrkdwn.escape(link.status)}".strip() for link in links]
    if context := mrkdwn.join(parts, " · ", 2900):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    if view.status in (Status.OPEN, Status.MITIGATED):
        elements = []
        if view.status == Status.OPEN:
            elements.append(
                {
                    "type": "button",
                    "action_id": ACK_ACTION,
                    "value": view.id,
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "style": "primary",
                }
            )
        elements.append(
            {"type": "button", "action_id": RESOLVE_ACTION, "value": view.id, "text": {"type": "plain_text", "text": "Resolve"}}
        )
        blocks.append({"type": "actions", "block_id": "incident_actions", "elements": elements})
    return blocks


def content_hash(text: str, blocks: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()[:32]


def event_text(event: TimelineEvent, who: str) -> str:
    """A thread reply for one timeline step; `who` is mrkdwn already (see `actor_mention`)."""
    text = mrkdwn.escape(event.text)
    if event.kind == "declared":
        return f":rotating_light: {text} — declared by {who}"
    if event.kind == "status":
        return f"{STATUS_EMOJI.get(event.data.get('to', ''), '')} *{text}* — {who}"
    if event.kind == "note":
        return f":memo: {who}: {text}"
    if event.kind == "severity":
        return f":arrows_counterclockwise: {text} — {who}"
    if event.kind == "assignment":
        return f":pager: {text}"
    if event.kind == "sla":
        return f":alarm_clock: {text}"
    if event.kind == "link":
        return f":link: {mrkdwn.link(event.data.get('url'), event.text or '')}"
    return f":information_source: {text} — {who}"


def war_room_link(channel_id: str | None, name: str | None) -> str:
    return f":door: War room: {mrkdwn.channel(channel_id or '')} ({mrkdwn.escape(f'#{name}')})"


def war_room_hello(ref: str, severity: str, title: str) -> str:
    return f"War room for {mrkdwn.escape(f'{ref} [{severity}] {title}')}. Run `/im` here without --incident."


def answer_text(result: Result, *, as_json: bool = False) -> str:
    """A command's result as mrkdwn: the terminal's text, escaped (in a code block when it has lines)."""
    text = render_text(result, as_json=as_json)
    if isinstance(result, Done) or "\n" not in text:
        return mrkdwn.escape(text)
    return f"```{mrkdwn.escape(text, 2900)}```"


def warning_text(message: str, usage: str = "") -> str:
    """A refusal or error as mrkdwn: the message may echo what the user typed, so it is escaped too."""
    text = f":warning: {mrkdwn.escape(message)}"
    if usage:
        text += f"\n```{mrkdwn.escape(usage)}```"
    return text


def command_answer(result: Result, *, as_json: bool = False) -> dict[str, Any]:
    """An ephemeral answer to a slash command."""
    return {"response_type": "ephemeral", "text": answer_text(result, as_json=as_json)}


def error_answer(message: str, usage: str = "") -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": warning_text(message, usage)}


def declare_modal(channel_id: str) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": s}, "value": s} for s in ("SEV-1", "SEV-2", "SEV-3", "SEV-4")]
    return {
        "type": "modal",
        "callback_id": DECLARE_VIEW,
        "private_metadata": json.dumps({"channel": channel_id}),
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 200},
            },
            {
                "type": "input",
                "block_id": "severity",
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {"type": "static_select", "action_id": "value", "options": options, "initial_option": options[1]},
            },
            {
                "type": "input",
                "block_id": "services",
                "label": {"type": "plain_text", "text": "Services (comma-separated)"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "description",
                "optional": True,
                "label": {"type": "plain_text", "text": "Description"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
            },
        ],
    }


def resolve_modal(incident_ref: str, channel_id: str | None) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": RESOLVE_VIEW,
        "private_metadata": json.dumps({"incident": incident_ref, "channel": channel_id}),
        "title": {"type": "plain_text", "text": f"Resolve {incident_ref}"[:24]},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "label": {"type": "plain_text", "text": "Resolution note"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
            },
        ],
    }
