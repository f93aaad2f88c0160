"""The composition root: builds the store and the domain service, and plugs the adapters in.

Imports are made inside the functions: the terminal imports this module to start, and pays only for
what the command it runs needs (see bot/command_index.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from bot.app import Im
    from bot.config import Settings
    from bot.reports.model import ExternalSection


def register_commands() -> None:
    """Every command module registers itself on the grammar when imported: the core's, each adapter's.
    A new one is added here, then `python -m bot.command_index` records its commands for the terminal."""
    import bot.serve_commands  # noqa: F401
    import commands.alert_commands
    import commands.completion
    import commands.gameday_commands
    import commands.help_command
    import commands.incident_commands
    import commands.log_commands
    import commands.outbox_commands
    import commands.ownership_commands
    import commands.report_commands
    import commands.runbook_commands
    import commands.secret_commands  # noqa: F401
    import integrations.alerts.commands
    import integrations.pagerduty.commands  # noqa: F401


def build(settings: Settings, *, migrate: bool = True, register: bool = True) -> Im:
    from bot.app import Im
    from bot.domain.incidents import IncidentService
    from bot.domain.outbox import Subscriber
    from bot.slack.subscriber import install as install_slack
    from bot.store import Store
    from integrations.alerts.plugin import install as install_alerts
    from integrations.pagerduty.plugin import install as install_pagerduty

    if register:
        register_commands()
    store = Store(settings.database_url)
    if migrate:
        store.upgrade_if_behind()
    subscribers: list[Subscriber] = []
    service = IncidentService(store, subscribers, policy=settings.policy(), field_names=settings.incident_fields)
    im = Im(settings=settings, store=store, incidents=service)
    store.after_enqueue.append(im.outbox_ready.set)  # a commit that wrote jobs wakes this process's workers
    install_slack(im, subscribers)
    install_pagerduty(im, subscribers)
    install_alerts(im)
    _install_report_sources(im)
    _install_runbooks_and_drills(im)
    return im


def build_for_terminal(settings: Settings) -> Im:
    """`build` without importing every command module: the terminal imported the one it runs."""
    return build(settings, register=False)


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
    """What PagerDuty adds to reports: per-incident facts from its log (imported when a report asks)."""

    def pagerduty_facts(incidents: dict[int, str], start: datetime, end: datetime) -> ExternalSection:
        from integrations.pagerduty.plugin import registry_for
        from integrations.pagerduty.report_facts import report_facts

        return report_facts(im, registry_for(im))(incidents, start, end)

    pagerduty_facts.system = "PagerDuty"  # type: ignore[attr-defined]  # named in the note if it fails
    im.report_facts.append(pagerduty_facts)
