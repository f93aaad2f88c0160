"""The incident lifecycle written out case by case: the unit tests check TRANSITIONS and IncidentService
against it, so a change to a rule names the (verb, status) it changed."""

from __future__ import annotations

SAME = "no-op"  # already at the target: not an error, not an event
ACK_REFUSED = "it cannot be acknowledged (reopen it first)"
UNACK_REFUSED = "only an acknowledged incident can be unacknowledged"
RESOLVE_REFUSED = "it cannot be resolved (reopen it first)"
REOPEN_REFUSED = "only a resolved or closed incident can be reopened"

# (verb, current status) -> the status it leads to, SAME, or the refusal shown after "INC-n is <status>: "
LIFECYCLE: dict[tuple[str, str], str] = {
    ("acknowledge", "open"): "mitigated",
    ("acknowledge", "mitigated"): SAME,
    ("acknowledge", "resolved"): ACK_REFUSED,
    ("acknowledge", "closed"): ACK_REFUSED,
    ("unacknowledge", "open"): SAME,
    ("unacknowledge", "mitigated"): "open",
    ("unacknowledge", "resolved"): UNACK_REFUSED,
    ("unacknowledge", "closed"): UNACK_REFUSED,
    ("resolve", "open"): "resolved",
    ("resolve", "mitigated"): "resolved",
    ("resolve", "resolved"): SAME,
    ("resolve", "closed"): RESOLVE_REFUSED,
    ("close", "open"): "closed",
    ("close", "mitigated"): "closed",
    ("close", "resolved"): "closed",
    ("close", "closed"): SAME,
    ("reopen", "open"): SAME,
    ("reopen", "mitigated"): REOPEN_REFUSED,
    ("reopen", "resolved"): "open",
    ("reopen", "closed"): "open",
}
