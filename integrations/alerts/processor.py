"""The worker side of alert intake: apply a stored alert event, write a burst's one timeline step."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from bot.app import Im
from bot.domain.alert_flow import APPLY, BURST, AlertFlow, StartOver
from bot.domain.errors import DomainError
from bot.domain.models import OutboxJob
from bot.workers import GiveUp, JobKind, RetryLater, kind_table


def flow_for(im: Im) -> AlertFlow:
    return AlertFlow(im.store, im.incidents, im.settings.alert_severities)


class AlertProcessor:
    def __init__(self, im: Im) -> None:
        self.flow = flow_for(im)
        self.kinds = kind_table(JobKind(APPLY, self._apply), JobKind(BURST, self._burst))

    def _apply(self, job: OutboxJob) -> None:
        intake_id = job.payload.get("intake_id") if isinstance(job.payload, dict) else None
        if not isinstance(intake_id, int):
            raise GiveUp("the job names no stored alert event")
        try:
            self.flow.apply(intake_id)
        except (IntegrityError, StartOver):
            raise RetryLater("other alerts of the same service were being applied at the same time", delay=0.2) from None
        except DomainError as exc:
            raise GiveUp(f"refused: {exc}") from None

    def _burst(self, job: OutboxJob) -> None:
        incident_id = job.payload.get("incident_id") if isinstance(job.payload, dict) else None
        if not isinstance(incident_id, int) or job.id is None:
            raise GiveUp("the job names no incident")
        self.flow.write_burst(incident_id, job.id)
