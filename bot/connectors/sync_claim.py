"""Once per interval across replicas: a connector's periodic sync is claimed with one conditional UPDATE."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from bot.clock import utcnow
from bot.connectors.models import Connector
from bot.store import Store, rows_changed


def claim_sync_interval(store: Store, name: str, interval_seconds: int, now: datetime | None = None) -> bool:
    """Take this interval's sync for this process: when replicas share a database, exactly one wins."""
    now = now or utcnow()
    with store.transaction() as session:
        result = session.execute(
            update(Connector)
            .where(col(Connector.name) == name)
            .where((col(Connector.next_sync_at).is_(None)) | (col(Connector.next_sync_at) <= now))
            .values(next_sync_at=now + timedelta(seconds=interval_seconds))
        )
        return rows_changed(result) == 1
