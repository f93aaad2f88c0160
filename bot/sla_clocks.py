"""SLA clocks as plain data (stdlib only): the default targets, the tightest of several sources, and each
clock's state at a moment. bot/sla.py wraps them in its read model and reads what they need from the
store; the terminal's fast `im status` (bot/fast_status.py) computes the very same clocks from sqlite3."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

KINDS: tuple[Literal["ack", "resolve"], ...] = ("ack", "resolve")
Targets = Mapping[str, Mapping[str, int]]  # severity -> {"ack": seconds, "resolve": seconds}

# the settings' defaults (IM_SLA_ACK, IM_SLA_RESOLVE, IM_SLA_WARN_FRACTION; bot/config.py)
DEFAULT_ACK = {"SEV-1": 300, "SEV-2": 900, "SEV-3": 3600, "SEV-4": 14400}
DEFAULT_RESOLVE = {"SEV-1": 4 * 3600, "SEV-2": 8 * 3600, "SEV-3": 86400, "SEV-4": 3 * 86400}
DEFAULT_WARN_FRACTION = 0.8


def tightest(sources: Iterable[Targets]) -> dict[str, dict[str, int]]:
    """One target per severity and kind: the smallest any source sets."""
    found: dict[str, dict[str, int]] = {}
    for source in sources:
        for severity, kinds in source.items():
            for kind, seconds in kinds.items():
                if seconds and (kind not in found.setdefault(severity, {}) or seconds < found[severity][kind]):
                    found[severity][kind] = seconds
    return found


def per_kind(ack: Mapping[str, int], resolve: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Two per-severity settings (IM_SLA_ACK, IM_SLA_RESOLVE) as one table of targets."""
    found: dict[str, dict[str, int]] = {}
    for kind, table in (("ack", ack), ("resolve", resolve)):
        for severity, seconds in table.items():
            found.setdefault(severity, {})[kind] = seconds
    return found


@dataclass(frozen=True)
class ClockTimes:
    """What an incident's clocks are computed from."""

    severity: str
    started_at: datetime  # declared, or the last reopen
    acknowledged_at: datetime | None  # since the start
    resolved_at: datetime | None  # resolved or closed since the start


def stops_since_reopen(steps: Sequence[tuple[Mapping[str, Any], datetime]]) -> tuple[datetime | None, datetime | None]:
    """(acknowledged, resolved) after the last reopen, from an incident's `status` steps (data, at), oldest first."""
    reopen = max((i for i, (data, _) in enumerate(steps) if data.get("verb") == "reopen"), default=-1)
    since = steps[reopen + 1 :]
    acked = next((at for data, at in since if data.get("to") == "mitigated"), None)
    resolved = next((at for data, at in since if data.get("to") in ("resolved", "closed")), None)
    return acked, resolved


def clock_fields(times: ClockTimes, targets: Targets, warn_fraction: float, now: datetime) -> list[dict[str, Any]]:
    """The incident's clocks at `now` (the fields of bot.domain.views.SlaClockView). Breached only once
    `now` is past the due time (acknowledged at exactly the target is in time); warned from `warning_at`
    on. Resolving also stops the ack clock."""
    found = []
    for kind in KINDS:
        seconds = targets.get(times.severity, {}).get(kind)
        if not seconds:
            continue
        start = times.started_at
        due = start + timedelta(seconds=seconds)
        warning = start + timedelta(seconds=round(seconds * warn_fraction)) if warn_fraction < 1 else None
        stops = [t for t in (times.acknowledged_at if kind == "ack" else None, times.resolved_at) if t is not None]
        stopped = min(stops, default=None)
        state: Literal["running", "warned", "breached", "met"]
        if stopped is not None:
            state = "met" if stopped <= due else "breached"
        elif now > due:
            state = "breached"
        elif warning is not None and now >= warning:
            state = "warned"
        else:
            state = "running"
        found.append(
            {
                "kind": kind,
                "severity": times.severity,
                "target_seconds": seconds,
                "started_at": start,
                "warning_at": warning,
                "due_at": due,
                "stopped_at": stopped,
                "state": state,
            }
        )
    return found
