"""A PagerDuty client for a stored connector: key opened from its sealed form, every call counted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.connectors.models import Connector
from bot.store import Store
from integrations.pagerduty.api.client import CallStats, PagerDutyClient
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import ConnectorCall

log = logging.getLogger(__name__)


def call_recorder(store: Store, connector: str) -> Callable[[CallStats], None]:
    def record(stats: CallStats) -> None:
        try:
            with store.transaction() as session:
                session.add(
                    ConnectorCall(
                        connector=connector,
                        method=stats.method,
                        path=stats.endpoint,
                        status=stats.status or 0,
                        duration_ms=stats.duration_s * 1000,
                        ratelimit_limit=stats.ratelimit_limit,
                        ratelimit_remaining=stats.ratelimit_remaining,
                    )
                )
        except Exception:  # metrics must never break a delivery
            log.warning("could not record a PagerDuty call for metrics", exc_info=True)

    return record


def client_for(registry: ConnectorRegistry, connector: Connector, **kwargs: Any) -> PagerDutyClient:
    config = registry.config(connector)
    options: dict[str, Any] = {"timeout": float(config.request_timeout), **kwargs}
    return PagerDutyClient(
        config.base_url,
        registry.api_key(connector),
        from_email=config.custom.from_email,
        on_response=call_recorder(registry.store, connector.name),
        **options,
    )
