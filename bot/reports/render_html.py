"""A report as one self-contained HTML document: inline CSS and SVG charts, nothing fetched, print
layout for A4 or Letter. Every text we did not write is escaped."""

from __future__ import annotations

from html import escape

from bot.reports.charts import PALETTE, Chart, charts_for, fmt_axis
from bot.reports.model import Report
from bot.reports.sections import Cell, Link, Table, headline, tables

STYLE = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#1d2733;margin:2em;font-size:11pt}
h1{font-size:22pt;margin-bottom:.2em}h2{font-size:14pt;margin-top:1.6em;border-bottom:1px solid #ccd5df}
table{border-collapse:collapse;width:100%;margin:.4em 0;font-size:9pt}th,td{border:1px solid #d5dde6;padding:3px 6px;text-align:left}
th{background:#eef2f6}td.n{text-align:right}tr{page-break-inside:avoid}thead{display:table-header-group}
dl.headline{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:bold}
.note{color:#8a5300}.charts{display:flex;flex-wrap:wrap;gap:1em}.chart{page-break-inside:avoid}
.definitions{font-size:9pt;color:#44505c}
"""


def _cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="{escape(cell.url)}">{escape(cell.text)}</a>'
    if isinstance(cell, list):
        return ", ".join(_cell(c) for c in cell) or "-"
    return escape(cell)


def html_table(table: Table) -> str:
    parts = [f"<h2>{escape(table.title)}</h2>"]
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    if not table.rows:
        return "".join([*parts, "<p>(none)</p>"])
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in table.numeric else ''}>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    return "".join([*parts, f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"])


def svg_chart(chart: Chart, width: int = 460, height: int = 230) -> str:
    left, right, top, bottom = 44, 10, 28, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = chart.top
    n = max(len(chart.labels), 1)
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{escape(chart.title)}">',
        f'<text x="{left}" y="16" font-size="12" font-weight="bold">{escape(chart.title)}</text>',
    ]
    for k in range(5):
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e8ee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">{fmt_axis(value)}</text>')
    every = max(1, n // 12)
    for i, label in enumerate(chart.labels):
        if i % every == 0:
            x = left + plot_w * (i + 0.5) / n
            out.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 12}" font-size="8" text-anchor="end" transform="rotate(-35 {x:.1f} {top + plot_h + 12})">{escape(label)}</text>'
            )
    for s_index, series in enumerate(chart.series):
        color = PALETTE[s_index % len(PALETTE)]
        points = [
            (left + plot_w * (i + 0.5) / n, top + plot_h - plot_h * (v / top_value))
            for i, v in enumerate(series.values)
            if v is not None
        ]
        if chart.kind == "bar":
            bar = plot_w / n * 0.7
            for x, y in points:
                out.append(
                    f'<rect x="{x - bar / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{top + plot_h - y:.1f}" fill="{color}"/>'
                )
        else:
            out.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'
            )
            if len(chart.series) > 1:
                out.append(
                    f'<text x="{left + plot_w - 60 * (len(chart.series) - s_index)}" y="{top - 4}" font-size="10" fill="{color}">■ {escape(series.name)}</text>'
                )
    out.append("</svg>")
    return "".join(out)


def page(title: str, body: str, paper: str) -> str:
    size = "A4" if paper == "a4" else "letter"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>@page{{size:{size};margin:16mm}}{STYLE}</style></head><body>{body}</body></html>"
    )


def report_html(report: Report, paper: str = "a4") -> str:
    parts = [f"<h1>{escape(report.title)}</h1>", '<dl class="headline">']
    parts += [f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in headline(report)]
    parts.append("</dl>")
    notes = [*report.notes, *(f"{s.system}: {n}" for s in report.external for n in s.notes)]
    parts += [f'<p class="note">Note: {escape(n)}</p>' for n in notes]
    charts = charts_for(report)
    if charts:
        parts.append('<div class="charts">' + "".join(svg_chart(c) for c in charts) + "</div>")
    parts.append(
        '<div class="definitions"><h2>Definitions</h2><ul>'
        + "".join(f"<li>{escape(d)}</li>" for d in report.definitions)
        + "</ul></div>"
    )
    parts += [html_table(t) for t in tables(report)]
    return page(report.title, "".join(parts), paper)
