"""Who is on call for im services, now and next, asked of PagerDuty.

Per service: its escalation policy (the connector's mapping, else the PagerDuty service's), then
`GET /oncalls` for the policy with `since` = `until` = now (the current shifts, by level), and once per
distinct end of a current shift with `since` = `until` = that end (who takes over). A level whose target
is a user, not a schedule, is on call with no end and has no "next".
"""

from __future__ import annotations

from datetime import datetime

from bot.clock import as_utc
from bot.connectors.models import Connector
from commands.results import OnCallLevel, OnCallResult, OnCallShift, ServiceOnCall
from integrations.pagerduty import mapping
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.models import EscalationPolicy, OnCall
from integrations.pagerduty.config import ConnectorConfigError, PagerDutyConfig
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.registry import ConnectorRegistry


def pick_connector(registry: ConnectorRegistry, connector_name: str | None) -> Connector:
    if connector_name:
        return registry.get(connector_name)
    connectors = [c for c in registry.all() if c.type == "pagerduty"]
    if not connectors:
        raise ConnectorConfigError("no PagerDuty connector: add one with im connector add pagerduty NAME")
    if len(connectors) > 1:
        raise ConnectorConfigError(
            f"several PagerDuty connectors: name one with --connector ({', '.join(c.name for c in connectors)})"
        )
    return connectors[0]


def mapped_services(config: PagerDutyConfig) -> list[str]:
    """The im services the connector routes somewhere ("default" when only a default service is set)."""
    names = sorted(set(config.custom.service_mappings) | set(config.custom.escalation_mappings))
    if not names and config.custom.service_id:
        names = ["default"]
    return names


def on_call(registry: ConnectorRegistry, connector_name: str | None, service: str | None, now: datetime) -> OnCallResult:
    connector = pick_connector(registry, connector_name)
    config = registry.config(connector)
    services = [service.strip().lower()] if service else mapped_services(config)
    if not services:
        raise ConnectorConfigError(f"no service is mapped (im connector map-service {connector.name} ...)")
    policies: dict[str, EscalationPolicy] = {}
    found = []
    with client_for(registry, connector, max_attempts=2, max_wait=3, timeout=5) as client:
        for name in services:
            policy_id = _policy_id(client, connector.name, config, name)
            if policy_id not in policies:
                policies[policy_id] = client.get_escalation_policy(policy_id)
            policy = policies[policy_id]
            found.append(ServiceOnCall(service=name, policy=policy.name or policy_id, levels=_levels(client, policy, now)))
    return OnCallResult(as_of=now, services=found)


def _policy_id(client: PagerDutyClient, connector: str, config: PagerDutyConfig, service: str) -> str:
    policy_id = config.custom.escalation_mappings.get(service)
    if policy_id:
        return policy_id
    pd_service = mapping.pd_service_for(service, config.custom.service_mappings, config.custom.service_id)
    if pd_service is None:
        raise ConnectorConfigError(f"no PagerDuty service for '{service}' (im connector map-service {connector} ...)")
    found = client.get_service(pd_service)
    policy_id = found.escalation_policy.id if found.escalation_policy else config.custom.escalation_policy_id
    if policy_id is None:
        raise ConnectorConfigError(f"no escalation policy for '{service}' (im connector map-escalation {connector} ...)")
    return policy_id


def _levels(client: PagerDutyClient, policy: EscalationPolicy, now: datetime) -> list[OnCallLevel]:
    current = client.list_oncalls(escalation_policy_ids=[policy.id], since=now, until=now)
    ends = sorted({as_utc(o.end) for o in current if o.end is not None})
    after = {end: client.list_oncalls(escalation_policy_ids=[policy.id], since=end, until=end) for end in ends}
    delays = [rule.escalation_delay_in_minutes for rule in policy.escalation_rules]
    levels = []
    for level in sorted({o.escalation_level for o in current}):
        here = [o for o in current if o.escalation_level == level]
        upcoming: list[OnCall] = []
        for shift in here:
            if shift.end is None:
                continue
            end = as_utc(shift.end)
            upcoming += [
                o
                for o in after[end]
                if o.escalation_level == level
                and o.start is not None
                and as_utc(o.start) >= end
                and (shift.schedule is None or (o.schedule is not None and o.schedule.id == shift.schedule.id))
            ]
        levels.append(
            OnCallLevel(
                level=level,
                after_minutes=delays[level - 2] if 2 <= level <= len(delays) + 1 else None,
                now=_shifts(here),
                next=_shifts(upcoming),
            )
        )
    return levels


def _shifts(entries: list[OnCall]) -> list[OnCallShift]:
    shifts: list[OnCallShift] = []
    for entry in entries:
        shift = OnCallShift(
            name=entry.user.summary or entry.user.id,
            start=as_utc(entry.start) if entry.start else None,
            end=as_utc(entry.end) if entry.end else None,
            schedule=entry.schedule.summary if entry.schedule else None,
        )
        if shift not in shifts:
            shifts.append(shift)
    return shifts
