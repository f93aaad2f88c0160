"""What a command handler is given: the app, who is acting, and what the front end knows."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.app import Im
from bot.domain.incidents import Actor, parse_ref
from commands.grammar import UsageError

_INCIDENT = re.compile(r"(?i)(inc-)?\d+")


@dataclass(frozen=True)
class Words:
    """Positional words with the incident ID that may lead them (`assign INC-3 @alice`) taken out."""

    incident: str | None
    rest: list[str]


@dataclass
class Context:
    im: Im
    actor: Actor
    frontend: str  # "slack" or "cli"
    prog: str  # "/im" or "im"
    # the incident the front end can infer (the war room or thread the command was typed in);
    # looked up only when a command needs it and --incident was not given
    find_default_incident: Callable[[], int | None] | None = None
    origin_context: dict[str, Any] = field(default_factory=dict)  # e.g. {"slack_channel": "C123"}
    prompt: Callable[[str, str | None, bool], str] | None = None  # terminal prompts (label, default, secret)
    usage: str = ""
    once_key: str | None = None  # an inbound request's id: a retry of it changes nothing
    as_json: bool = False  # set from the parsed --json flag
    warnings: list[str] = field(default_factory=list)  # said after the result (stderr in a terminal)
    # a terminal's way to show results as they come, before the command ends (`im logs --follow`)
    follow: Callable[[Any], None] | None = None

    def default_incident(self) -> int | None:
        return self.find_default_incident() if self.find_default_incident else None

    def incident(self, given: str | None) -> str | int:
        if given:
            return given
        inferred = self.default_incident()
        if inferred is not None:
            return inferred
        hint = " (or run it in the incident's war-room channel)" if self.frontend == "slack" else ""
        raise UsageError(f"--incident is required{hint}", self.usage)

    def split_incident(self, given: str | None, words: list[str]) -> Words:
        """An incident ID may lead the positional words; it must agree with --incident when both are given."""
        if words and _INCIDENT.fullmatch(words[0]):
            if given and parse_ref(given) != parse_ref(words[0]):
                raise UsageError(f"two different incidents given: {given} and {words[0]}", self.usage)
            return Words(words[0], words[1:])
        return Words(given, words)
