"""Who is on call for an im service, asked of PagerDuty (escalation policy -> on-calls by level)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import short
from integrations.pagerduty import mapping
from integrations.pagerduty.config import ConnectorConfigError
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.registry import ConnectorRegistry


@dataclass
class OnCallAnswer:
    service: str
    policy: str
    lines: list[str]


def on_call(registry: ConnectorRegistry, connector_name: str | None, service: str) -> OnCallAnswer:
    connectors = [c for c in registry.all() if c.type == "pagerduty"]
    if connector_name:
        connectors = [registry.get(connector_name)]
    if not connectors:
        raise ConnectorConfigError("no PagerDuty connector: add one with im connector add pagerduty NAME")
    if len(connectors) > 1:
        raise ConnectorConfigError(
            f"several PagerDuty connectors: name one with --connector ({', '.join(c.name for c in connectors)})"
        )
    connector = connectors[0]
    config = registry.config(connector)
    service = service.strip().lower()
    with client_for(registry, connector, max_attempts=2, max_wait=3, timeout=5) as client:
        policy_id = config.custom.escalation_mappings.get(service)
        if policy_id is None:
            pd_service = mapping.pd_service_for(service, config.custom.service_mappings, config.custom.service_id)
            if pd_service is None:
                raise ConnectorConfigError(
                    f"no PagerDuty service for '{service}' (im connector map-service {connector.name} ...)"
                )
            found = client.get_service(pd_service)
            policy_id = found.escalation_policy.id if found.escalation_policy else config.custom.escalation_policy_id
        if policy_id is None:
            raise ConnectorConfigError(f"no escalation policy for '{service}' (im connector map-escalation {connector.name} ...)")
        policy = client.get_escalation_policy(policy_id)
        oncalls = client.list_oncalls(escalation_policy_ids=[policy_id])
    by_level: dict[int, list[str]] = {}
    for entry in sorted(oncalls, key=lambda o: o.escalation_level):
        until = f" (until {short(entry.end)})" if entry.end else ""
        who = entry.user.summary or entry.user.id
        if f"{who}{until}" not in by_level.get(entry.escalation_level, []):
            by_level.setdefault(entry.escalation_level, []).append(f"{who}{until}")
    lines = [f"Service: {service}", f"Escalation policy: {policy.name or policy_id}"]
    levels = sorted(by_level)
    lines.append(f"Current On-Call: {', '.join(by_level[levels[0]])}" if levels else "Current On-Call: nobody")
    delays = [r.escalation_delay_in_minutes for r in policy.escalation_rules]
    for n, level in enumerate(levels[1:], start=1):
        after = f"After {delays[n - 1]} minutes" if n - 1 < len(delays) and delays[n - 1] else f"Level {level}"
        lines.append(f"Escalation: {after} → {', '.join(by_level[level])}")
    return OnCallAnswer(service, policy_id, lines)
