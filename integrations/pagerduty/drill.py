"""What proves a game day's PagerDuty hops (bot/domain/gameday.py): the link to the PagerDuty incident
the drill made, a signed webhook about it received and applied, and its status as PagerDuty answered it."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from bot.app import Im
from bot.domain.errors import InvalidInput
from bot.domain.gameday import DrillTarget, Evidence, Probe
from integrations.pagerduty import links
from integrations.pagerduty.api.webhook_models import InvalidWebhookPayload, parse_event
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.registry import outbound_connectors
from integrations.pagerduty.tables import PagerDutyLink, WebhookDelivery


def _chosen(session: Session, service: str, connector: str | None) -> tuple[str, PagerDutyConfig]:
    """The one named, or the only one covering the service, with its configuration."""
    pushing = outbound_connectors(session)
    if connector is not None:
        config = dict(pushing).get(connector)
        if config is None:
            known = ", ".join(name for name, _ in pushing) or "none"
            raise InvalidInput(f"no PagerDuty connector '{connector}' pushes to PagerDuty (those that do: {known})")
        if not config.covers(service):
            raise InvalidInput(
                f"connector '{connector}' does not page for service '{service}': map it "
                f"(im connector map-service {connector} --im-service {service} --pd-service PXXXXXX)"
            )
        return connector, config
    covering = [(name, config) for name, config in pushing if config.covers(service)]
    if not covering:
        raise InvalidInput(f"no PagerDuty connector pages for service '{service}' (im connector list; --connector NAME)")
    if len(covering) > 1:
        names = ", ".join(name for name, _ in covering)
        raise InvalidInput(f"several connectors page for '{service}' ({names}): name one with --connector")
    return covering[0]


def preflight(session: Session, service: str, connector: str | None, _: dict[str, Any]) -> str:
    """The connector the drill pages through, refusing one that pages by routing key alone: an event
    never says which PagerDuty incident it opened, so the drill could prove none of its PagerDuty hops."""
    name, config = _chosen(session, service, connector)
    if config.routing_key_only:
        raise InvalidInput(
            f"connector '{name}' pages by routing key only: a game day needs its REST API key to find the "
            f"PagerDuty incident and hear its webhook (im connector update {name} --api-key)"
        )
    return name


def _link(session: Session, target: DrillTarget) -> PagerDutyLink | None:
    found = links.for_incident(session, target.incident_id, target.connector)
    return next((link for link in found if link.pd_incident_id), None)


def incident_created(session: Session, target: DrillTarget) -> Evidence:
    link = _link(session, target)
    if link is None:
        return Evidence(False, "no PagerDuty incident yet")
    return Evidence(True, f"PagerDuty #{link.pd_incident_number} ({link.pd_incident_id}) on {link.pd_service_id}")


def webhook_back(session: Session, target: DrillTarget) -> Evidence:
    link = _link(session, target)
    if link is None or target.connector is None:
        return Evidence(False, impossible="no PagerDuty incident to hear about")
    query = select(WebhookDelivery).where(
        WebhookDelivery.connector == target.connector, col(WebhookDelivery.received_at) >= target.started_at
    )
    received = None
    for delivery in session.exec(query.order_by(col(WebhookDelivery.id))):
        try:
            about = parse_event(delivery.body.encode("utf-8", "surrogatepass")).incident_id
        except InvalidWebhookPayload:
            continue
        if about != link.pd_incident_id:
            continue
        if delivery.processed_at is not None:
            return Evidence(True, f"{delivery.event_type} received and applied ({delivery.outcome or 'no change'})")
        received = delivery
    if received is not None:
        return Evidence(False, f"{received.event_type} received, not applied yet")
    return Evidence(
        False,
        f"no webhook about PagerDuty #{link.pd_incident_number} yet (is it enabled: im connector webhook "
        f"{target.connector} --enable; can PagerDuty reach IM_PUBLIC_URL?)",
    )


def _status_probe(wanted: tuple[str, ...]) -> Probe:
    def probe(session: Session, target: DrillTarget) -> Evidence:
        link = _link(session, target)
        if link is None:
            return Evidence(False, impossible="no PagerDuty incident to update")
        if link.status in wanted:
            return Evidence(True, f"PagerDuty #{link.pd_incident_number} is {link.status}")
        return Evidence(False, f"PagerDuty #{link.pd_incident_number} is still {link.status}")

    return probe


def install(im: Im) -> None:
    hooks = im.drill_hooks
    hooks.preflights.append(preflight)
    hooks.probes |= {
        "pagerduty.incident": incident_created,
        "pagerduty.webhook": webhook_back,
        "pagerduty.acknowledged": _status_probe(("acknowledged", "resolved")),
        "pagerduty.resolved": _status_probe(("resolved",)),
    }
