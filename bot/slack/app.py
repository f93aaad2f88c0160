"""The Bolt app: signature-checked (signing secret, 5-minute window), listeners registered by kind.

`process_before_response=True`: the HTTP answer goes out when the listener returns, and our listeners
return right after the local commit, so Slack gets its answer without Bolt's 10 ms ack polling.

A listener (or matcher) that raises never makes a 500: a payload missing what we need is answered 400
with the reason; anything else is logged once with a reference and answered 200 with that reference
(an ephemeral message, or the error shown on a submitted form).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.app import Im
from bot.slack.inbound import MalformedPayload, dig
from bot.slack.listeners import actions, commands, events, shortcuts, views
from bot.slack.listeners.common import unexpected
from bot.slack.workspace import Workspace

log = logging.getLogger(__name__)


def answer_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """Bolt's global error handler: what a raising listener or middleware answers instead of a 500."""
    if isinstance(error, MalformedPayload):
        log.warning("Slack request refused (400): %s", error)
        return BoltResponse(status=400, body={"error": str(error)})
    message = unexpected(error)  # logs the traceback once, under the reference it gives the user
    blocks = dig(body, "view", "state", "values")
    if dig(body, "type") == "view_submission" and isinstance(blocks, dict) and blocks:
        return BoltResponse(status=200, body={"response_action": "errors", "errors": {next(iter(blocks)): message}})
    return BoltResponse(status=200, body={"response_type": "ephemeral", "text": message})


def build_bolt_app(im: Im, client: WebClient, workspace: Workspace | None = None) -> App:
    settings = im.settings
    workspace = workspace or Workspace(im.store, settings, client)
    assert settings.slack_signing_secret is not None or settings.slack_app_token is not None
    token = client.token

    def authorize(enterprise_id: str | None, team_id: str | None, **_: Any) -> AuthorizeResult:
        # A single-workspace app knows its token. Bolt's default would call auth.test on the first
        # request, inside the ack path: with Slack slow or down, that request would wait or fail.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    app = App(
        # Bolt hands each listener a client with the token from authorize(); this one carries none
        client=WebClient(base_url=client.base_url, timeout=client.timeout),
        authorize=authorize,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "socket-mode",
        process_before_response=True,
        request_verification_enabled=settings.slack_signing_secret is not None,
    )
    app.error(answer_error)
    commands.register(app, im, workspace)
    shortcuts.register(app, im, workspace)
    actions.register(app, im, workspace)  # last of the interactivity: it answers buttons nobody else claims
    views.register(app, im, workspace)
    events.register(app, im, workspace)
    return app
