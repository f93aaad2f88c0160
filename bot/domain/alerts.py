"""Alerts from monitoring, whatever tool sent them: what an alert event says, and the rules that turn
alert events into incidents (dedup, grouping, repeats, resolution). Pure: no store, no vendor.

- An alert is identified by (source, dedup_key). A trigger for a key that is not active declares an
  incident, or joins the open incident of its service when that service alerted within the source's
  grouping window; a trigger for an active key is a repeat (counted, not a new incident).
- An alert is active while it is not resolved and its incident is open or mitigated: once its incident
  is resolved or closed, the same key starts afresh (as PagerDuty opens a new incident for it).
- Repeats, joins and resolves that arrive together are one burst: one timeline step says how many.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.models import Severity, Status

MAX_DEDUP_KEY = 255  # PagerDuty's limit
MAX_SUMMARY = 1024
DEFAULT_GROUP_WINDOW = 300  # seconds
MAX_GROUP_WINDOW = 24 * 3600
BURST = timedelta(seconds=30)  # repeats, joins and resolves within this of the first are one timeline step
ACTIVE_INCIDENT = frozenset({Status.OPEN.value, Status.MITIGATED.value})
_SERVICE_CHARS = re.compile(r"[^a-z0-9._-]+")
_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


class AlertAction(StrEnum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class AlertStatus(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class SourceKind(StrEnum):
    EVENTS_V2 = "events-v2"
    ALERTMANAGER = "alertmanager"


@dataclass(frozen=True)
class AlertEvent:
    """One alert event as every source kind reduces to it (an Alertmanager body holds several)."""

    action: AlertAction
    dedup_key: str
    summary: str | None = None
    severity: str | None = None  # critical, error, warning, info (the event's own words)
    component: str | None = None  # the service it names, when it names one
    occurred_at: datetime | None = None
    runbook_url: str | None = None
    links: tuple[tuple[str, str], ...] = ()  # (href, text)
    details: Mapping[str, Any] = field(default_factory=dict)  # custom details, labels, annotations, class, group

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "dedup_key": self.dedup_key,
            "summary": self.summary,
            "severity": self.severity,
            "component": self.component,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "runbook_url": self.runbook_url,
            "links": [list(link) for link in self.links],
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertEvent:
        when = data.get("occurred_at")
        return cls(
            action=AlertAction(data["action"]),
            dedup_key=data["dedup_key"],
            summary=data.get("summary"),
            severity=data.get("severity"),
            component=data.get("component"),
            occurred_at=datetime.fromisoformat(when) if when else None,
            runbook_url=data.get("runbook_url"),
            links=tuple((str(h), str(t)) for h, t in data.get("links") or ()),
            details=data.get("details") or {},
        )


@dataclass(frozen=True)
class SourceRules:
    """What a source decides about its alerts."""

    name: str
    kind: SourceKind
    service: str | None = None  # every alert of the source is about this service
    group_window: int = DEFAULT_GROUP_WINDOW  # seconds
    auto_resolve: bool = True  # the incident resolves when its last alert does (else: only noted)


def new_dedup_key() -> str:
    """A trigger without a dedup key gets one (PagerDuty does the same and answers with it)."""
    return uuid.uuid4().hex


def check_source_name(name: str) -> str:
    text = name.strip().lower()
    if not _SOURCE_NAME.fullmatch(text):
        raise ValueError(f"'{name[:70]}' is not a source name (letters, digits, - _ . up to 63, starting with a letter or digit)")
    return text


def service_name(text: str) -> str:
    """Any monitoring tool's word for a service as an im service name (letters, digits, - _ . up to 64)."""
    name = _SERVICE_CHARS.sub("-", text.strip().lower()).strip("-.")[:64].strip("-.")
    return name or "unknown"


def service_for(source: SourceRules, event: AlertEvent) -> str:
    """The source's service when it has one, else the one the alert names, else the source's name."""
    return service_name(source.service or event.component or source.name)


def severity_for(raw: str | None, mapping: Mapping[str, str]) -> str:
    """The incident severity of an alert's severity; an alert that gives none (or an odd one) counts as an error."""
    key = (raw or "").strip().lower()
    return mapping.get(key) or mapping.get("error") or Severity.SEV2.value


def title_for(event: AlertEvent, limit: int = 200) -> str:
    text = " ".join((event.summary or f"Alert {event.dedup_key}").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Group:
    """The incident a service's alerts currently go to, and when it last had one."""

    incident_id: int
    incident_status: str
    last_alert_at: datetime


def joinable(group: Group | None, now: datetime, window_seconds: int) -> int | None:
    """The incident an alert of this service joins, or None when it declares a new one."""
    if group is None or group.incident_status not in ACTIVE_INCIDENT:
        return None
    if now - group.last_alert_at > timedelta(seconds=window_seconds):
        return None
    return group.incident_id


def is_active(alert_status: str | None, incident_status: str | None) -> bool:
    """An alert that a trigger repeats rather than starts afresh."""
    return alert_status is not None and alert_status != AlertStatus.RESOLVED and incident_status in ACTIVE_INCIDENT


def still_firing(statuses: Iterable[str]) -> int:
    return sum(1 for status in statuses if status != AlertStatus.RESOLVED)


@dataclass
class Burst:
    """What happened to an incident's alerts since its last burst step."""

    joined: int = 0
    repeated: int = 0
    resolved: int = 0

    def text(self, firing: int) -> str | None:
        parts = []
        if self.joined:
            parts.append(f"{self.joined} more alert{_s(self.joined)} grouped in")
        if self.repeated:
            parts.append(f"alerts repeated {self.repeated} time{_s(self.repeated)}")
        if self.resolved:
            parts.append(f"{self.resolved} alert{_s(self.resolved)} resolved")
        if not parts:
            return None
        return f"{'; '.join(parts).capitalize()} ({firing} still firing)"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def description_for(source: str, event: AlertEvent, limit: int = 3000) -> str:
    lines = [f"From alert source {source} (dedup key {event.dedup_key})."]
    if event.runbook_url:
        lines.append(f"Runbook: {event.runbook_url}")
    lines += [f"{text or href}: {href}" for href, text in event.links[:5]]
    lines += [f"{key}: {value}" for key, value in list(event.details.items())[:20]]
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"
