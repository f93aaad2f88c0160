"""What every listener needs: who is acting, the incident a channel or thread belongs to, and one
place that turns errors into ephemeral answers (never a stack trace in Slack)."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from sqlmodel import select

from bot.app import Im
from bot.domain.errors import DomainError
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.slack.models import SlackThread
from bot.slack.workspace import Workspace
from commands.context import Context
from commands.grammar import UsageError

log = logging.getLogger(__name__)


def slack_actor(
    user: dict[str, Any] | str, name: str | None = None, *, workspace: Workspace | None = None, team: str | None = None
) -> Actor:
    """Who is acting. A user of another team than ours (Slack Connect: `user.team_id`, a command's
    `user_team` or `team_id`) is external: the domain lets them read, never change."""
    if isinstance(user, dict):
        user_id, name, team = user["id"], user.get("name") or user.get("username") or name, team or user.get("team_id")
    else:
        user_id = user
    external = workspace.is_external(team) if workspace is not None else False
    return Actor(Origin.SLACK, user_id, name, external=external)


_LINK = re.compile(r"<(?!@)([^<>|]+)(?:\|([^<>]*))?>")


def plain_text(text: str) -> str:
    """A slash command's text as typed: the manifest's should_escape makes Slack send `@alice` as
    `<@U1|alice>` (the ID that names a person: kept), and with it links, channels and emails as tokens,
    undone here as they were before (`<#C1|ops>` -> `#ops`, `<mailto:a@b|a@b>` -> `a@b`,
    `<https://x|x>` -> `https://x`). Mentions in events always came as tokens and are left as they are."""

    def unwrap(found: re.Match[str]) -> str:
        target, label = found.group(1), found.group(2)
        if target.startswith("#"):
            return f"#{label}" if label else target
        if target.startswith("!"):
            return label or target
        return target.removeprefix("mailto:")

    return _LINK.sub(unwrap, text)


def incident_for_channel(im: Im, channel_id: str | None, thread_ts: str | None = None) -> int | None:
    """The incident whose war room this channel is, or whose thread this is."""
    if not channel_id:
        return None
    with im.store.read() as session:
        if thread_ts:
            row = session.exec(select(SlackThread).where(SlackThread.channel == channel_id, SlackThread.ts == thread_ts)).first()
            if row:
                return row.incident_id
        row = session.exec(select(SlackThread).where(SlackThread.war_room == channel_id)).first()
        return row.incident_id if row else None


def slack_context(
    im: Im, *, actor: Actor, channel_id: str | None, thread_ts: str | None = None, once_key: str | None = None
) -> Context:
    return Context(
        im=im,
        actor=actor,
        frontend="slack",
        prog="/im",
        find_default_incident=lambda: incident_for_channel(im, channel_id, thread_ts),
        origin_context={"slack_channel": channel_id} if channel_id else {},
        once_key=once_key,
    )


def unexpected(exc: Exception) -> str:
    """Log the whole story for us; give the user a reference, not a traceback."""
    ref = secrets.token_hex(4)
    log.exception("unexpected error (ref %s)", ref)
    return f"Something went wrong on our side (ref {ref}). Nothing was half-done: try again, or use the terminal."


def user_message(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, UsageError):
        return exc.message, exc.usage
    if isinstance(exc, DomainError):
        return str(exc), ""
    return unexpected(exc), ""
