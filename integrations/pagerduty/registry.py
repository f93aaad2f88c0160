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
            config = PagerDutyConfig.model_validate(row.config)
            if config.outbound:
                found.append((row.name, config))
        return found

    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return _OUTBOUND.get_or_load(str(engine.url), load)


def changed() -> None:
    """Connectors changed in this process: forget what was cached."""
    _OUTBOUND.clear()
    _WEBHOOK_SECRETS.clear()


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
        return PagerDutyConfig.model_validate(connector.config)

    def api_key(self, connector: Connector) -> str:
        return secrets.reveal(connector.api_key, self.keys)

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
    def add(self, name: str, type_: str, raw: dict[str, Any]) -> Connector:
        check_name(name)
        if type_ not in TYPES:
            raise ConnectorConfigError(f"unknown connector type '{type_}' (expected: {', '.join(TYPES)})")
        config, api_key = validate_pagerduty(raw)
        check_field_sources(config, self.incident_fields)
        if not api_key:
            raise ConnectorConfigError("api_key: required (the key itself, or env:VAR_NAME)")
        sealed = self._seal(api_key, "api_key")
        row = Connector(name=name, type=type_, config=config.model_dump(mode="json"), api_key=sealed, next_sync_at=utcnow())
        try:
            with self.store.transaction() as session:
                session.add(row)
            changed()
        except IntegrityError:
            raise ConnectorConfigError(f"a connector named '{name}' exists already (im connector remove {name} first)") from None
        return row

    def set_api_key(self, name: str, api_key: str) -> Connector:
        if not api_key.strip():
            raise ConnectorConfigError("--api-key: must not be empty")
        sealed = self._seal(api_key, "--api-key")
        return self._change(name, lambda row: setattr(row, "api_key", sealed))

    def configure(self, name: str, change: Callable[[dict[str, Any]], None]) -> Connector:
        """Apply `change` to the JSON config, then validate the whole of it again."""

        def apply(row: Connector) -> None:
            data = json.loads(json.dumps(row.config))
            change(data)
            config, api_key = validate_pagerduty(data)
            if api_key is not None:
                raise ConnectorConfigError("api_key: changed with im connector update NAME --api-key KEY, not here")
            check_field_sources(config, self.incident_fields)
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
