"""Copies what `im serve` logs into the `log_entry` table (bot/log_store.py), off the hot path.

A logging handler that only appends to a bounded in-memory queue; one writer thread drains it every
half second in batched inserts (one short transaction each) and prunes the table to its bounds once a
minute. A request or job that logs pays one deque append. When the database is slow or down the queue
fills and further records are counted and dropped (never waited for); the count is stored once the
writer can write again. Every string passes the redactor of `bot/logging_setup.py` before it is stored.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bot.log_store import LogEntry, component_of, prune
from bot.logging_setup import Redactor, record_fields
from bot.store import Store

log = logging.getLogger(__name__)
ENTRIES = LogEntry.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at runtime
_Item = tuple[float, int, str, str, Any, dict[str, Any]]  # created, level, logger, message, exc_info or text, fields


class LogShipper(logging.Handler):
    def __init__(
        self,
        store: Store,
        redact: Redactor,
        *,
        keep: int,
        max_age: timedelta,
        capacity: int = 10_000,
        batch: int = 500,
        interval: float = 0.5,
        prune_every: float = 60.0,
    ) -> None:
        super().__init__()
        self.store, self.redact = store, redact
        self.keep, self.max_age = keep, max_age
        self.capacity, self.batch, self.interval, self.prune_every = capacity, batch, interval, prune_every
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.dropped = 0
        self._queue: deque[_Item] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: int | None = None
        self._last_complaint = 0.0
        self._formatter = logging.Formatter()

    # -- the hot path: called by whoever logs ----------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() == self._writer:
            return  # the writer's own lines (its database's complaints) go to stderr only, never round again
        if len(self._queue) >= self.capacity:
            self.dropped += 1
            return
        try:
            exc: Any = record.exc_info or record.exc_text
            self._queue.append((record.created, record.levelno, record.name, record.getMessage(), exc, record_fields(record)))
        except Exception:  # noqa: BLE001 - a record whose message cannot be made is logging's to report
            self.handleError(record)

    # -- the writer thread -------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="im-log-shipper", daemon=True)
        self._thread.start()
        logging.getLogger().addHandler(self)

    def stop(self) -> None:
        logging.getLogger().removeHandler(self)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        self._writer = threading.get_ident()
        next_prune = time.monotonic()
        while True:
            stopping = self._stop.wait(self.interval)
            self.flush_now()
            if time.monotonic() >= next_prune:
                self.prune_now()
                next_prune = time.monotonic() + self.prune_every
            if stopping:
                return

    def flush_now(self) -> int:
        written = 0
        while self._queue or self.dropped:
            items = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            rows = [self._row(*item) for item in items]
            dropped, self.dropped = self.dropped, 0
            if dropped:
                rows.append(self._dropped_row(dropped))
            try:
                with self.store.core() as conn:
                    conn.execute(insert(ENTRIES), rows)
                written += len(rows)
            except Exception as exc:  # noqa: BLE001 - the database is down: these records are lost, not the process
                self.dropped += len(items) + dropped
                self._complain(f"could not store {len(rows)} log records for `im logs`: {type(exc).__name__}")
                return written
        return written

    def prune_now(self) -> None:
        try:
            with self.store.transaction() as session:
                prune(session, keep=self.keep, max_age=self.max_age)
        except Exception as exc:  # noqa: BLE001 - tried again at the next interval
            self._complain(f"could not prune the `im logs` table: {type(exc).__name__}")

    def _complain(self, text: str) -> None:
        if time.monotonic() - self._last_complaint > 60:
            self._last_complaint = time.monotonic()
            log.warning("%s", text)

    def _row(self, created: float, level: int, logger: str, message: str, exc: Any, fields: dict[str, Any]) -> dict[str, Any]:
        if isinstance(exc, tuple):
            message = f"{message}\n{self._formatter.formatException(exc)}"
        elif isinstance(exc, str):
            message = f"{message}\n{exc}"
        incident = fields.get("incident")
        fields = {k: v if isinstance(v, int | float | bool) else self.redact(str(v)) for k, v in fields.items()}
        return {
            "at": datetime.fromtimestamp(created, UTC),
            "level": level,
            "component": component_of(logger, fields),
            "logger": logger,
            "message": self.redact(message),
            "incident_id": incident if isinstance(incident, int) else None,
            "fields": fields,
            "replica": self.replica,
        }

    def _dropped_row(self, count: int) -> dict[str, Any]:
        text = f"{count} log records were dropped (the database was slow or unreachable)"
        return self._row(time.time(), logging.WARNING, __name__, text, None, {})
