"""The scheduler of `im serve` (APScheduler): the core's clocks (SLA notices, status-update reminders)
and the periodic tasks adapters register.

It ticks in every replica; each task claims its work in the database (a conditional UPDATE, a once
key), so nothing is done twice however many replicas tick."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot.app import Im
from bot.clock import utcnow
from bot.reminders import check_reminders
from bot.sla import check_slas

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    run: Callable[[], Iterable[str] | None]  # lines worth logging
    every_seconds: float


CLOCK_TICK_SECONDS = 10.0


class Clocks:
    """One tick of every open incident's clocks; callable directly (tests drive it under freezegun)."""

    def __init__(self, im: Im) -> None:
        self.im = im

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        im = self.im
        done = check_slas(im.store, im.incidents, im.sla_targets(), now, im.settings.sla_warn_fraction)
        return done + check_reminders(im.store, im.incidents, im.settings.reminders, now)

    def task(self, every_seconds: float = CLOCK_TICK_SECONDS) -> Periodic:
        return Periodic("clocks", self.tick, every_seconds)


class Scheduler:
    def __init__(self, tasks: Iterable[Periodic]) -> None:
        self.scheduler = BackgroundScheduler(timezone="UTC")
        for task in tasks:
            self.scheduler.add_job(
                self._guarded(task), "interval", seconds=task.every_seconds, id=task.name, max_instances=1, coalesce=True
            )

    @staticmethod
    def _guarded(task: Periodic) -> Callable[[], None]:
        def run() -> None:
            try:
                for line in task.run() or ():
                    log.info("%s", line)
            except Exception:
                log.exception("scheduled %s failed; it runs again at the next tick", task.name)

        return run

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
