"""Words the read paths share, as plain functions (stdlib only): the full path (bot/app.py, the read
models) and the terminal's fast `im status` (bot/fast_status.py) say them the same way."""

from __future__ import annotations

from collections.abc import Mapping

NOT_CLOSED_TITLE = "Incidents not closed"  # what `status` lists (its JSON's title)


def person_label(person: Mapping[str, str | None]) -> str:
    """How a person (name, email, slack_user_id, pagerduty_user_id) is shown: the first one known."""
    keys = ("name", "email", "slack_user_id", "pagerduty_user_id")
    return next((str(person[key]) for key in keys if person.get(key)), "someone")


def dead_job_problem(destination: str, kind: str, attempts: int, last_error: str | None) -> str:
    """A dead-lettered delivery, as `status` lists it."""
    return f"{destination} {kind} failed (attempt {attempts}): {last_error}"


def waiting_problem(count: int) -> str:
    return f"{count} deliveries waiting for more than a minute (is im serve running?)"


def actor_fallback_name(actor: str) -> str:
    """`<origin>:<id>` -> the id: an actor's name when no adapter knows a better one."""
    return actor.split(":", 1)[-1]
