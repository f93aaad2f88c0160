"""Mapping between im and PagerDuty: statuses, urgencies, services. Pure functions on plain values."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.models import SEVERITIES
from integrations.pagerduty.api.events import Severity

DEFAULT_URGENCY = {"SEV-1": "high", "SEV-2": "high", "SEV-3": "low", "SEV-4": "low"}
# im severity -> an Events API v2 event's payload.severity (a routing-key connector)
DEFAULT_EVENT_SEVERITY: dict[str, Severity] = {"SEV-1": "critical", "SEV-2": "error", "SEV-3": "warning", "SEV-4": "info"}

# im status -> the PagerDuty status it corresponds to (closed is a resolved incident in PagerDuty)
TO_PAGERDUTY_STATUS = {"open": "triggered", "mitigated": "acknowledged", "resolved": "resolved", "closed": "resolved"}
FROM_PAGERDUTY_STATUS = {"triggered": "open", "acknowledged": "mitigated", "resolved": "resolved"}


def urgency_for(severity: str, mapping: Mapping[str, str] | None = None) -> str:
    return {**DEFAULT_URGENCY, **(mapping or {})}.get(severity, "high")


def event_severity_for(severity: str, mapping: Mapping[str, Severity] | None = None) -> Severity:
    return {**DEFAULT_EVENT_SEVERITY, **(mapping or {})}.get(severity, "error")


def severity_for(urgency: str | None, mapping: Mapping[str, str] | None = None) -> str:
    """The least severe severity that maps to this urgency: a page from PagerDuty becomes an incident
    without opening a SEV-1 war room unless the mapping says so."""
    merged = {**DEFAULT_URGENCY, **(mapping or {})}
    matches = [sev for sev in SEVERITIES if merged.get(sev) == (urgency or "high")]
    return matches[-1] if matches else "SEV-2"


def pd_service_for(service: str, mappings: Mapping[str, str], default: str | None) -> str | None:
    return mappings.get(service) or mappings.get("default") or default


def im_service_for(pd_service_id: str, pd_service_name: str | None, mappings: Mapping[str, str]) -> str:
    for name, pd_id in mappings.items():
        if pd_id == pd_service_id and name != "default":
            return name
    slug = "".join(c if c.isalnum() else "-" for c in (pd_service_name or pd_service_id).lower()).strip("-")
    return "-".join(part for part in slug.split("-") if part)[:64].rstrip("-") or pd_service_id.lower()


def steps_towards(current_im_status: str, pd_status: str | None) -> list[str]:
    """The domain verbs that bring an im incident to where PagerDuty says it is ([]: nothing to do).

    Any PagerDuty status is reachable from any im status, so whatever order reports arrive in, the
    newest one decides: acknowledged in PagerDuty while im has it resolved means it was triggered again
    and acknowledged since (reopen, then acknowledge)."""
    target = FROM_PAGERDUTY_STATUS.get(pd_status or "")
    if target is None or TO_PAGERDUTY_STATUS.get(current_im_status) == pd_status:
        return []
    if target == "resolved":
        return ["resolve"]
    if current_im_status in ("resolved", "closed"):
        return ["reopen", "acknowledge"] if target == "mitigated" else ["reopen"]
    return ["acknowledge"] if target == "mitigated" else ["unacknowledge"]
