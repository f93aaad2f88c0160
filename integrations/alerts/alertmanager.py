"""Prometheus Alertmanager's webhook body (version 4): a group of alerts, each with its `fingerprint`
(the dedup key), `status` firing|resolved, `labels` and `annotations` (`summary`, `description`,
`runbook_url`). Alertmanager sends `Authorization: Bearer <token>` from the receiver's
`http_config.authorization.credentials`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ValidationError

from bot.domain.alerts import MAX_DEDUP_KEY, MAX_SUMMARY, AlertAction, AlertEvent

SERVICE_LABELS = ("service", "component", "app", "job")  # the first one present names the service


class Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Alert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class Notification(BaseModel):
    version: str
    groupKey: str | None = None
    status: Literal["firing", "resolved"] | None = None
    receiver: str | None = None
    externalURL: str | None = None
    alerts: list[Alert]


def parse(body: bytes) -> list[AlertEvent]:
    """Every alert of a notification, in order; Invalid with the reason when the body is not one."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Invalid("the body is not JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the body is not a JSON object")
    try:
        notification = Notification.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise Invalid(f"'{where}' is invalid: {first.get('msg', 'invalid value')}") from None
    if notification.version != "4":
        raise Invalid(f"version {notification.version[:20]!r} is not supported (Alertmanager's webhook version 4 is)")
    return [_event(index, alert) for index, alert in enumerate(notification.alerts)]


def _event(index: int, alert: Alert) -> AlertEvent:
    key = (alert.fingerprint or "").strip()
    if not key:
        raise Invalid(f"alerts[{index}] has no fingerprint")
    if len(key) > MAX_DEDUP_KEY:
        raise Invalid(f"alerts[{index}].fingerprint is longer than {MAX_DEDUP_KEY} characters")
    summary = _summary(alert)
    if not summary:
        raise Invalid(f"alerts[{index}] has no summary (no summary or description annotation, no alertname label)")
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY - 1] + "…"
    component = next((alert.labels[name] for name in SERVICE_LABELS if alert.labels.get(name)), None)
    links = ((alert.generatorURL, "Source"),) if alert.generatorURL else ()
    return AlertEvent(
        action=AlertAction.TRIGGER if alert.status == "firing" else AlertAction.RESOLVE,
        dedup_key=key,
        summary=summary,
        severity=alert.labels.get("severity"),
        component=component,
        occurred_at=alert.startsAt if alert.status == "firing" else alert.endsAt,
        runbook_url=alert.annotations.get("runbook_url") or None,
        links=links,
        details={"labels": alert.labels, "annotations": alert.annotations},
    )


def _summary(alert: Alert) -> str:
    for name in ("summary", "description"):
        text = " ".join(alert.annotations.get(name, "").split())
        if text:
            return text
    name = alert.labels.get("alertname", "").strip()
    if not name:
        return ""
    where = alert.labels.get("instance") or alert.labels.get("job")
    return f"{name} ({where})" if where else name
