"""Buttons on the incident's messages: Acknowledge acts at once; Resolve asks for a note first; Snooze
(on a status-update reminder) holds the reminders for a while."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.app import Im
from bot.clock import utcnow
from bot.domain.errors import DomainError
from bot.domain.models import Status
from bot.domain.people import PersonRef
from bot.reminders import SNOOZE
from bot.slack import render
from bot.slack.inbound import payload_user, text_field
from bot.slack.listeners.common import slack_actor, user_message
from bot.slack.responses import queue_ephemeral
from bot.slack.workspace import Workspace


def _channel(body: dict[str, Any]) -> str | None:
    return text_field(body, "channel", "id") or text_field(body, "container", "channel_id")


def _where(body: dict[str, Any]) -> dict[str, Any]:
    """Where to answer the clicker; a payload without a user is refused (MalformedPayload: 400)."""
    return {"response_url": text_field(body, "response_url"), "channel": _channel(body), "user": payload_user(body)["id"]}


def _tell(im: Im, where: dict[str, Any], text: str) -> None:
    """An ephemeral answer to the clicker, queued (a local write) and sent after the ack."""
    with im.store.transaction() as session:
        queue_ephemeral(session, text=text, **where)


def register(app: App, im: Im, workspace: Workspace) -> None:
    def acknowledge(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        where, actor = _where(body), slack_actor(payload_user(body), workspace=workspace)
        ref = text_field(action, "value") or ""
        try:
            change = im.incidents.transition(ref, "acknowledge", actor=actor, context={"slack_channel": where["channel"]})
            if not change.changed:
                _tell(im, where, f"{change.incident.ref} is already acknowledged.")
        except DomainError as exc:
            _tell(im, where, render.warning_text(str(exc)))
        except Exception as exc:  # noqa: BLE001
            _tell(im, where, render.warning_text(user_message(exc)[0]))
        ack()

    def resolve_check(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        where, ref = _where(body), text_field(action, "value") or ""
        try:
            incident = im.incidents.get(ref)
            if incident.status in (Status.RESOLVED, Status.CLOSED):
                _tell(im, where, f"{incident.ref} is already {incident.status}.")
        except DomainError as exc:
            _tell(im, where, render.warning_text(str(exc)))
        ack()

    def resolve_modal(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        trigger_id, ref = text_field(body, "trigger_id"), text_field(action, "value") or ""
        try:
            incident = im.incidents.get(ref)
        except DomainError:
            return
        if trigger_id and incident.status in (Status.OPEN, Status.MITIGATED):
            client.views_open(trigger_id=trigger_id, view=render.resolve_modal(incident.ref, _channel(body)))

    def snooze(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        try:
            im.incidents.snooze_reminders(
                action.get("value", ""), utcnow() + SNOOZE, actor=slack_actor(payload_user(body), workspace=workspace)
            )
        except DomainError as exc:
            _tell(im, _where(body), render.warning_text(str(exc)))
        except Exception as exc:  # noqa: BLE001
            _tell(im, _where(body), render.warning_text(user_message(exc)[0]))
        ack()

    def take(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """ "Take it": the clicker owns the incident, unless someone took it first (no stealing by button)."""
        where, actor = _where(body), slack_actor(payload_user(body), workspace=workspace)
        try:
            change = im.incidents.assign(
                action.get("value", ""),
                PersonRef(slack_user_id=actor.id, name=actor.name),
                actor=actor,
                context={"slack_channel": where["channel"]},
                only_if_unowned=True,
            )
            if not change.changed:
                owner = im.describe(change.incident).owner
                who = "you" if owner and owner.slack_user_id == actor.id else (render.person(owner) if owner else "someone")
                _tell(im, where, f"{change.incident.ref} is already owned by {who}.")
        except DomainError as exc:
            _tell(im, where, render.warning_text(str(exc)))
        except Exception as exc:  # noqa: BLE001
            _tell(im, where, render.warning_text(user_message(exc)[0]))
        ack()

    app.action(render.ACK_ACTION)(acknowledge)
    app.action(render.SNOOZE_ACTION)(snooze)
    app.action(render.TAKE_ACTION)(take)
    app.action(render.RESOLVE_ACTION)(ack=resolve_check, lazy=[resolve_modal])

    def unknown(ack: Ack, body: dict[str, Any]) -> None:
        _tell(im, _where(body), ":warning: That button is no longer in use. Use `/im help` to see what you can do.")
        ack()

    import re

    app.action(re.compile(r".*"))(unknown)  # registered last: only buttons nobody else claims
