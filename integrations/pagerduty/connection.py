"""A PagerDuty client for a stored connector: key opened from its sealed form, every call counted and
paced against the key's budget (PagerDuty: 960 requests a minute per API key, shared by every replica)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from bot.connectors.models import Connector
from bot.connectors.secrets import SecretError
from bot.pacing import Limit, Pacer, current_job, secret_key
from bot.store import Store
from integrations.pagerduty import debug
from integrations.pagerduty.api.client import CallStats, PagerDutyClient
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import ConnectorCall

log = logging.getLogger(__name__)

BUDGET = Limit(960, 60)  # per API key; IM_RATE_LIMITS=pagerduty=N/period overrides it


def _webhook_secrets(registry: ConnectorRegistry, connector: Connector) -> list[str]:
    """What debug mode masks besides the API key (a secret that does not open is not in any line either)."""
    try:
        return registry.webhook_secrets(connector)
    except SecretError:
        return []


def call_recorder(
    store: Store, connector: str, on_rate_limited: Callable[[float], None] | None = None
) -> Callable[[CallStats], None]:
    def record(stats: CallStats) -> None:
        if stats.status == 429 and stats.retry_after and on_rate_limited is not None:
            try:
                on_rate_limited(stats.retry_after)
            except Exception:  # pacing is advice: a failure to record it must not break the call
                log.warning("could not hold PagerDuty calls off after a 429", exc_info=True)
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


class Turns:
    """Pacing of one client's calls on its API key. In an outbox job the first call takes a turn (or the
    job is deferred to it; `admitted`: the turn was taken before the job started; `ready()`: before a
    caller notes that a call is under way) and later calls borrow, so a job never stops halfway and a job
    that makes no call (nothing left to do, a Slack thread not posted yet) spends no turn; outside a job
    a call waits for its turn."""

    def __init__(self, pacer: Pacer, key: str, limit: Limit | None, *, admitted: bool) -> None:
        self.pacer, self.key, self.limit = pacer, key, limit
        self.admitted = admitted  # this job's turn is taken
        self.paid = admitted  # ... and not spent yet

    def __call__(self) -> None:
        if self.paid:
            self.paid = False
        elif current_job() is None:
            self.pacer.wait(self.key, self.limit)
        elif not self.admitted:
            self.pacer.admit(self.key, self.limit)
            self.admitted = True
        else:
            self.pacer.borrow(self.key, self.limit)

    def ready(self, again: bool = False) -> None:
        """A call follows: in an outbox job, its turn is taken now if the job holds none (Deferred when it
        has not come), and the call spends it. `again`: a new turn though the job took one already (a call
        the job may still put off, instead of borrowing)."""
        if current_job() is None or self.paid:
            return  # outside a job each call waits for its own turn; a turn taken and unspent serves
        if again or not self.admitted:
            self.pacer.admit(self.key, self.limit)
            self.admitted = self.paid = True

    def hold_off(self, seconds: float) -> None:
        self.pacer.hold_off(self.key, self.limit, seconds)


def turns_for(
    registry: ConnectorRegistry, api_key: str, *, admit: bool = False, name: str = "pagerduty", budget: Limit = BUDGET
) -> Turns:
    """The key's turns; `admit`: take this job's first turn now (raises Deferred when it is not yet).
    `name` and `budget`: another kind of key (an Events API v2 routing key: `pagerduty-events`)."""
    limit = registry.pacer.limit(name, budget)
    key = secret_key(name, api_key)
    if admit:
        registry.pacer.admit(key, limit)
    return Turns(registry.pacer, key, limit, admitted=admit)


def client_for(registry: ConnectorRegistry, connector: Connector, *, admit: bool = False, **kwargs: Any) -> PagerDutyClient:
    """From an outbox job, the job is deferred (Deferred) rather than calling when its key has no turn: at its
    first call (or `client.ready()`), or with `admit` before it starts."""
    config = registry.config(connector)
    api_key = registry.api_key(connector)
    turns = turns_for(registry, api_key, admit=admit)
    options: dict[str, Any] = {"timeout": float(config.request_timeout), **kwargs}
    wanted = debug.switches(config.debug, config.log_requests, config.log_responses, everything=registry.debug)
    if wanted is not None:
        inner = options.pop("transport", None) or httpx.HTTPTransport()
        known = [api_key, *_webhook_secrets(registry, connector)]
        options["transport"] = debug.DebugTransport(inner, connector=connector.name, switches=wanted, secrets=known)
    return PagerDutyClient(
        config.base_url,
        api_key,
        from_email=config.custom.from_email,
        on_response=call_recorder(registry.store, connector.name, turns.hold_off),
        before_request=turns,
        on_ready=turns.ready,
        **options,
    )
