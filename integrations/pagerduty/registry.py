"""Stored connectors: add, read, change, remove; secrets sealed on the way in, opened only to call out."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.clock import utcnow
from bot.connectors import secrets
from bot.connectors.models import Connector
from bot.domain.fields import DEFAULT_FIELDS
from bot.pacing import PACED_BY_DEFAULT, Pacer
from bot.store import Store
from bot.ttl_cache import TTLCache
from integrations.pagerduty.config import (
    ConnectorConfigError,
    PagerDutyConfig,
    check_field_sources,
    check_name,
    check_routing_key,
    validate_pagerduty,
)

TYPES = ("pagerduty",)
MAX_WEBHOOK_SECRETS = 10  # signing secrets kept at once: automatic subscriptions plus ones made in PagerDuty's UI


# Kept a few seconds: a change made in this process is seen at once (see `changed`), one made by another
# process (a terminal `im connector ...`) within the TTL.
_OUTBOUND: TTLCache[str, list[tuple[str, PagerDutyConfig]]] = TTLCache(ttl=5.0)
_WEBHOOK_SECRETS: TTLCache[tuple[str, str], list[str]] = TTLCache(ttl=10.0)


def outbound_connectors(session: Session) -> list[tuple[str, PagerDutyConfig]]:
    """Connectors that push to PagerDuty. Asked on every timeline step, so cached (see above)."""

    def load() -> list[tuple[str, PagerDutyConfig]]:
        found = []
        for row in session.exec(select(Connector).where(Connector.type == "pagerduty")):
            config = ConnectorRegistry.config(row)
            if config.outbound:
                found.append((row.name, config))
        return found

    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return _OUTBOUND.get_or_load(str(engine.url), load)


def pages_by_routing_key(connector: Connector) -> bool:
    """Declare, acknowledge and resolve go out as Events API v2 events. Only without a REST key: with both,
    REST is used, because its create answers with PagerDuty's incident (id, number, URL), which notes,
    urgency changes, reassigning, reconciliation and webhooks all need, while an event is answered with
    its dedup_key only."""
    return bool(connector.routing_key) and not connector.api_key


def changed() -> None:
    """Connectors changed in this process: forget what was cached."""
    _OUTBOUND.clear()
    _WEBHOOK_SECRETS.clear()


def _check_routing_key_only(config: PagerDutyConfig) -> None:
    if config.inbound:
        raise ConnectorConfigError(
            f"sync_direction {config.sync_direction}: needs a REST API key (reconciliation and webhooks read PagerDuty's "
            "REST API); a connector with a routing key only pages (outbound)"
        )


class ConnectorNotFound(ConnectorConfigError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no connector named '{name}' (see: im connector list)")


class ConnectorRegistry:
    def __init__(
        self,
        store: Store,
        keys: secrets.Keyring,
        incident_fields: tuple[str, ...] = DEFAULT_FIELDS,
        *,
        rate_limits: Mapping[str, tuple[int, int]] | None = PACED_BY_DEFAULT,
        debug: bool = False,
    ) -> None:
        self.store = store
        self.keys = keys
        self.incident_fields = incident_fields  # what custom_field_mappings may name (IM_INCIDENT_FIELDS)
        self.pacer = Pacer(store, rate_limits)  # each API key's budget, shared by replicas (None: pacing off)
        self.debug = debug  # PAGERDUTY_DEBUG: every connector's calls logged (integrations/pagerduty/debug.py)

    # -- reads -------------------------------------------------------------------------------
    def get(self, name: str) -> Connector:
        with self.store.read() as session:
            return self.get_in(session, name)

    @staticmethod
    def get_in(session: Session, name: str) -> Connector:
        row = session.exec(select(Connector).where(Connector.name == name)).first()
        if row is None:
            raise ConnectorNotFound(name)
        return row

    def all(self) -> list[Connector]:
        with self.store.read() as session:
            return list(session.exec(select(Connector).order_by(col(Connector.name))))

    @staticmethod
    def config(connector: Connector) -> PagerDutyConfig:
        config = PagerDutyConfig.model_validate(connector.config)
        config._routing_key_only = pages_by_routing_key(connector)
        return config

    def api_key(self, connector: Connector) -> str:
        if not connector.api_key:
            raise ConnectorConfigError(
                f"{connector.name} has no REST API key: it pages by routing key only (Events API v2), and this needs "
                f"PagerDuty's REST API (add one: im connector update {connector.name} --api-key KEY)"
            )
        return secrets.reveal(connector.api_key, self.keys)

    def routing_key(self, connector: Connector) -> str:
        if not connector.routing_key:
            raise ConnectorConfigError(
                f"{connector.name} has no routing key (im connector update {connector.name} --routing-key)"
            )
        return secrets.reveal(connector.routing_key, self.keys)

    def cached_webhook_secrets(self, name: str, *, fresh: bool = False) -> list[str]:
        """Opened webhook secrets, cached (every delivery needs them); `fresh` reads them again."""
        return _WEBHOOK_SECRETS.get_or_load(
            (str(self.store.url), name), lambda: self.webhook_secrets(self.get(name)), fresh=fresh
        )

    def webhook_secrets(self, connector: Connector) -> list[str]:
        if not connector.webhook_secrets:
            return []
        return list(json.loads(secrets.reveal(connector.webhook_secrets, self.keys)))

    # -- changes -----------------------------------------------------------------------------
    def add(self, name: str, type_: str, raw: dict[str, Any], *, routing_key: str | None = None) -> Connector:
        """`routing_key` is one asked for at the terminal (--routing-key); --config may carry one too."""
        check_name(name)
        if type_ not in TYPES:
            raise ConnectorConfigError(f"unknown connector type '{type_}' (expected: {', '.join(TYPES)})")
        config, api_key, given_key = validate_pagerduty(raw)
        if routing_key is not None and given_key is not None:
            raise ConnectorConfigError("routing_key: given twice (in --config and at the prompt)")
        routing_key = check_routing_key(routing_key, "--routing-key") if routing_key is not None else given_key
        check_field_sources(config, self.incident_fields)
        if not api_key and not routing_key:
            raise ConnectorConfigError("api_key: required (the key itself, or env:VAR_NAME), unless a routing key is given")
        if not api_key:
            _check_routing_key_only(config)
        sealed = self._seal(api_key, "api_key") if api_key else None
        sealed_routing = self._seal(routing_key, "routing_key") if routing_key else None
        row = Connector(
            name=name,
            type=type_,
            config=config.model_dump(mode="json"),
            api_key=sealed,
            routing_key=sealed_routing,
            next_sync_at=utcnow(),
        )
        try:
            with self.store.transaction() as session:
                session.add(row)
            changed()
        except IntegrityError:
            raise ConnectorConfigError(f"a connector named '{name}' exists already (im connector remove {name} first)") from None
        return row

    def set_api_key(self, name: str, api_key: str) -> Connector:
        return self.set_keys(name, api_key=api_key)

    def set_keys(self, name: str, *, api_key: str | None = None, routing_key: str | None = None) -> Connector:
        """Replace either key or both, in one change: both are checked and sealed before anything is written."""
        if api_key is not None and not api_key.strip():
            raise ConnectorConfigError("--api-key: must not be empty")
        sealed_api = self._seal(api_key, "--api-key") if api_key is not None else None
        sealed_routing = self._seal(check_routing_key(routing_key, "--routing-key"), "--routing-key") if routing_key else None

        def apply(row: Connector) -> None:
            row.api_key = sealed_api or row.api_key
            row.routing_key = sealed_routing or row.routing_key

        return self._change(name, apply)

    def configure(self, name: str, change: Callable[[dict[str, Any]], None]) -> Connector:
        """Apply `change` to the JSON config, then validate the whole of it again."""

        def apply(row: Connector) -> None:
            data = json.loads(json.dumps(row.config))
            change(data)
            config, api_key, routing_key = validate_pagerduty(data)
            if api_key is not None or routing_key is not None:
                what = "api_key" if api_key is not None else "routing_key"
                raise ConnectorConfigError(f"{what}: changed with im connector update NAME --{what.replace('_', '-')}, not here")
            check_field_sources(config, self.incident_fields)
            if not row.api_key:
                _check_routing_key_only(config)
            row.config = config.model_dump(mode="json")

        return self._change(name, apply)

    def set_webhook(self, name: str, *, subscription_id: str | None, secret_list: list[str] | None, enabled: bool) -> Connector:
        sealed = self._seal(json.dumps(secret_list), "webhook secret") if secret_list else None

        def apply(row: Connector) -> None:
            row.webhook_subscription_id = subscription_id
            row.webhook_secrets = sealed
            row.webhook_enabled = enabled

        return self._change(name, apply)

    def add_webhook_secret(self, name: str, secret: str) -> tuple[Connector, int]:
        """Keep the signing secret of a subscription made in PagerDuty's UI beside those im holds
        (deliveries signed with any of them are accepted) -> (row, how many are kept now)."""
        kept: list[str] = []

        def apply(row: Connector) -> None:
            held = self.webhook_secrets(row)
            if secret in held:
                raise ConnectorConfigError("that signing secret is stored already")
            if len(held) >= MAX_WEBHOOK_SECRETS:
                raise ConnectorConfigError(
                    f"{name} holds {len(held)} signing secrets already: im connector webhook {name} --disable drops them"
                )
            kept.extend([*held, secret])
            row.webhook_secrets = self._seal(json.dumps(kept), "webhook secret")
            row.webhook_enabled = True

        return self._change(name, apply), len(kept)

    def remove(self, name: str) -> None:
        with self.store.transaction() as session:
            session.delete(self.get_in(session, name))
        changed()

    def _change(self, name: str, apply: Callable[[Connector], None]) -> Connector:
        with self.store.transaction() as session:
            row = self.get_in(session, name)
            apply(row)
            row.updated_at = utcnow()
            session.add(row)
        changed()
        return row

    def _seal(self, value: str, field: str) -> str:
        try:
            return secrets.seal(value, self.keys)
        except secrets.SecretError as exc:
            raise ConnectorConfigError(f"{field}: {exc}") from None
