"""The Bolt app: signature-checked (signing secret, 5-minute window), listeners registered by kind.

`process_before_response=True`: the HTTP answer goes out when the listener returns, and our listeners
return right after the local commit, so Slack gets its answer without Bolt's 10 ms ack polling.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.app import Im
from bot.slack.listeners import actions, commands, events, shortcuts, views
from bot.slack.workspace import Workspace


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
    commands.register(app, im, workspace)
    shortcuts.register(app, im, workspace)
    actions.register(app, im, workspace)  # last of the interactivity: it answers buttons nobody else claims
    views.register(app, im, workspace)
    events.register(app, im, workspace)
    return app
