"""A PagerDuty client for a stored connector: key opened from its sealed form, every call counted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from bot.connectors.models import Connector
from bot.connectors.secrets import SecretError
from bot.store import Store
from integrations.pagerduty import debug
from integrations.pagerduty.api.client import CallStats, PagerDutyClient
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import ConnectorCall

log = logging.getLogger(__name__)


def _webhook_secrets(registry: ConnectorRegistry, connector: Connector) -> list[str]:
    """What debug mode masks besides the API key (a secret that does not open is not in any line either)."""
    try:
        return registry.webhook_secrets(connector)
    except SecretError:
        return []


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
    api_key = registry.api_key(connector)
    wanted = debug.switches(config.debug, config.log_requests, config.log_responses, everything=registry.debug)
    if wanted is not None:
        inner = options.pop("transport", None) or httpx.HTTPTransport()
        known = [api_key, *_webhook_secrets(registry, connector)]
        options["transport"] = debug.DebugTransport(inner, connector=connector.name, switches=wanted, secrets=known)
    return PagerDutyClient(
        config.base_url,
        api_key,
        from_email=config.custom.from_email,
        on_response=call_recorder(registry.store, connector.name),
        **options,
    )
