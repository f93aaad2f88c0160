"""`im secrets rotate`: every stored connector secret (and alert source key) re-sealed under the current IM_SECRET_KEY.

All or nothing, in one transaction: each secret is opened (under IM_SECRET_KEY or one of
IM_SECRET_KEY_PREVIOUS) before anything is written, and one that no key opens stops the run with its
connector and column named, never its value, with nothing changed. `env:VAR` references are left as
they are. Rows are locked while rotating (PostgreSQL), so a concurrent `connector update` waits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from bot.connectors.models import Connector
from bot.connectors.secrets import NO_KEY, Keyring, SecretError, is_sealed, reseal
from bot.domain.alert_models import AlertSource
from bot.store import Store

SEALED_COLUMNS = ("api_key", "routing_key", "webhook_secrets")


@dataclass(frozen=True)
class Rotation:
    connectors: int
    resealed: int
    references: int  # env: references, left as they are


def rotate(store: Store, keys: Keyring) -> Rotation:
    if not keys.current:
        raise SecretError(NO_KEY)
    resealed = references = 0
    with store.transaction() as session:
        rows = list(session.exec(select(Connector).order_by(col(Connector.name)).with_for_update()))
        for row in rows:
            for column in SEALED_COLUMNS:
                stored: str | None = getattr(row, column)
                if not stored:
                    continue
                if not is_sealed(stored):
                    references += 1
                    continue
                try:
                    setattr(row, column, reseal(stored, keys))
                except SecretError as exc:
                    raise SecretError(f"connector {row.name}, {column}: {exc}. Nothing was changed.") from None
                resealed += 1
            session.add(row)
        for source in session.exec(select(AlertSource).order_by(col(AlertSource.name)).with_for_update()):
            try:
                source.secret = reseal(source.secret, keys)
            except SecretError as exc:
                raise SecretError(f"alert source {source.name}: {exc}. Nothing was changed.") from None
            resealed += 1
            session.add(source)
    return Rotation(connectors=len(rows), resealed=resealed, references=references)
