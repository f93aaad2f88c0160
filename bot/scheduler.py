"""The scheduler of `im serve` (APScheduler): periodic tasks that adapters register.

It ticks in every replica; each task claims its work in the database (a conditional UPDATE, a once
key), so nothing is done twice however many replicas tick."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    run: Callable[[], Iterable[str] | None]  # lines worth logging
    every_seconds: float


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
