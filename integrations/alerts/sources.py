"""Alert sources: add, list, remove; each one's routing key or bearer token generated here, sealed on
the way in (bot/connectors/secrets.py), shown once, and opened only to check a request (cached)."""

from __future__ import annotations

import hmac
import secrets as random
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from bot.connectors import secrets
from bot.domain.alert_models import AlertSource
from bot.domain.alerts import DEFAULT_GROUP_WINDOW, MAX_GROUP_WINDOW, SourceKind, check_source_name, service_name
from bot.domain.errors import DomainError, InvalidInput
from bot.store import Store
from bot.ttl_cache import TTLCache

_KNOWN: TTLCache[tuple[str, str], Known | None] = TTLCache(ttl=10.0)
_RECENT: dict[tuple[str, str], tuple[float, Known | None]] = {}  # the last answers, read without a thread hop
RECENT_TTL = 10.0


class SourceNotFound(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no alert source named '{name}' (see: im source list)")


@dataclass(frozen=True)
class Known:
    """What the intake needs of a source on every request."""

    name: str
    kind: SourceKind
    service: str | None
    secret: str  # opened

    def accepts(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.secret.encode())


def changed() -> None:
    _KNOWN.clear()
    _RECENT.clear()


def new_secret(kind: SourceKind) -> str:
    """A routing key looks like PagerDuty's (32 hex characters), so tools that check its shape take it."""
    return random.token_hex(16) if kind == SourceKind.EVENTS_V2 else random.token_urlsafe(32)


class Sources:
    def __init__(self, store: Store, keys: secrets.Keyring) -> None:
        self.store = store
        self.keys = keys

    def add(
        self, name: str, kind: str, *, service: str | None, group_window: int = DEFAULT_GROUP_WINDOW, auto_resolve: bool = True
    ) -> tuple[AlertSource, str]:
        """The new source and its secret in plain text (to be shown this once)."""
        try:
            name = check_source_name(name)
            source_kind = SourceKind(kind)
        except ValueError as exc:
            raise InvalidInput(
                str(exc) if "source name" in str(exc) else f"'{kind}' is not a source kind (events-v2, alertmanager)"
            ) from None
        if not 0 < group_window <= MAX_GROUP_WINDOW:
            raise InvalidInput(f"the group window must be more than 0 and at most {MAX_GROUP_WINDOW // 3600}h")
        plain = new_secret(source_kind)
        sealed = secrets.seal(plain, self.keys)
        row = AlertSource(
            name=name,
            kind=source_kind.value,
            service=service_name(service) if service else None,
            group_window_seconds=group_window,
            auto_resolve=auto_resolve,
            secret=sealed,
        )
        try:
            with self.store.transaction() as session:
                if session.exec(select(AlertSource).where(AlertSource.name == name)).first() is not None:
                    raise InvalidInput(f"an alert source named '{name}' exists already")
                session.add(row)
        except IntegrityError:
            raise InvalidInput(f"an alert source named '{name}' exists already") from None
        changed()
        return row, plain

    def all(self) -> list[AlertSource]:
        with self.store.read() as session:
            return list(session.exec(select(AlertSource).order_by(col(AlertSource.name))))

    def remove(self, name: str) -> None:
        with self.store.transaction() as session:
            result = session.execute(delete(AlertSource).where(col(AlertSource.name) == name))
            if not getattr(result, "rowcount", 0):
                raise SourceNotFound(name)
        changed()

    def known(self, name: str, *, fresh: bool = False) -> Known | None:
        """The source as the intake checks it, cached; None when there is none by that name."""

        def load() -> Known | None:
            with self.store.read() as session:
                row = session.exec(select(AlertSource).where(AlertSource.name == name)).first()
            if row is None:
                return None
            return Known(row.name, SourceKind(row.kind), row.service, secrets.reveal(row.secret, self.keys))

        known = _KNOWN.get_or_load((str(self.store.url), name), load, fresh=fresh)
        if len(_RECENT) > 1024:
            _RECENT.clear()
        _RECENT[(str(self.store.url), name)] = (time.monotonic(), known)
        return known

    def recent(self, name: str) -> tuple[bool, Known | None]:
        """(True, what `known` said) when it said it within RECENT_TTL: no database, no thread needed."""
        entry = _RECENT.get((str(self.store.url), name))
        if entry is None or time.monotonic() - entry[0] >= RECENT_TTL:
            return False, None
        return True, entry[1]
