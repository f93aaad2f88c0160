"""What `connector test`, `health` and `status` say about a connector that pages by routing key only:
what it does (declare, acknowledge, resolve as Events API v2 events) and, marked n/a with the reason
rather than failed, what it cannot do without a REST API key."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from bot.app import Im
from bot.clock import utcnow
from bot.connectors.models import Connector
from bot.connectors.secrets import SecretError, mask
from bot.domain.errors import DomainError
from integrations.pagerduty.api.events import ENQUEUE, is_routing_key
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.health import Check
from integrations.pagerduty.metrics import Figures, ago, percent
from integrations.pagerduty.registry import ConnectorRegistry, pages_by_routing_key
from integrations.pagerduty.tables import ConnectorCall, SyncRun

NEEDS_REST = "needs a REST API key (im connector update {name} --api-key KEY)"


def mode(connector: Connector) -> str:
    if pages_by_routing_key(connector):
        return "Events API v2 by routing key (declare, acknowledge, resolve); notes and urgency stay in im"
    if connector.routing_key:
        return "REST API (its routing key is kept, unused while an API key is set)"
    return "REST API"


def test_checks(registry: ConnectorRegistry, connector: Connector, config: PagerDutyConfig) -> list[Check]:
    """No event is sent: a test trigger would page someone. The key is opened and its form checked."""
    checks = [_key_check(registry, connector)]
    if not checks[0].broken:
        checks.append(
            Check(
                "ok",
                "events",
                f"Events API v2 at {config.events_url}{ENQUEUE}: declare, acknowledge and resolve page PagerDuty "
                "(not called now: a test event would page someone)",
            )
        )
    return checks + _not_available(connector.name)


def _key_check(registry: ConnectorRegistry, connector: Connector) -> Check:
    try:
        key = registry.routing_key(connector)
    except (SecretError, DomainError) as exc:
        return Check("fail", "events", f"Routing key unusable: {exc}")
    if not is_routing_key(key):
        return Check("fail", "events", "Routing key: not an Events API v2 key (32 letters and digits)")
    return Check("ok", "events", f"Routing key {mask(connector.routing_key)} opens and has an integration key's form")


def _not_available(name: str) -> list[Check]:
    return [
        Check("na", "api", f"REST API, services, from email, escalation policies: {NEEDS_REST.format(name=name)}"),
        Check(
            "na", "events", "Notes, urgency changes, reassign, escalate, page: Events API v2 has none of them; they stay in im"
        ),
        Check("na", "webhook", f"Reconciliation and webhooks (PagerDuty's changes into im): {NEEDS_REST.format(name=name)}"),
    ]


def health_lines(im: Im, registry: ConnectorRegistry, connector: Connector, fig: Figures) -> tuple[str, list[str]]:
    """-> (Healthy / Degraded / Unhealthy, lines), from the key and the events recorded, never a live call."""
    key = _key_check(registry, connector)
    last = _last_event(im, connector.name)
    need = f"– n/a ({NEEDS_REST.format(name=connector.name)})"
    lines = [
        "Mode: Events API v2 by routing key",
        f"Events API: {last.line}",
        f"Authentication: {key.line}",
        f"REST API: {need}",
        f"Webhook: {need}",
        f"Sync Status: {need}",
        f"Skipped (24h): {_skipped(im, connector.name)} jobs with no Events API v2 counterpart (notes, urgency, assignments)",
    ]
    rate = fig.failed_calls_24h / fig.api_calls_24h if fig.api_calls_24h else 0.0
    lines.append(f"Error Rate: {percent(rate)} ({fig.failed_calls_24h} errors in 24h)")
    if fig.dead_jobs:
        lines.append(f"Dead-lettered jobs: {fig.dead_jobs} (retry: im connector sync {connector.name})")
    head = "Unhealthy" if key.broken or last.broken else "Degraded" if fig.dead_jobs else "Healthy"
    return head, lines


def _last_event(im: Im, name: str) -> Check:
    with im.store.read() as session:
        last = session.exec(
            select(ConnectorCall)
            .where(ConnectorCall.connector == name, ConnectorCall.path == ENQUEUE)
            .order_by(col(ConnectorCall.id).desc())
            .limit(1)
        ).first()
    if last is None:
        return Check("warn", "events", "no event sent yet")
    when = ago(last.at)
    if 200 <= last.status < 300:
        return Check("ok", "events", f"last event accepted {when} ({last.duration_ms:.0f}ms)")
    if last.status == 400:
        return Check("fail", "events", f"last event refused {when} (HTTP 400: a wrong routing key, or an invalid event)")
    return Check("fail", "events", f"last event {when}: HTTP {last.status or 'no answer'} (it is sent again)")


def _skipped(im: Im, name: str) -> int:
    day = utcnow() - timedelta(hours=24)
    query = (
        select(func.count())
        .select_from(SyncRun)
        .where(SyncRun.connector == name, col(SyncRun.at) >= day, col(SyncRun.error).startswith("skipped:"))
    )
    with im.store.read() as session:
        return int(session.exec(query).one())
