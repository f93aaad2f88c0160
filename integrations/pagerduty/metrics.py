"""Figures for `connector status`, `connector list`, `connector health` and `im metrics connector`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from bot.app import Im
from bot.clock import as_utc, utcnow
from bot.connectors.models import Connector
from bot.domain.models import JobStatus, OutboxJob
from integrations.pagerduty.outbound import destination
from integrations.pagerduty.tables import ConnectorCall, PagerDutyLink, SyncRun, WebhookDelivery


@dataclass
class Figures:
    total_incidents: int
    incidents_synced_24h: int
    sync_runs_24h: int
    sync_errors_24h: int
    avg_sync_ms: float | None
    api_calls_24h: int
    ratelimit_used: float | None  # 0..1 of the per-minute budget, from the latest answer
    webhook_events_24h: int
    last_webhook_at: datetime | None
    dead_jobs: int
    pending_jobs: int
    failed_calls_24h: int = 0  # API calls that got no answer or an error status, whoever made them (test included)

    @property
    def success_rate(self) -> float | None:
        return None if not self.sync_runs_24h else (self.sync_runs_24h - self.sync_errors_24h) / self.sync_runs_24h


def figures(im: Im, name: str, now: datetime | None = None) -> Figures:
    now = now or utcnow()
    day = now - timedelta(hours=24)
    with im.store.read() as session:

        def one(query: Any) -> Any:
            return session.exec(query).one()

        total = one(select(func.count(func.distinct(PagerDutyLink.incident_id))).where(PagerDutyLink.connector == name))
        synced = one(
            select(func.count(func.distinct(SyncRun.incident_id))).where(
                SyncRun.connector == name,
                col(SyncRun.at) >= day,
                col(SyncRun.ok).is_(True),
                col(SyncRun.incident_id).is_not(None),
            )
        )
        runs = one(select(func.count()).select_from(SyncRun).where(SyncRun.connector == name, col(SyncRun.at) >= day))
        errors = one(
            select(func.count())
            .select_from(SyncRun)
            .where(SyncRun.connector == name, col(SyncRun.at) >= day, col(SyncRun.ok).is_(False))
        )
        avg = one(select(func.avg(SyncRun.duration_ms)).where(SyncRun.connector == name, col(SyncRun.at) >= day))
        calls = one(
            select(func.count()).select_from(ConnectorCall).where(ConnectorCall.connector == name, col(ConnectorCall.at) >= day)
        )
        failed = one(
            select(func.count())
            .select_from(ConnectorCall)
            .where(
                ConnectorCall.connector == name,
                col(ConnectorCall.at) >= day,
                (col(ConnectorCall.status) == 0) | (col(ConnectorCall.status) >= 400),
            )
        )
        latest = session.exec(
            select(ConnectorCall)
            .where(ConnectorCall.connector == name, col(ConnectorCall.ratelimit_limit).is_not(None))
            .order_by(col(ConnectorCall.id).desc())
            .limit(1)
        ).first()
        hooks = one(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.connector == name, col(WebhookDelivery.received_at) >= day)
        )
        last_hook = one(select(func.max(WebhookDelivery.received_at)).where(WebhookDelivery.connector == name))
        dead = one(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.destination == destination(name), OutboxJob.status == JobStatus.DEAD)
        )
        pending = one(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.destination == destination(name), col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING]))
        )
    used = None
    if latest is not None and latest.ratelimit_limit and latest.ratelimit_remaining is not None:
        used = (latest.ratelimit_limit - latest.ratelimit_remaining) / latest.ratelimit_limit
    return Figures(
        total,
        synced,
        runs,
        errors,
        float(avg) if avg is not None else None,
        calls,
        used,
        hooks,
        as_utc(last_hook) if last_hook else None,
        dead,
        pending,
        failed_calls_24h=failed,
    )


def ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    seconds = int(((now or utcnow()) - as_utc(when)).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def connector_state(connector: Connector, fig: Figures) -> str:
    if connector.last_sync_error or fig.dead_jobs:
        return "degraded"
    return "active"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%".replace(".0%", "%")
