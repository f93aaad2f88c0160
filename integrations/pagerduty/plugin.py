"""Plugs connectors into the app: domain subscriber, incident links, routes, deliveries, scheduler.

Installing is cheap: what reads (links, SLA targets) imports no HTTP client and no cryptography; the
outbound jobs, webhooks and reconciliation are imported when a change is made or `im serve` starts,
so `im status` starts fast."""

from __future__ import annotations

from sqlmodel import Session, col, select

import bot.sla as sla
from bot.app import Im, RuntimeParts
from bot.connectors.secrets import Keyring
from bot.domain.models import Incident, TimelineEvent
from bot.domain.outbox import JobSpec, Subscriber
from bot.domain.views import ExternalLink
from integrations.pagerduty import links
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import PagerDutyLink


def registry_for(im: Im) -> ConnectorRegistry:
    return ConnectorRegistry(
        im.store,
        Keyring.from_settings(im.settings),
        im.settings.incident_fields,
        rate_limits=im.settings.rate_limits,
        debug=im.settings.pagerduty_debug,
    )


def pagerduty_links(session: Session, incident: Incident) -> list[ExternalLink]:
    return [_link(r) for r in links.for_incident(session, incident.number)]


def pagerduty_links_bulk(session: Session, incident_ids: list[int]) -> dict[int, list[ExternalLink]]:
    found: dict[int, list[ExternalLink]] = {}
    query = select(PagerDutyLink).where(col(PagerDutyLink.incident_id).in_(incident_ids)).order_by(col(PagerDutyLink.id))
    for row in session.exec(query).all():
        found.setdefault(row.incident_id, []).append(_link(row))
    return found


def _link(r: PagerDutyLink) -> ExternalLink:
    return ExternalLink(
        system="pagerduty",
        label=f"PagerDuty #{r.pd_incident_number} ({r.service})"
        if r.pd_incident_number
        else f"PagerDuty ({r.service}): creating",
        url=r.html_url,
        status=r.status,
    )


def sla_targets(registry: ConnectorRegistry) -> dict[str, dict[str, int]]:
    """The tightest target per severity and kind over every connector's `sla_mapping`."""
    mappings: list[sla.Targets] = [
        {sev: target.model_dump(exclude_none=True) for sev, target in registry.config(connector).custom.sla_mapping.items()}
        for connector in registry.all()
    ]
    return sla.tightest(mappings)


def jobs_for_event(session: Session, incident: Incident, event: TimelineEvent) -> list[JobSpec]:
    from integrations.pagerduty.outbound import pagerduty_jobs

    return pagerduty_jobs(session, incident, event)


def install(im: Im, subscribers: list[Subscriber]) -> None:
    subscribers.append(jobs_for_event)
    im.link_providers.append(pagerduty_links)
    targets_registry = registry_for(im)

    im.sla_target_providers.append(lambda: sla_targets(targets_registry))
    im.bulk_link_providers.append(pagerduty_links_bulk)

    def runtime_hook(runtime: RuntimeParts) -> None:
        from integrations.pagerduty.inbound import INBOUND_PREFIX, WebhookProcessor, WebhookReceiver
        from integrations.pagerduty.outbound import DESTINATION_PREFIX, PagerDutyDelivery
        from integrations.pagerduty.ticker import Ticker

        registry = registry_for(im)
        runtime.deliveries[DESTINATION_PREFIX] = PagerDutyDelivery(im, registry)
        runtime.deliveries[INBOUND_PREFIX] = WebhookProcessor(im, registry)
        runtime.extra_routes.append(WebhookReceiver(im, registry).route())
        runtime.periodic.extend(Ticker(im, registry).tasks())

    im.runtime_hooks.append(runtime_hook)
