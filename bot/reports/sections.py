"""A report as headline figures and titled tables of text cells: what every renderer lays out, so the
text, Markdown, HTML and PDF documents say the same thing in the same order."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import short
from bot.reports.model import ExternalSection, GroupFigures, Report, SlaRow, Stat, duration_text, percent


@dataclass(frozen=True)
class Link:
    text: str
    url: str


Cell = str | Link | list[Link]


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str | None = None
    numeric: set[int] = field(default_factory=set)  # right-aligned columns


def cell_text(cell: Cell) -> str:
    if isinstance(cell, Link):
        return cell.text
    if isinstance(cell, list):
        return ", ".join(link.text for link in cell)
    return cell


def stat_text(stat: Stat) -> str:
    if stat.samples == 0:
        return f"n/a ({stat.reason})"
    return (
        f"mean {duration_text(stat.mean)}, median {duration_text(stat.median)}, p90 {duration_text(stat.p90)} (n={stat.samples})"
    )


def filters_text(report: Report) -> str:
    parts = []
    if report.filters.severities:
        parts.append("severity " + ", ".join(report.filters.severities))
    if report.filters.services:
        parts.append("service " + ", ".join(report.filters.services))
    return "; ".join(parts) or "none (every incident)"


def sla_compliance(report: Report, kind: str) -> str:
    rows = [r for r in report.sla if r.kind == kind]
    if not rows:
        return "n/a (no target set)"
    total = SlaRow(severity="all", kind=kind, target_seconds=None)
    for r in rows:
        total.met, total.breached, total.open = total.met + r.met, total.breached + r.breached, total.open + r.open
    return f"{percent(total.compliance)} ({total.met} met, {total.breached} breached, {total.open} open)"


def headline(report: Report) -> list[tuple[str, str]]:
    return [
        ("Range", report.range_text()),
        ("Filters", filters_text(report)),
        ("Incidents", f"{report.total} ({report.reopened} reopened)"),
        ("MTTA", stat_text(report.overall.mtta)),
        ("MTTR", stat_text(report.overall.mttr)),
        ("Acknowledge SLA", sla_compliance(report, "ack")),
        ("Resolve SLA", sla_compliance(report, "resolve")),
    ]


def headline_sentence(report: Report) -> str:
    """One line for a chat message: the figures a lead is asked for."""
    if report.empty:
        return f"No incidents from {report.range_text()}."
    o = report.overall
    return (
        f"{report.total} incidents; MTTA {duration_text(o.mtta.mean)} (median {duration_text(o.mtta.median)}), "
        f"MTTR {duration_text(o.mttr.mean)} (median {duration_text(o.mttr.median)}); "
        f"ack SLA {sla_compliance(report, 'ack')}; resolve SLA {sla_compliance(report, 'resolve')}"
    )


def _figures_rows(groups: list[GroupFigures]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for g in groups:
        row: list[Cell] = [g.key, str(g.incidents)]
        for stat in (g.mtta, g.mttr):
            row += [duration_text(stat.mean), duration_text(stat.median), duration_text(stat.p90), str(stat.samples)]
        rows.append(row)
    return rows


FIGURE_COLUMNS = ["incidents", "MTTA mean", "median", "p90", "n", "MTTR mean", "median", "p90", "n"]


def tables(report: Report) -> list[Table]:
    minutes = {m.service: m.minutes for m in report.minutes_by_service}
    found = [
        Table(
            "Incidents by severity", ["severity", "incidents"], [[c.key, str(c.count)] for c in report.by_severity], numeric={1}
        ),
        Table(
            "Incidents by status (now)", ["status", "incidents"], [[c.key, str(c.count)] for c in report.by_status], numeric={1}
        ),
        Table(
            "Incidents and incident-minutes by service",
            ["service", "incidents", "incident-minutes"],
            [[c.key, str(c.count), f"{minutes.get(c.key, 0):.0f}"] for c in report.by_service],
            note="An incident on several services counts for each of them.",
            numeric={1, 2},
        ),
        Table(
            "MTTA and MTTR by severity",
            ["severity", *FIGURE_COLUMNS],
            _figures_rows(report.figures_by_severity),
            numeric=set(range(1, 10)),
        ),
        Table(
            "MTTA and MTTR by service",
            ["service", *FIGURE_COLUMNS],
            _figures_rows(report.figures_by_service),
            numeric=set(range(1, 10)),
        ),
        Table(
            "SLA compliance",
            ["severity", "target", "within", "met", "breached", "open", "compliance"],
            [
                [
                    r.severity,
                    "acknowledge" if r.kind == "ack" else "resolve",
                    duration_text(r.target_seconds),
                    str(r.met),
                    str(r.breached),
                    str(r.open),
                    percent(r.compliance),
                ]
                for r in report.sla
            ],
            note="Compliance is met / (met + breached); open incidents are not counted yet.",
            numeric={3, 4, 5, 6},
        ),
        Table(
            f"Trend by {report.trend_unit}",
            [report.trend_unit, "incidents", "MTTA mean", "MTTR mean"],
            [[p.label, str(p.incidents), duration_text(p.mtta_mean), duration_text(p.mttr_mean)] for p in report.trend],
            numeric={1, 2, 3},
        ),
    ]
    listed_note = None
    if report.incidents_listed_limit is not None:
        listed_note = f"The first {report.incidents_listed_limit} of {report.total} incidents (the figures above count them all)."
    found.append(
        Table(
            "Incidents",
            ["incident", "severity", "status", "services", "declared", "TTA", "TTR", "ack SLA", "resolve SLA", "links"],
            [
                [
                    f"{r.ref}{' (reopened)' if r.reopened else ''}: {r.title}",
                    r.severity,
                    r.status,
                    ", ".join(r.services),
                    short(r.declared_at),
                    duration_text(r.tta_seconds),
                    duration_text(r.ttr_seconds),
                    r.ack_sla or "-",
                    r.resolve_sla or "-",
                    [Link(link.label, link.url) for link in r.links if link.url],
                ]
                for r in report.incidents
            ],
            note=listed_note,
        )
    )
    for section in report.external:
        found += _external_tables(section)
    return [t for t in found if t.rows or t.note or t.title == "Incidents"]


def _external_tables(section: ExternalSection) -> list[Table]:
    name = section.system
    rows: list[list[Cell]] = []
    for ref, items in section.incidents.items():
        for item in items:
            rows.append(
                [
                    ref,
                    Link(item.label, item.url) if item.url else item.label,
                    short(item.first_notification_at),
                    ", ".join(item.paged) or "-",
                    ", ".join(item.acknowledged_by) or "-",
                    duration_text(item.tta_seconds),
                    str(item.escalations),
                ]
            )
    return [
        Table(
            f"{name}: linked incidents",
            ["incident", name, "first notification", "paged (how)", "acknowledged by", "TTA", "escalations"],
            rows,
            note=" ".join(section.notes) or None,
        ),
        Table(
            f"{name}: on-call load",
            ["person", "pages", "acknowledgements", "mean TTA"],
            [[p.person, str(p.pages), str(p.acknowledgements), duration_text(p.mean_tta_seconds)] for p in section.load],
            numeric={1, 2, 3},
        ),
    ]
