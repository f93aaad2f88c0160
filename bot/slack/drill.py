"""What proves a game day's Slack hop (bot/domain/gameday.py): the drill's root message, posted."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.app import Im
from bot.domain.errors import InvalidInput
from bot.domain.gameday import DrillTarget, Evidence
from bot.slack.models import SlackThread


def install(im: Im) -> None:
    settings = im.settings

    def preflight(_: Session, service: str, connector: str | None, context: dict[str, Any]) -> str | None:
        if settings.slack_bot_token is None:
            raise InvalidInput(
                "Slack is not configured where this runs (SLACK_BOT_TOKEN): a game day posts its incident there; "
                "give it the settings im serve has"
            )
        if not (settings.slack_channel or context.get("slack_channel")):
            raise InvalidInput("IM_SLACK_CHANNEL is not set: a game day needs a channel to post its incident in")
        return None

    def root_posted(session: Session, target: DrillTarget) -> Evidence:
        thread = session.get(SlackThread, target.incident_id)
        if thread is not None and thread.ts:
            return Evidence(True, f"in {thread.channel}, ts {thread.ts}")
        return Evidence(False, "the root message is not posted yet")

    im.drill_hooks.preflights.append(preflight)
    im.drill_hooks.probes["slack.root"] = root_posted
