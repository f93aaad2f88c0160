"""The database: engine set-up for SQLite and PostgreSQL, short transactions, migrations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Result, event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest migration's revision id, so a start at the head needs one plain query and no Alembic
# (tests/unit/test_store_head.py keeps it equal to the head of bot/migrations/versions).
HEAD_REVISION = "0018_connector_routing_key"
OUTBOX_CHANNEL = "im_outbox"  # PostgreSQL: NOTIFY'd by every transaction that writes outbox jobs
NOTIFY_OUTBOX = f"NOTIFY {OUTBOX_CHANNEL}"
_ENQUEUED = "im_outbox_enqueued"  # set in a session's or connection's info by the writer of a job


def note_enqueued(holder: Session | Connection, *, notified: bool = False) -> None:
    """The transaction `holder` runs in wrote outbox jobs: its commit wakes the workers (this process's
    at once, other replicas' through NOTIFY on PostgreSQL). `notified`: the statement sent NOTIFY itself."""
    if holder.info.get(_ENQUEUED) != "notified":
        holder.info[_ENQUEUED] = "notified" if notified else "pending"


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the driver we install)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Store:
    """Owns the engine. Every unit of work is one short transaction: never hold one across a network call."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._write_lock = threading.RLock()
        # run after a transaction that wrote outbox jobs commits (wiring: set the workers' wake event)
        self.after_enqueue: list[Callable[[], None]] = []
        if self.is_sqlite:
            args = {"check_same_thread": False, "timeout": 30, "isolation_level": None}
            self.engine = create_engine(self.url, connect_args=args, pool_size=10, max_overflow=20)
            _sqlite_pragmas(self.engine, immediate=True)
            # Readers get their own engine with plain deferred transactions: in WAL mode they never
            # wait for the writer, and never take the write lock.
            self.read_engine = create_engine(self.url, connect_args=args, pool_size=10, max_overflow=20)
            _sqlite_pragmas(self.read_engine, immediate=False)
        else:
            # No pre-ping: it is one more round trip on every checkout, the Slack ack path included. A
            # connection found dead (a restarted server) fails that one unit of work, and SQLAlchemy then
            # replaces every pooled connection made before it.
            self.engine = create_engine(self.url, pool_size=10, max_overflow=20)
            self.read_engine = self.engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with self._serialised(), Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session
            enqueued = self._notify_if_enqueued(session)
        if enqueued:
            self._woken()

    @contextmanager
    def core(self) -> Iterator[Connection]:
        """A plain connection in a transaction, for hot paths that need no ORM (webhook ingestion)."""
        with self._serialised(), self.engine.begin() as conn:
            conn.info.pop(_ENQUEUED, None)  # the info outlives a checkout: a rolled-back mark is stale
            yield conn
            enqueued = self._notify_if_enqueued(conn)
        if enqueued:
            self._woken()

    def _notify_if_enqueued(self, holder: Session | Connection) -> bool:
        """Before the commit: on PostgreSQL, NOTIFY in the same transaction (delivered when it commits,
        never for one rolled back)."""
        mark = holder.info.pop(_ENQUEUED, None)
        if mark == "pending" and not self.is_sqlite:
            holder.execute(text(NOTIFY_OUTBOX))
        return mark is not None

    def _woken(self) -> None:
        for callback in self.after_enqueue:
            callback()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.read_engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _serialised(self) -> Iterator[None]:
        """SQLite has one writer at a time. Writers of this process queue on a lock, in order, instead
        of each polling SQLite's busy handler (whose sleeps grow to 100 ms); other processes (a
        terminal `im`) still meet the busy timeout."""
        if not self.is_sqlite:
            yield
            return
        with self._write_lock:
            yield

    def ping(self) -> str:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
            return "ok"
        except Exception as exc:  # noqa: BLE001 - any failure is reported on /healthz, never raised
            return f"error: {type(exc).__name__}"

    def upgrade_if_behind(self) -> None:
        """Migrate only when the database is not at HEAD_REVISION (a new database, or an older schema)."""
        if self.revision() != HEAD_REVISION:
            self.upgrade()

    def revision(self) -> str | None:
        """The database's Alembic revision; None before the first migration (or with several heads)."""
        with self.read_engine.connect() as conn:
            if not conn.dialect.has_table(conn, "alembic_version"):
                return None
            rows = conn.execute(text("select version_num from alembic_version")).scalars().all()
        return rows[0] if len(rows) == 1 else None

    def upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (its result is a CursorResult, which counts them)."""
    return cast(CursorResult[Any], result).rowcount


def _sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    """WAL lets readers run beside the writer; BEGIN IMMEDIATE takes the write lock up front, so a
    transaction waits (busy timeout) instead of failing with "database is locked" when it upgrades."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
