"""The scheduler (APScheduler) of `im serve`: reconciliation per connector every `sync_interval`, SLA
timers, and pruning of old metrics. It ticks in every replica; the database decides which replica
runs each interval's work (see Reconciler.claim_due), so nothing runs twice."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete
from sqlmodel import col, select

from bot.clock import as_utc, utcnow
from bot.connectors.models import ConnectorCall, SyncRun, WebhookDelivery
from bot.connectors.pd_reconcile import Reconciler
from bot.connectors.registry import ConnectorRegistry
from bot.domain.incidents import Actor
from bot.domain.models import Incident, Origin, Status
from bot.connectors.config import format_duration

log = logging.getLogger(__name__)
SCHEDULER = Actor(Origin.SCHEDULER, "sla", "SLA timer")
KEEP_METRICS = timedelta(days=7)


class Ticker:
    """One tick of periodic work; callable directly (tests drive it under freezegun)."""

    def __init__(self, im, registry: ConnectorRegistry) -> None:  # type: ignore[no-untyped-def]
        self.im = im
        self.registry = registry
        self.reconciler = Reconciler(im, registry)

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        done: list[str] = []
        for connector in self.registry.all():
            config = self.registry.config(connector)
            if config.inbound and self.reconciler.claim_due(connector.name, config.sync_interval, now):
                result = self.reconciler.sync(connector.name)
                done.append(f"sync {connector.name}: {result.seen} seen, {result.changed} changed, {result.errors} errors")
        done += self.check_slas(now)
        return done

    def check_slas(self, now: datetime) -> list[str]:
        targets: dict[str, dict[str, int]] = {}
        for connector in self.registry.all():
            for sev, target in self.registry.config(connector).custom.sla_mapping.items():
                for kind in ("ack", "resolve"):
                    seconds = getattr(target, kind)
                    if seconds and (kind not in targets.setdefault(sev, {}) or seconds < targets[sev][kind]):
                        targets[sev][kind] = seconds
        if not targets:
            return []
        with self.im.store.read() as session:
            incidents = session.exec(select(Incident).where(col(Incident.status).in_([Status.OPEN, Status.MITIGATED]))).all()
        breaches = []
        for incident in incidents:
            start = as_utc(incident.reopened_at or incident.declared_at)  # a reopened incident's clock restarts
            for kind, seconds in targets.get(incident.severity, {}).items():
                done_at = incident.acknowledged_at if kind == "ack" else incident.resolved_at
                if done_at is not None and as_utc(done_at) < start:
                    done_at = None  # acknowledged or resolved before the reopen: not this time round
                if done_at is None and now - start > timedelta(seconds=seconds):
                    verb = "acknowledged" if kind == "ack" else "resolved"
                    change = self.im.incidents.record(
                        incident.id, "sla",  # type: ignore[arg-type]
                        f"SLA breached: not {verb} within {format_duration(seconds)} ({incident.severity})",
                        actor=SCHEDULER, context={"sla": kind, "notify_channel": True},
                        once_key=f"sla:{incident.id}:{kind}:{start.isoformat()}",
                    )
                    if change.changed:
                        breaches.append(f"{incident.ref} {kind} SLA breached")
        return breaches

    def prune(self, now: datetime | None = None) -> None:
        cutoff = (now or utcnow()) - KEEP_METRICS
        with self.im.store.transaction() as session:
            session.execute(delete(ConnectorCall).where(col(ConnectorCall.at) < cutoff))
            session.execute(delete(SyncRun).where(col(SyncRun.at) < cutoff))
            session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.received_at) < cutoff - KEEP_METRICS))


class Scheduler:
    def __init__(self, ticker: Ticker, *, every: float = 5.0) -> None:
        self.ticker = ticker
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler.add_job(self._tick, "interval", seconds=every, id="tick", max_instances=1, coalesce=True)
        self.scheduler.add_job(self.ticker.prune, "interval", hours=1, id="prune", max_instances=1, coalesce=True)

    def _tick(self) -> None:
        try:
            for line in self.ticker.tick():
                log.info("%s", line)
        except Exception:
            log.exception("scheduled work failed; it runs again at the next tick")

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
