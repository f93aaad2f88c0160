"""`/livez` and `/readyz` of `im serve`.

`/livez` answers 200 whenever the event loop runs, and touches nothing else: a database outage must
never get a healthy process restarted. `/readyz` answers 503 unless every check passes, and its JSON
body names each check and what failed:
- database: a connection answers (and, for SQLite, the database file is still there: a process holding
  the old file open would otherwise write to a file no other process sees);
- migrations: the database's Alembic revision is this code's head (read at most every few seconds);
- workers: every outbox worker thread, and the heartbeat that keeps their claims, is alive;
- scheduler: running, when this process runs one;
- outbox: no job has been claimable (due, not waiting behind an earlier job of its ordering key) for
  more than WEDGED_AFTER while the workers are alive, which only happens when they are stuck.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exists, func
from sqlalchemy.engine import make_url
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.clock import as_utc, utcnow
from bot.domain.models import JobStatus, OutboxJob
from bot.scheduler import Scheduler
from bot.store import MIGRATIONS_DIR
from bot.ttl_cache import TTLCache

WEDGED_AFTER = timedelta(minutes=10)
REVISION_TTL = 5.0  # seconds the database's migration revision is trusted between probes
CHECKS_TIMEOUT = 5.0  # a database that does not answer fails the probe rather than hanging it
Check = dict[str, Any]


class Probes:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.store = runtime.im.store
        self._revision: TTLCache[str, tuple[str, ...]] = TTLCache(REVISION_TTL)
        self._head: tuple[str, ...] | None = None

    async def livez(self, request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        try:
            checks = await asyncio.wait_for(run_in_threadpool(self.checks), CHECKS_TIMEOUT)
        except TimeoutError:
            checks = {"database": {"ok": False, "error": f"no answer within {CHECKS_TIMEOUT:g}s"}}
        failed = [name for name, check in checks.items() if check["ok"] is False]
        body = {"status": "not ready" if failed else "ready", "failed": failed, "checks": checks}
        return JSONResponse(body, status_code=503 if failed else 200)

    def checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {"database": self.database()}
        workers = checks["workers"] = self.workers()
        checks["scheduler"] = self.scheduler()
        reachable = checks["database"]["ok"]
        checks["migrations"] = self.migrations() if reachable else _skipped("needs the database")
        if not reachable:
            checks["outbox"] = _skipped("needs the database")
        elif not workers["ok"]:
            checks["outbox"] = _skipped("the workers are not running")
        else:
            checks["outbox"] = self.outbox(utcnow())
        return checks

    def database(self) -> Check:
        url = make_url(self.store.url)
        if self.store.is_sqlite and url.database and url.database != ":memory:" and not os.path.exists(url.database):
            return {"ok": False, "error": f"the SQLite file {url.database} is gone"}
        answer = self.store.ping()
        return {"ok": True} if answer == "ok" else {"ok": False, "error": answer}

    def migrations(self) -> Check:
        if self._head is None:
            self._head = tuple(sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()))
        try:
            current = self._revision.get_or_load("current", self._current_revision)
        except Exception as exc:  # noqa: BLE001 - reported in the probe's body
            return {"ok": False, "error": f"cannot read the revision: {type(exc).__name__}"}
        check: Check = {"ok": current == self._head, "current": list(current), "head": list(self._head)}
        if not check["ok"]:
            check["error"] = "the database is not at this im's migration head (run `im db upgrade`, or upgrade im)"
        return check

    def _current_revision(self) -> tuple[str, ...]:
        with self.store.read_engine.connect() as conn:
            return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))

    def workers(self) -> Check:
        pool = self.runtime.workers
        threads = [*pool.threads, pool.heartbeat.thread]  # without its heartbeat, this process's claims lapse
        alive = sum(1 for thread in threads if thread.is_alive())
        check: Check = {"ok": alive == len(threads), "alive": alive, "threads": len(threads)}
        if not check["ok"]:
            check["error"] = (
                f"{len(threads) - alive} of {len(threads)} outbox worker threads (heartbeat included) are not running"
            )
        return check

    def scheduler(self) -> Check:
        schedulers = [item for item in self.runtime.background if isinstance(item, Scheduler)]
        if not self.runtime.scheduler_enabled or not schedulers:
            return {"ok": True, "enabled": False}
        # APScheduler's own state, and its thread (a crashed thread leaves the state "running")
        thread = [getattr(s.scheduler, "_thread", None) for s in schedulers]
        running = all(s.scheduler.running for s in schedulers) and all(t is not None and t.is_alive() for t in thread)
        return (
            {"ok": True, "enabled": True} if running else {"ok": False, "enabled": True, "error": "the scheduler is not running"}
        )

    def outbox(self, now: datetime) -> Check:
        earlier = aliased(OutboxJob)
        waiting = col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING])
        blocked = exists().where(
            col(earlier.ordering_key) == col(OutboxJob.ordering_key),
            col(earlier.id) < col(OutboxJob.id),
            col(earlier.status).in_([JobStatus.PENDING, JobStatus.RUNNING]),
        )
        try:
            with self.store.read() as session:
                oldest = session.exec(
                    select(func.min(OutboxJob.available_at)).where(waiting, OutboxJob.available_at <= now, ~blocked)
                ).one()
        except Exception as exc:  # noqa: BLE001 - reported in the probe's body
            return {"ok": False, "error": f"cannot read the outbox: {type(exc).__name__}"}
        due_for = 0.0 if oldest is None else max(0.0, (now - as_utc(oldest)).total_seconds())
        check: Check = {"ok": due_for <= WEDGED_AFTER.total_seconds(), "oldest_due_seconds": round(due_for, 1)}
        if not check["ok"]:
            check["error"] = f"a job has waited {int(due_for)}s for a worker (workers stuck?)"
        return check


def _skipped(reason: str) -> Check:
    return {"ok": None, "skipped": reason}
