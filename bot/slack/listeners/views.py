"""Modal submissions: declare (from `/im declare` with no arguments) and the resolution note."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App

from bot.app import Im
from bot.domain.errors import DomainError, InvalidInput
from bot.domain.fields import InvalidField
from bot.slack import mrkdwn, render
from bot.slack.inbound import dig, payload_user, text_field
from bot.slack.listeners.common import slack_actor, user_message
from bot.slack.workspace import Workspace


def _value(view: dict[str, Any], block: str) -> str | None:
    """The text entered in one input block; None when absent or not text (a view without `state` included)."""
    field = dig(view, "state", "values", block, "value")
    if text_field(field, "type") == "static_select":
        return text_field(field, "selected_option", "value")
    return text_field(field, "value")


def _meta(view: dict[str, Any]) -> dict[str, str]:
    """What we put in private_metadata (strings only); nothing when it is not ours."""
    raw = text_field(view, "private_metadata") or "{}"
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return {k: v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}


def _done_view(title: str, text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def register(app: App, im: Im, workspace: Workspace) -> None:
    def declare(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        title, severity = _value(view, "title") or "", _value(view, "severity") or ""
        services = [s for s in (_value(view, "services") or "").split(",") if s.strip()]
        channel, actor = _meta(view).get("channel"), slack_actor(payload_user(body), workspace=workspace)
        try:
            incident = im.incidents.declare(
                title=title,
                severity=severity,
                services=services,
                description=_value(view, "description"),
                fields=[line for line in (_value(view, "fields") or "").splitlines() if line.strip()],
                actor=actor,
                context={"slack_channel": channel} if channel else {},
            )
        except InvalidField as exc:
            ack(response_action="errors", errors={"fields": str(exc)})
            return
        except InvalidInput as exc:
            block = "services" if "service" in str(exc) else "title" if "title" in str(exc) else "severity"
            ack(response_action="errors", errors={block: str(exc)})
            return
        except Exception as exc:  # noqa: BLE001
            ack(response_action="errors", errors={"title": user_message(exc)[0]})
            return
        assert incident is not None
        ack(
            response_action="update",
            view=_done_view(
                "Incident declared", f"*{incident.ref}* declared: {incident.severity} {mrkdwn.escape(incident.title)}"
            ),
        )

    def resolve(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta, actor = _meta(view), slack_actor(payload_user(body), workspace=workspace)
        try:
            change = im.incidents.transition(
                meta.get("incident", ""),
                "resolve",
                actor=actor,
                note=_value(view, "note"),
                context={"slack_channel": meta.get("channel")} if meta.get("channel") else {},
            )
        except DomainError as exc:
            ack(response_action="errors", errors={"note": str(exc)})
            return
        except Exception as exc:  # noqa: BLE001
            ack(response_action="errors", errors={"note": user_message(exc)[0]})
            return
        if not change.changed:
            ack(response_action="update", view=_done_view("Already resolved", f"{change.incident.ref} was already resolved."))
            return
        ack()

    app.view(render.DECLARE_VIEW)(declare)
    app.view(render.RESOLVE_VIEW)(resolve)
