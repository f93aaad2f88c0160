"""The database: engine set-up for SQLite and PostgreSQL, short transactions, migrations."""

from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Result, event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from bot.store_driver import DriverInsert, DriverWrite
from bot.store_head import HEAD_REVISION as HEAD_REVISION  # re-exported: where the store's callers look

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# HEAD_REVISION (bot/store_head.py, importable without SQLAlchemy): the newest migration's revision id
OUTBOX_CHANNEL = "im_outbox"  # PostgreSQL: NOTIFY'd after commits that wrote outbox jobs (see Notifier)
NOTIFY_OUTBOX = f"NOTIFY {OUTBOX_CHANNEL}"
NOTIFY_WINDOW = 0.02  # seconds: at most one NOTIFY per window from one process
_ENQUEUED = "im_outbox_enqueued"  # set in a session's or connection's info by the writer of a job
log = logging.getLogger(__name__)


def note_enqueued(holder: Session | Connection) -> None:
    """The transaction `holder` runs in wrote outbox jobs: its commit wakes the workers (this process's
    at once, other replicas' through NOTIFY on PostgreSQL)."""
    holder.info[_ENQUEUED] = True


class Notifier:
    """PostgreSQL: tells other processes' workers (LISTEN, bot/workers.py) that jobs were committed.

    Not a NOTIFY in each writing transaction: PostgreSQL serialises the commits of transactions that
    notified (one global lock), which halved webhook ingest under load. Instead a thread of ours sends
    NOTIFY on its own connection after the commits, at most once per `window`: a commit pokes it, and
    every poke is followed by a NOTIFY sent after it, so a listener never misses a committed job (this
    process's own workers are woken in-process anyway). A NOTIFY that fails (database away) is logged;
    the listeners' polling covers it."""

    def __init__(self, engine: Engine, window: float = NOTIFY_WINDOW) -> None:
        self.engine = engine
        self.window = window
        self._wanted = threading.Condition()
        self._pending = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._wanted:
            if self._stopped:  # the store was disposed and is used again: no thread to wait for
                self._send()
                return
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="im-outbox-notify", daemon=True)
                self._thread.start()
                atexit.register(self.stop)  # a terminal `im` exits right after its write: send what is owed
            self._wanted.notify()

    def stop(self) -> None:
        """Send a NOTIFY still owed, then end the thread."""
        with self._wanted:
            self._stopped = True
            owed, self._pending = self._pending, False
            self._wanted.notify()
        atexit.unregister(self.stop)
        if owed:
            self._send()

    def _loop(self) -> None:
        while True:
            with self._wanted:
                while not self._pending and not self._stopped:
                    self._wanted.wait()
                if self._stopped:
                    return
                self._pending = False  # cleared before sending: a poke from now on gets a NOTIFY of its own
            self._send()
            time.sleep(self.window)

    def _send(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(NOTIFY_OUTBOX)
        except Exception:  # the database is away: other replicas poll meanwhile
            log.warning("could not NOTIFY other replicas of new outbox jobs", exc_info=True)


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
        self.checkpoints_in_background = False  # SQLite: a Checkpointer copies the WAL back, not the commits
        self._write_lock = threading.RLock()
        # run after a transaction that wrote outbox jobs commits (wiring: set the workers' wake event)
        self.after_enqueue: list[Callable[[], None]] = []
        if self.is_sqlite:
            args = {"check_same_thread": False, "timeout": 30, "isolation_level": None}
            self.engine = create_engine(self.url, connect_args=args, pool_size=10, max_overflow=20)
            _sqlite_pragmas(self.engine, immediate=True, autocheckpoint=lambda: not self.checkpoints_in_background)
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
        self.notifier = None if self.is_sqlite else Notifier(self.engine)
        self._driver_inserts: dict[tuple[str, tuple[str, ...], str | None], DriverInsert] = {}

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with self._serialised(), Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session
            enqueued = self._enqueued(session)
        if enqueued:
            self._woken()

    @contextmanager
    def core(self) -> Iterator[Connection]:
        """A plain connection in a transaction, for hot paths that need no ORM (webhook ingestion)."""
        # the pool checkout before the write lock: only the transaction itself is serialised
        with self.engine.connect() as conn, self._serialised(), conn.begin():
            conn.info.pop(_ENQUEUED, None)  # the info outlives a checkout: a rolled-back mark is stale
            yield conn
            enqueued = self._enqueued(conn)
        if enqueued:
            self._woken()

    @contextmanager
    def single_statement(self) -> Iterator[Connection]:
        """A connection for ONE write statement that is its own transaction, for the hottest ingest path
        (alert intake). On PostgreSQL the connection is in autocommit: the statement commits as it returns,
        wholly or not at all, in one round trip instead of three (BEGIN, the statement, COMMIT), and the
        server does no BEGIN/COMMIT of its own. Never give it two statements: each would commit alone (a
        multi-row INSERT is one statement). SQLite: as `core()` (its one writer takes the write lock)."""
        if self.is_sqlite:
            with self.core() as conn:
                yield conn
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.info.pop(_ENQUEUED, None)
            yield conn
            enqueued = self._enqueued(conn)
        if enqueued:
            self._woken()

    @contextmanager
    def driver_write(self) -> Iterator[DriverWrite]:
        """SQLite only: a transaction on the driver's own connection (bot/store_driver.py), for ingest hot
        paths: committed on success, rolled back on any error, the workers woken when it wrote a job."""
        if not self.is_sqlite:
            raise RuntimeError("driver_write is for SQLite; PostgreSQL ingest uses single_statement()")
        pooled = self.engine.raw_connection()  # the pool checkout before the write lock, as core()
        try:
            driver = cast(sqlite3.Connection, pooled.driver_connection)
            with self._serialised():
                driver.execute("BEGIN IMMEDIATE")
                write = DriverWrite(driver, self.engine.dialect, self._driver_inserts)
                try:
                    yield write
                except BaseException:
                    driver.execute("ROLLBACK")
                    raise
                driver.execute("COMMIT")
        finally:
            pooled.close()
        if write.enqueued:
            self._woken()

    @staticmethod
    def _enqueued(holder: Session | Connection) -> bool:
        return bool(holder.info.pop(_ENQUEUED, False))

    def _woken(self) -> None:
        """After a commit that wrote jobs: this process's workers at once, other processes' by NOTIFY."""
        for callback in self.after_enqueue:
            callback()
        if self.notifier is not None:
            self.notifier.poke()

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
        if self.notifier is not None:
            self.notifier.stop()
        self.engine.dispose()
        self.read_engine.dispose()


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (its result is a CursorResult, which counts them)."""
    return cast(CursorResult[Any], result).rowcount


def _sqlite_pragmas(engine: Engine, *, immediate: bool, autocheckpoint: Callable[[], bool] = lambda: True) -> None:
    """WAL lets readers run beside the writer; BEGIN IMMEDIATE takes the write lock up front, so a
    transaction waits (busy timeout) instead of failing with "database is locked" when it upgrades."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # reports' temporary tables stay in memory (no temp-file writes on a busy disk); set per connection
        # here because SQLite refuses the change inside a transaction once a temporary table exists
        cursor.execute("PRAGMA temp_store=MEMORY")
        if not autocheckpoint():
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # a Checkpointer thread does it (bot/store.py)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # straight to the driver: through exec_driver_sql this one statement cost 8% of webhook ingest's CPU
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")  # type: ignore[union-attr]  # a live connection has its driver's


class Checkpointer:
    """SQLite: the WAL is copied back into the database file by a thread of its own, every `interval`
    seconds, not by whichever commit crossed SQLite's 1000-page mark (wal_autocheckpoint). That commit
    paid for the copy and its fsync, and so did the Slack request waiting on it: in-process, declare's
    p99 was ~5 ms with the automatic checkpoint and ~1.2 ms without (1.4% of requests met one). The
    checkpoint is PASSIVE, as the automatic one is: it copies what no reader still needs, never waits
    for or blocks a writer, and the driver lets go of the GIL while it runs. Other processes on the same
    file (a terminal `im`) keep checkpointing automatically."""

    def __init__(self, store: Store, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="im-sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self.store.checkpoints_in_background = True
        self.store.engine.dispose()  # pooled connections are remade with wal_autocheckpoint=0
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)
        self.store.checkpoints_in_background = False
        self.store.engine.dispose()  # and remade checkpointing automatically again
        self.checkpoint()

    def checkpoint(self) -> None:
        try:
            pooled = self.store.engine.raw_connection()  # no transaction: SQLite refuses a checkpoint in one
            try:
                pooled.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]  # a live connection has its driver's
            finally:
                pooled.close()
        except Exception:
            log.warning("SQLite WAL checkpoint failed", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.checkpoint()
