"""The SLA targets a report judges against: those in force for the clocks (`Im.sla_targets`: the
IM_SLA_ACK / IM_SLA_RESOLVE settings and every connector's `sla_mapping`, the tightest winning)."""

from __future__ import annotations

Targets = dict[str, dict[str, int]]  # severity -> {"ack": seconds, "resolve": seconds}, as bot.sla.Targets
