"""A report as one tidy CSV table: section, group, metric, value (seconds for durations), so a
spreadsheet can pivot it. Text we did not write that starts like a formula is quoted with a '."""

from __future__ import annotations

import csv
import io

from bot.reports.model import GroupFigures, Report

COLUMNS = ["section", "group", "metric", "value"]


def _safe(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _figures(section: str, groups: list[GroupFigures]) -> list[list[object]]:
    rows: list[list[object]] = []
    for g in groups:
        rows.append([section, g.key, "incidents", g.incidents])
        for name, stat in (("mtta", g.mtta), ("mttr", g.mttr)):
            rows += [[section, g.key, f"{name}_{m}_seconds", getattr(stat, m)] for m in ("mean", "median", "p90")]
            rows.append([section, g.key, f"{name}_samples", stat.samples])
    return rows


def report_csv(report: Report) -> str:
    rows: list[list[object]] = [
        ["range", "", "start", report.start.isoformat()],
        ["range", "", "end_excluded", report.end.isoformat()],
        ["range", "", "time_zone", report.tz],
        ["filters", "", "severities", ",".join(report.filters.severities)],
        ["filters", "", "services", ",".join(report.filters.services)],
        ["total", "all", "incidents", report.total],
        ["total", "all", "reopened", report.reopened],
    ]
    rows += [["count_by_severity", c.key, "incidents", c.count] for c in report.by_severity]
    rows += [["count_by_status", c.key, "incidents", c.count] for c in report.by_status]
    rows += [["count_by_service", c.key, "incidents", c.count] for c in report.by_service]
    rows += [["minutes_by_service", m.service, "incident_minutes", m.minutes] for m in report.minutes_by_service]
    rows += _figures("overall", [report.overall]) + _figures("by_severity", report.figures_by_severity)
    rows += _figures("by_service", report.figures_by_service)
    for r in report.sla:
        rows += [[f"sla_{r.kind}", r.severity, m, getattr(r, m)] for m in ("target_seconds", "met", "breached", "open")]
    for p in report.trend:
        rows += [
            [f"trend_{report.trend_unit}", p.start.date().isoformat(), m, getattr(p, m)]
            for m in ("incidents", "mtta_mean", "mttr_mean")
        ]
    for i in report.incidents:
        rows += [
            ["incident", i.ref, "title", i.title],
            ["incident", i.ref, "severity", i.severity],
            ["incident", i.ref, "status", i.status],
            ["incident", i.ref, "services", ",".join(i.services)],
            ["incident", i.ref, "declared_at", i.declared_at.isoformat()],
            ["incident", i.ref, "tta_seconds", i.tta_seconds],
            ["incident", i.ref, "ttr_seconds", i.ttr_seconds],
            ["incident", i.ref, "ack_sla", i.ack_sla],
            ["incident", i.ref, "resolve_sla", i.resolve_sla],
            ["incident", i.ref, "reopened", i.reopened],
        ]
        rows += [["incident", i.ref, f"link_{link.system}", link.url] for link in i.links if link.url]
    for section in report.external:
        rows += [[section.system, "", "note", n] for n in section.notes]
        for load in section.load:
            rows += [
                [f"{section.system}_load", load.person, m, getattr(load, m)]
                for m in ("pages", "acknowledgements", "mean_tta_seconds")
            ]
    rows += [["note", "", "note", n] for n in report.notes]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([[_safe(v) for v in row] for row in rows])
    return out.getvalue()
