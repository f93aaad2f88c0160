"""PagerDuty's periodic work: reconciliation per connector every `sync_interval` and pruning of old
figures; and the connectors' SLA targets (`sla_mapping`) for the core's clocks (bot/sla.py). The
database decides which replica runs each interval's sync (`claim_sync_interval`), so nothing runs twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col

from bot.app import Im
from bot.clock import utcnow
from bot.connectors.sync_claim import claim_sync_interval
from bot.scheduler import Periodic
from integrations.pagerduty.reconcile import Reconciler
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import ConnectorCall, SyncRun, WebhookDelivery

KEEP_METRICS = timedelta(days=7)


class Ticker:
    """One tick of periodic work; callable directly (tests drive it under freezegun)."""

    def __init__(self, im: Im, registry: ConnectorRegistry) -> None:
        self.im = im
        self.registry = registry
        self.reconciler = Reconciler(im, registry)

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        done: list[str] = []
        for connector in self.registry.all():
            config = self.registry.config(connector)
            if config.inbound and claim_sync_interval(self.im.store, connector.name, config.sync_interval, now):
                result = self.reconciler.sync(connector.name)
                done.append(f"sync {connector.name}: {result.seen} seen, {result.changed} changed, {result.errors} errors")
        return done

    def prune(self, now: datetime | None = None) -> None:
        cutoff = (now or utcnow()) - KEEP_METRICS
        with self.im.store.transaction() as session:
            session.execute(delete(ConnectorCall).where(col(ConnectorCall.at) < cutoff))
            session.execute(delete(SyncRun).where(col(SyncRun.at) < cutoff))
            session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.received_at) < cutoff - KEEP_METRICS))

    def tasks(self, every_seconds: float = 5.0) -> list[Periodic]:
        return [Periodic("pagerduty-tick", self.tick, every_seconds), Periodic("pagerduty-prune", self.prune, 3600)]
