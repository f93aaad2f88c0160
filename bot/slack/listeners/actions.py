"""Buttons on the incident's root message: Acknowledge acts at once; Resolve asks for a note first."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.app import Im
from bot.domain.errors import DomainError
from bot.domain.models import Status
from bot.slack import render
from bot.slack.listeners.common import slack_actor, user_message
from bot.slack.responses import queue_ephemeral


def _where(body: dict[str, Any]) -> dict[str, Any]:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return {"response_url": body.get("response_url"), "channel": channel, "user": body["user"]["id"]}


def _tell(im: Im, body: dict[str, Any], text: str) -> None:
    """An ephemeral answer to the clicker, queued (a local write) and sent after the ack."""
    with im.store.transaction() as session:
        queue_ephemeral(session, text=text, **_where(body))
    im.outbox_ready.set()


def register(app: App, im: Im) -> None:
    def acknowledge(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ref = action.get("value", "")
        try:
            change = im.incidents.transition(
                ref, "acknowledge", actor=slack_actor(body["user"]), context={"slack_channel": _where(body)["channel"]}
            )
            if not change.changed:
                _tell(im, body, f"{change.incident.ref} is already acknowledged.")
        except DomainError as exc:
            _tell(im, body, render.warning_text(str(exc)))
        except Exception as exc:  # noqa: BLE001
            _tell(im, body, render.warning_text(user_message(exc)[0]))
        ack()

    def resolve_check(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ref = action.get("value", "")
        try:
            incident = im.incidents.get(ref)
            if incident.status in (Status.RESOLVED, Status.CLOSED):
                _tell(im, body, f"{incident.ref} is already {incident.status}.")
        except DomainError as exc:
            _tell(im, body, render.warning_text(str(exc)))
        ack()

    def resolve_modal(body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ref = action.get("value", "")
        try:
            incident = im.incidents.get(ref)
        except DomainError:
            return
        if incident.status in (Status.OPEN, Status.MITIGATED):
            client.views_open(trigger_id=body["trigger_id"], view=render.resolve_modal(incident.ref, _where(body)["channel"]))

    app.action(render.ACK_ACTION)(acknowledge)
    app.action(render.RESOLVE_ACTION)(ack=resolve_check, lazy=[resolve_modal])

    def unknown(ack: Ack, body: dict[str, Any]) -> None:
        _tell(im, body, ":warning: That button is no longer in use. Use `/im help` to see what you can do.")
        ack()

    import re

    app.action(re.compile(r".*"))(unknown)  # registered last: only buttons nobody else claims
