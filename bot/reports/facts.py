"""What an adapter may add to a report: facts about our incidents from its own system (PagerDuty's log).

A provider is given the incidents of the report (id -> ref) and its range; it reads its own tables and
its own API, and answers an ExternalSection. It must not fail the report: an outage is a note on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.reports.model import ExternalSection

FactsProvider = Callable[[dict[int, str], datetime, datetime], ExternalSection]


def gather(providers: list[FactsProvider], incidents: dict[int, str], start: datetime, end: datetime) -> list[ExternalSection]:
    sections = []
    for provider in providers:
        try:
            sections.append(provider(incidents, start, end))
        except Exception as exc:  # noqa: BLE001 - an adapter's bug degrades the report, never fails it
            sections.append(ExternalSection(system=getattr(provider, "system", "external"), notes=[f"not included: {exc}"]))
    return sections
