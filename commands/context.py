"""What a command handler is given: the app, who is acting, and what the front end knows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.domain.incidents import Actor
from bot.wiring import Im
from commands.grammar import UsageError


@dataclass
class Context:
    im: Im
    actor: Actor
    frontend: str  # "slack" or "cli"
    prog: str  # "/im" or "im"
    default_incident: int | None = None  # e.g. the war room the command was typed in
    origin_context: dict[str, Any] = field(default_factory=dict)  # e.g. {"slack_channel": "C123"}
    prompt: Callable[[str, str | None, bool], str] | None = None  # terminal prompts (label, default, secret)
    usage: str = ""
    once_key: str | None = None  # an inbound request's id: a retry of it changes nothing

    def incident(self, given: str | None) -> str | int:
        if given:
            return given
        if self.default_incident is not None:
            return self.default_incident
        hint = " (or run it in the incident's war-room channel)" if self.frontend == "slack" else ""
        raise UsageError(f"--incident is required{hint}", self.usage)
