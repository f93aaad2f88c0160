"""The composition root: builds the store and the domain service, and plugs the adapters in."""

from __future__ import annotations

from bot.app import Im
from bot.config import Settings
from bot.domain.incidents import IncidentService
from bot.domain.outbox import Subscriber
from bot.store import Store


def register_commands() -> None:
    """Every command module registers itself on the grammar when imported: the core's, each adapter's."""
    import bot.serve_commands  # noqa: F401
    import commands.alert_commands
    import commands.completion
    import commands.gameday_commands
    import commands.incident_commands
    import commands.log_commands
    import commands.outbox_commands
    import commands.ownership_commands
    import commands.report_commands
    import commands.runbook_commands
    import commands.secret_commands  # noqa: F401
    import integrations.alerts.commands
    import integrations.pagerduty.commands  # noqa: F401


def build(settings: Settings, *, migrate: bool = True) -> Im:
    register_commands()
    store = Store(settings.database_url)
    if migrate:
        store.upgrade()
    subscribers: list[Subscriber] = []
    service = IncidentService(store, subscribers, policy=settings.policy(), field_names=settings.incident_fields)
    im = Im(settings=settings, store=store, incidents=service)
    store.after_enqueue.append(im.outbox_ready.set)  # a commit that wrote jobs wakes this process's workers

    from bot.slack.subscriber import install as install_slack
    from integrations.alerts.plugin import install as install_alerts
    from integrations.pagerduty.plugin import install as install_pagerduty

    install_slack(im, subscribers)
    install_pagerduty(im, subscribers)
    install_alerts(im)
    _install_report_sources(im)
    _install_runbooks_and_drills(im)
    return im


def _install_runbooks_and_drills(im: Im) -> None:
    """Runbooks join each declaration and are shown as links; game days get each adapter's proof of its hop."""
    from bot.domain import runbooks
    from bot.domain.gameday import DESTINATION, GamedayDelivery
    from bot.slack.drill import install as slack_drill
    from integrations.pagerduty.drill import install as pagerduty_drill

    im.incidents.declare_extras.append(runbooks.declare_extra)
    im.link_providers.append(runbooks.runbook_links)
    im.bulk_link_providers.append(runbooks.runbook_links_bulk)
    slack_drill(im)
    pagerduty_drill(im)
    im.runtime_hooks.append(lambda runtime: runtime.deliveries.__setitem__(DESTINATION, GamedayDelivery(im)))


def _install_report_sources(im: Im) -> None:
    """What PagerDuty adds to reports: connectors' SLA mappings, and per-incident facts from its log."""
    from integrations.pagerduty.plugin import registry_for
    from integrations.pagerduty.report_facts import report_facts

    registry = registry_for(im)
    im.report_facts.append(report_facts(im, registry))
