"""Build and sign what Slack sends the app (slash commands, interactivity).

Field sets follow the real payloads in shared/slack/payloads, but everything is
built in code so this module works without shared/.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx

DEFAULT_USER_ID = "U0LAN0Z89"
DEFAULT_USER_NAME = "alice"
DEFAULT_CHANNEL_ID = "C0INCIDENT"
DEFAULT_CHANNEL_NAME = "incidents"
DEFAULT_TEAM_ID = "T0001"
DEFAULT_TEAM_DOMAIN = "incident-co"
DEFAULT_APP_ID = "A0APP00001"
DEFAULT_TRIGGER_ID = "13345224609.738474920.8088930838d88f008e0"
VERIFICATION_TOKEN = "verification_token"  # deprecated by Slack; Bolt ignores it


def sign(body: bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request-signing headers for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command(
    text: str,
    *,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    team_id: str = DEFAULT_TEAM_ID,
    command: str = "/im",
    response_url: str = "https://hooks.slack.com/commands/T0001/1/x",
    trigger_id: str = DEFAULT_TRIGGER_ID,
    user_team: str | None = None,
) -> bytes:
    """Form-encoded slash command body (no enterprise_* fields: not an Enterprise Grid). ``user_team``:
    the user's own team, when it is not the channel's (Slack Connect)."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": DEFAULT_TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": DEFAULT_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    if user_team is not None:
        fields["user_team"] = user_team
    return urlencode(fields).encode()


def _user(user_id: str, user_name: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def _team(team_id: str) -> dict[str, str]:
    return {"id": team_id, "domain": DEFAULT_TEAM_DOMAIN}


def interactive_body(payload: dict[str, Any]) -> bytes:
    """Form body ``payload=<json>`` as Slack sends for interactivity."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_actions(
    action_id: str,
    value: str,
    *,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    team_id: str = DEFAULT_TEAM_ID,
    message_ts: str = "1700000000.000100",
    thread_ts: str | None = None,
    block_id: str = "incident_actions",
    response_url: str = "https://hooks.slack.com/actions/T0001/1/x",
    trigger_id: str = DEFAULT_TRIGGER_ID,
    message: dict[str, Any] | None = None,
) -> bytes:
    """A button click on a message.  ``thread_ts`` marks a message inside a thread;
    ``message`` (the clicked message, as Slack includes it) is added when given."""
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": False}
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": DEFAULT_APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": _team(team_id),
        "channel": {"id": channel_id, "name": channel_name},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": value, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{int(time.time())}.000001",
            }
        ],
    }
    if message is not None:
        payload["message"] = message
    return interactive_body(payload)


def message_shortcut(
    callback_id: str,
    *,
    message_ts: str,
    text: str,
    author: str,
    thread_ts: str | None = None,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    team_id: str = DEFAULT_TEAM_ID,
    response_url: str = "https://hooks.slack.com/app/T0001/1/x",
    trigger_id: str = DEFAULT_TRIGGER_ID,
) -> bytes:
    """A message shortcut (``type: message_action``) on the message ``message_ts`` written by ``author``;
    the fields of Slack's message-shortcut payload (the shortcut envelope in shared/slack/payloads plus
    channel, message, message_ts and response_url)."""
    message: dict[str, Any] = {"type": "message", "user": author, "text": text, "ts": message_ts}
    if thread_ts is not None:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": f"{time.time():.6f}",
        "team": _team(team_id),
        "user": _user(user_id, user_name, team_id),
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": message_ts,
        "message": message,
    }
    return interactive_body(payload)


def text_input(value: str) -> dict[str, Any]:
    """A ``plain_text_input`` entry for ``view_submission`` values."""
    return {"type": "plain_text_input", "value": value}


def static_select(value: str | None, text: str | None = None) -> dict[str, Any]:
    """A ``static_select`` entry for ``view_submission`` values (None: nothing chosen)."""
    option = None if value is None else {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
    return {"type": "static_select", "selected_option": option}


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    private_metadata: str = "",
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    team_id: str = DEFAULT_TEAM_ID,
    view_id: str = "V0000000001",
    trigger_id: str = DEFAULT_TRIGGER_ID,
) -> bytes:
    """A modal submission; ``values`` is ``state.values``:
    ``{block_id: {action_id: text_input("x") | static_select("sev1") | {...}}}``.
    The view's ``blocks`` are input blocks generated to match ``values``."""
    blocks = [
        {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": block_id},
            "optional": False,
            "element": {"type": entry.get("type", "plain_text_input"), "action_id": action_id},
        }
        for block_id, actions in values.items()
        for action_id, entry in actions.items()
    ]
    payload = {
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, user_name, team_id),
        "api_app_id": DEFAULT_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks,
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": "1700000000.fakehash",
            "title": {"type": "plain_text", "text": "Incident"},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel"},
            "submit": {"type": "plain_text", "text": "Submit"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": DEFAULT_APP_ID,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": "B0BOT00001",
        },
        "response_urls": [],
    }
    return interactive_body(payload)


class SlackClient:
    """Posts signed requests to a running app at ``{base_url}/slack/events``."""

    def __init__(self, base_url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.signing_secret = signing_secret
        self._http = httpx.Client(timeout=timeout)

    def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/slack/events",
    ) -> httpx.Response:
        """``signature`` overrides the computed one (to test rejection); ``headers``
        are added last (e.g. ``X-Slack-Retry-Num``)."""
        all_headers = {"Content-Type": content_type, **sign(body, self.signing_secret, timestamp)}
        if signature is not None:
            all_headers["X-Slack-Signature"] = signature
        all_headers.update(headers or {})
        return self._http.post(self.base_url + path, content=body, headers=all_headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
