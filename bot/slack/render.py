"""Block Kit for incidents: the root message, thread replies, command answers and modals.

Invariant: stored text (titles, notes, descriptions, names, labels, command output) reaches a `text`
or a mrkdwn object only through `bot.slack.mrkdwn`; plain_text objects take it as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from bot.clock import format_duration, human_duration, short
from bot.domain.models import Incident, Status, TimelineEvent
from bot.domain.people import PersonView
from bot.domain.views import IncidentView, SlaClockView
from bot.reminders import SNOOZE
from bot.slack import mrkdwn
from commands.render_text import oncall_lines
from commands.render_text import render as render_text
from commands.results import Done, OnCallResult, Result

ACK_ACTION = "incident_ack"
TAKE_ACTION = "incident_take"
ADD_TO_TIMELINE = "add_to_timeline"  # the message shortcut's callback_id (manifest.yml)
RESOLVE_ACTION = "incident_resolve"
SNOOZE_ACTION = "incident_snooze_reminders"
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


def person(p: PersonView) -> str:
    """Someone as mrkdwn: mentioned when we know their Slack user, else named, and said to be outside Slack."""
    if p.slack_user_id:
        return mrkdwn.user(p.slack_user_id)
    return mrkdwn.escape(f"{p.label} (not in Slack)")


def people_fields(view: IncidentView) -> list[str]:
    fields = [f"*Owner*\n{person(view.owner) if view.owner else '_nobody yet_'}"]
    fields += [f"*{mrkdwn.escape(role.title())}*\n{person(p)}" for role, p in sorted(view.roles.items())]
    return fields


def root_text(view: IncidentView) -> str:
    return mrkdwn.escape(f"{view.id} [{view.severity}] {view.title} ({view.status})")


def root_blocks(view: IncidentView, declared_by: str) -> list[dict[str, Any]]:
    fields = [
        f"*Severity*\n{SEV_EMOJI.get(view.severity, '')} {view.severity}",
        f"*Status*\n{STATUS_EMOJI.get(view.status, '')} {view.status}",
        f"*Services*\n{mrkdwn.escape(', '.join(view.services))}",
        f"*Declared*\n{declared_by}, {short(view.declared_at)}",
        *people_fields(view),
    ][:10]  # a section holds at most 10 fields
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{view.id}: {view.title}"[:150], "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if clock := clock_line(view):
        blocks.append({"type": "context", "block_id": "sla_clock", "elements": [{"type": "mrkdwn", "text": clock}]})
    if view.description:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.escape(view.description, 2900)}})
    if custom := mrkdwn.join([mrkdwn.escape(f"{k}: {v}") for k, v in view.fields.items()], " · ", 2900):
        blocks.append({"type": "context", "block_id": "fields", "elements": [{"type": "mrkdwn", "text": custom}]})
    if view.resolution and view.status in (Status.RESOLVED, Status.CLOSED):
        resolution = mrkdwn.escape(view.resolution, 2800)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Resolution*\n{resolution}"}})
    if view.drill:
        blocks.append({"type": "context", "block_id": "drill", "elements": [{"type": "mrkdwn", "text": DRILL_LINE}]})
    if runbooks := runbook_line(view):
        blocks.append({"type": "context", "block_id": "runbooks", "elements": [{"type": "mrkdwn", "text": runbooks}]})
    # the root message is the Slack thread; runbooks have their own line
    links = [link for link in view.links if link.system not in ("slack", "runbook")]
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
        if view.owner is None:
            elements.append(
                {"type": "button", "action_id": TAKE_ACTION, "value": view.id, "text": {"type": "plain_text", "text": "Take it"}}
            )
        blocks.append({"type": "actions", "block_id": "incident_actions", "elements": elements})
    return blocks


DRILL_LINE = ":test_tube: *Drill* (game day): a synthetic incident, no action needed"


def runbook_line(view: IncidentView) -> str:
    """The incident's runbooks as links (a URL that fails the check shows as text, never as a link)."""
    parts = [mrkdwn.link(link.url, link.label) for link in view.links if link.system == "runbook"]
    return f":books: {mrkdwn.join(parts, ' · ', 2900)}" if parts else ""


def clock_line(view: IncidentView) -> str:
    """The SLA clocks (absolute times, so the root changes only when a clock does), and the time to
    acknowledge / resolve of a kind without a clock once it is known."""
    parts = [_clock(clock) for clock in view.sla]
    kinds = {clock.kind for clock in view.sla}
    for kind, seconds in (("ack", view.time_to_acknowledge_seconds), ("resolve", view.time_to_resolve_seconds)):
        if kind not in kinds and seconds is not None:
            parts.append(f"{_DONE[kind]} in {human_duration(seconds)}")
    return " · ".join(parts)


_DONE = {"ack": "Acknowledged", "resolve": "Resolved"}
_NOUN = {"ack": "Ack", "resolve": "Resolve"}


def _clock(clock: SlaClockView) -> str:
    if clock.stopped_at is not None:
        took = f"{_DONE[clock.kind]} in {human_duration(clock.elapsed_seconds or 0)}"
        if clock.state == "met":
            return f":white_check_mark: {took}"
        return f":x: {took} (target {format_duration(clock.target_seconds)} missed)"
    due = mrkdwn.date(clock.due_at)
    if clock.state == "breached":
        return f":rotating_light: {_NOUN[clock.kind]} target breached at {due}"
    emoji = ":hourglass_flowing_sand:" if clock.state == "warned" else ":stopwatch:"
    return f"{emoji} {_NOUN[clock.kind]} due {due}"


def addressee(person: PersonView | None) -> str:
    """Whom a notice is for, as mrkdwn: mentioned when we know them in Slack, else named."""
    if person is None:
        return "nobody owns this incident yet"
    if person.slack_user_id:
        return mrkdwn.user(person.slack_user_id)
    return mrkdwn.escape(f"{person.label} (not in Slack)")


def content_hash(text: str, blocks: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()[:32]


def event_text(event: TimelineEvent, who: str, person: PersonView | None = None) -> str:
    """A thread reply for one timeline step; `who` is mrkdwn already (see `actor_mention`); `person` is
    whom a clock's notice is addressed to."""
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
        return f":alarm_clock: {text}" + (f" — {addressee(person)}" if person else "")
    if event.kind == "sla_warning":
        return f":hourglass_flowing_sand: {addressee(person)}: {text}"
    if event.kind == "reminder":
        return f":speech_balloon: {addressee(person)}: {text}"
    if event.kind == "paged":  # sent to a pager with no link back (PagerDuty by routing key)
        return f":pager: {text}"
    if event.kind == "link":
        return f":link: {mrkdwn.link(event.data.get('url'), event.text or '')}"
    if event.kind == "runbook":
        items = event.data.get("runbooks") or []
        links = [mrkdwn.link(i.get("url"), str(i.get("label") or "Runbook")) for i in items if isinstance(i, dict)]
        return f":books: {mrkdwn.join(links, ' · ', 2900)}"
    if event.kind == "drill":
        return drill_result_text(event)
    return f":information_source: {text} — {who}"


def drill_result_text(event: TimelineEvent) -> str:
    """A game day's outcome in its thread: each hop, its time, and the verdict (what went wrong is escaped)."""
    passed = event.data.get("outcome") == "PASS"
    lines = [f"{':white_check_mark:' if passed else ':x:'} *Game day {'PASS' if passed else 'FAIL'}*"]
    for hop in event.data.get("hops") or []:
        mark = {"passed": ":white_check_mark:", "failed": ":x:"}.get(hop.get("state"), ":white_small_square:")
        when = f" +{hop['elapsed']:.1f}s" if isinstance(hop.get("elapsed"), int | float) else ""
        detail = f" — {mrkdwn.escape(str(hop['detail']), 500)}" if hop.get("detail") else ""
        lines.append(f"{mark} {mrkdwn.escape(str(hop.get('name')))}{when}{detail}")
    if event.data.get("cleanup"):
        lines.append(f"_{mrkdwn.escape(str(event.data['cleanup']), 500)}_")
    return mrkdwn.join(lines, "\n", 3900)


def reply_blocks(event: TimelineEvent, text: str) -> dict[str, Any]:
    """Blocks for a thread reply that needs more than text: a reminder carries a snooze button."""
    if event.kind != "reminder":
        return {}
    minutes = int(SNOOZE.total_seconds() // 60)
    button = {
        "type": "button",
        "action_id": SNOOZE_ACTION,
        "value": f"INC-{event.incident_id}",
        "text": {"type": "plain_text", "text": f"Snooze {minutes} min"},
    }
    return {
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "block_id": "reminder_actions", "elements": [button]},
        ]
    }


def people_event_text(event: TimelineEvent, who: str, subject: str | None) -> str:
    """An owner or role change in the thread; `subject` is the person as mrkdwn (see `person`), None when cleared."""
    role = mrkdwn.escape(str(event.data.get("role") or "").title())
    if event.kind == "owner":
        said = f"Owner: {subject}" if subject else "Owner cleared"
    else:
        said = f"{role}: {subject}" if subject else f"{role} cleared"
    return f":bust_in_silhouette: *{said}* — {who}"


def owner_dm_text(ref: str, severity: str, title: str, thread_url: str | None, who: str) -> str:
    """The direct message to a new owner; `who` (whoever assigned it) is mrkdwn already."""
    where = mrkdwn.link(thread_url, "Open the incident thread") if thread_url else ""
    return f":bust_in_silhouette: {who} made you the owner of *{mrkdwn.escape(f'{ref} [{severity}] {title}')}*. {where}".rstrip()


def management_text(incident: Incident, thread_url: str | None, who: str, *, raised: bool) -> str:
    """The notice management gets of a SEV-1; `who` (who declared or raised it) is mrkdwn already."""
    what = "raised to SEV-1" if raised else "declared"
    subject = mrkdwn.escape(f"{incident.ref} [{incident.severity}] {incident.title} ({', '.join(incident.services)})")
    where = mrkdwn.link(thread_url, "Open the incident thread") if thread_url else "(no Slack thread yet)"
    return f":rotating_light: Critical incident {what} by {who}: *{subject}*. {where}"


def added_message_text(event: TimelineEvent, who: str) -> str:
    """A Slack message added to the timeline (message shortcut): who added it, whose it is, where it is."""
    author = event.data.get("slack_author")
    by = mrkdwn.user(author) if isinstance(author, str) else "someone"
    url = event.data.get("slack_permalink")
    link = mrkdwn.link(url if isinstance(url, str) else None, "message")
    quote = mrkdwn.escape(event.data.get("slack_text") or "", 2500).replace("\n", "\n>")
    return f":memo: {who} added a {link} by {by} to the timeline:\n>{quote}"


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
    if isinstance(result, OnCallResult) and not as_json:  # times as date tokens: each reader's own zone
        return {"response_type": "ephemeral", "text": "\n".join(oncall_lines(result, mrkdwn.date, mrkdwn.escape))}
    return {"response_type": "ephemeral", "text": answer_text(result, as_json=as_json)}


def error_answer(message: str, usage: str = "") -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": warning_text(message, usage)}


def declare_modal(channel_id: str, field_names: Sequence[str] = ()) -> dict[str, Any]:
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
            {
                "type": "input",
                "block_id": "fields",
                "optional": True,
                "label": {"type": "plain_text", "text": "Custom fields (one key=value a line)"},
                "hint": {"type": "plain_text", "text": f"Known fields: {', '.join(field_names) or 'none'}"[:150]},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "placeholder": {"type": "plain_text", "text": "environment=production"},
                },
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
