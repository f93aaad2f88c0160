"""A report or a postmortem as terminal text and as Markdown that pastes cleanly into a wiki."""

from __future__ import annotations

from bot.reports.model import Report
from bot.reports.sections import Cell, Link, Table, cell_text, headline, tables


def text_table(table: Table) -> list[str]:
    rows = [[cell_text(c) for c in row] for row in table.rows]
    if table.columns and table.columns[-1] == "links":
        rows = [
            [
                *row[:-1],
                " ".join(link.url for link in raw[-1] if isinstance(link, Link)) if isinstance(raw[-1], list) else row[-1],
            ]
            for row, raw in zip(rows, table.rows, strict=True)
        ]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(table.columns)]
    out = [table.title, "  ".join(c.ljust(w) for c, w in zip(table.columns, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows] or ["(none)"]
    if table.note:
        out.append(f"({table.note})")
    return out


def report_text(report: Report) -> str:
    lines = [report.title, "=" * len(report.title)]
    lines += [f"{label + ':':<17}{value}" for label, value in headline(report)]
    lines += ["", "Definitions:", *(f"  - {d}" for d in report.definitions)]
    for note in report.notes:
        lines.append(f"Note: {note}")
    for section in report.external:
        lines += [f"Note ({section.system}): {n}" for n in section.notes]
    for table in tables(report):
        lines += ["", *text_table(table)]
    return "\n".join(lines) + "\n"


def md_escape(text: str) -> str:
    """Text we did not write, made inert in Markdown: no tables broken, no markup, no HTML."""
    out = text.replace("\\", "\\\\").replace("\n", " ")
    for ch in "|*_`[]<>#~":
        out = out.replace(ch, "\\" + ch)
    return out


def md_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f"[{md_escape(cell.text)}]({cell.url.replace(')', '%29').replace(' ', '%20')})"
    if isinstance(cell, list):
        return ", ".join(md_cell(c) for c in cell) or "-"
    return md_escape(cell) if cell else "-"


def md_table(table: Table) -> list[str]:
    out = [f"## {table.title}", ""]
    if table.note:
        out += [f"_{md_escape(table.note)}_", ""]
    if not table.rows:
        return [*out, "(none)", ""]
    out.append("| " + " | ".join(table.columns) + " |")
    out.append("|" + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.columns))) + "|")
    out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in table.rows]
    return [*out, ""]


def report_md(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    lines += [f"- **{label}:** {md_escape(value)}" for label, value in headline(report)]
    lines += ["", "**Definitions**", "", *(f"- {md_escape(d)}" for d in report.definitions), ""]
    notes = [*report.notes, *(f"{s.system}: {n}" for s in report.external for n in s.notes)]
    lines += [f"> **Note:** {md_escape(n)}" for n in notes]
    if notes:
        lines.append("")
    for table in tables(report):
        lines += md_table(table)
    return "\n".join(lines)
