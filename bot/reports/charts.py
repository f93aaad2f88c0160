"""The charts a report shows, as data (title, labels, series), drawn by each renderer with its own
primitives: inline SVG in HTML, vector paths in the PDF. One definition, so both documents agree."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.reports.model import Report

PALETTE = ("#2f6fb3", "#d9822b", "#3a9a5b", "#b23a48", "#7b5ea7", "#6b7b8c")


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]


@dataclass(frozen=True)
class Chart:
    kind: str  # "line" or "bar"
    title: str
    labels: list[str]
    series: list[Series]
    unit: str = ""

    @property
    def top(self) -> float:
        return nice_max(max((v for s in self.series for v in s.values if v is not None), default=0.0))


def nice_max(value: float) -> float:
    """The axis top: the first 1, 2, 4 or 8 times a power of ten at or above `value` (1 for 0), so the
    four gridlines fall on round values."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def charts_for(report: Report) -> list[Chart]:
    if report.empty:
        return []
    labels = [p.label.removeprefix("week of ") for p in report.trend]
    minutes = [
        Series("MTTA", [None if p.mtta_mean is None else p.mtta_mean / 60 for p in report.trend]),
        Series("MTTR", [None if p.mttr_mean is None else p.mttr_mean / 60 for p in report.trend]),
    ]
    per = "day" if report.trend_unit == "day" else "week"
    top_services = sorted(report.by_service, key=lambda c: (-c.count, c.key))[:12]
    return [
        Chart("line", f"Incidents per {per}", labels, [Series("incidents", [float(p.incidents) for p in report.trend])]),
        Chart("line", f"Mean MTTA and MTTR per {per} (minutes)", labels, minutes, unit="min"),
        Chart(
            "bar",
            "Incidents by severity",
            [c.key for c in report.by_severity],
            [Series("incidents", [float(c.count) for c in report.by_severity])],
        ),
        Chart(
            "bar",
            "Incidents by service",
            [c.key for c in top_services],
            [Series("incidents", [float(c.count) for c in top_services])],
        ),
    ]


def fmt_axis(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:g}"
