"""The SLA targets a report judges against: one function, so it can be pointed at the SLA settings' own
reader once they are merged (bot/sla.py, IM_SLA_ACK / IM_SLA_RESOLVE).

Until then: IM_SLA_ACK and IM_SLA_RESOLVE ("SEV-1=5m,SEV-2=15m,...") win where set; a severity and kind
they leave out takes the tightest target any connector maps (PagerDuty's `sla_mapping`), through the
providers adapters register on the app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from bot.domain.errors import InvalidInput
from bot.domain.models import Severity

Targets = dict[str, dict[str, int]]  # severity -> {"ack": seconds, "resolve": seconds}, as bot.sla.Targets
TargetProvider = Callable[[], Targets]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_targets(text: str | None) -> dict[str, int]:
    """'SEV-1=5m,SEV-2=15m' -> {"SEV-1": 300, "SEV-2": 900}; a bad part is refused with what was expected."""
    found: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        severity, _, duration = part.partition("=")
        match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", duration)
        if not match or not severity.strip():
            raise InvalidInput(f"'{part}' is not a target (expected SEV-1=5m, with s, m, h or d)")
        found[Severity.parse(severity).value] = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    return found


def report_targets(ack: str | None, resolve: str | None, providers: Iterable[TargetProvider] = ()) -> Targets:
    targets: Targets = {}
    for provider in providers:
        for severity, kinds in provider().items():
            for kind, seconds in kinds.items():
                if seconds and (kind not in targets.setdefault(severity, {}) or seconds < targets[severity][kind]):
                    targets[severity][kind] = seconds
    for kind, text in (("ack", ack), ("resolve", resolve)):
        for severity, seconds in parse_targets(text).items():
            targets.setdefault(severity, {})[kind] = seconds
    return targets
