"""Plugs alert intake into `im serve`: the `/alerts/{source}` route and the worker that applies alerts."""

from __future__ import annotations

from bot.app import Im, RuntimeParts
from bot.connectors.secrets import Keyring
from integrations.alerts.sources import Sources


def sources_for(im: Im) -> Sources:
    return Sources(im.store, Keyring.from_settings(im.settings))


def install(im: Im) -> None:
    def runtime_hook(runtime: RuntimeParts) -> None:
        # imported by `im serve` only: a terminal command needs neither the HTTP route nor the worker
        from bot.domain.alert_flow import DESTINATION
        from integrations.alerts.processor import AlertProcessor
        from integrations.alerts.receiver import AlertReceiver

        runtime.deliveries[DESTINATION] = AlertProcessor(im)
        runtime.extra_routes.append(AlertReceiver(im, sources_for(im)).route())

    im.runtime_hooks.append(runtime_hook)
