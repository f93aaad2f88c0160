"""A report or a postmortem as a PDF a manager would forward, with fpdf2: a title page with the range
and filters, the headline figures up front, charts drawn as vector paths, tables that break across
pages with their headings repeated, DejaVu Sans embedded (subset), A4 or Letter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from bot.clock import short
from bot.reports.charts import PALETTE, Chart, charts_for, fmt_axis
from bot.reports.model import Report
from bot.reports.sections import Link, Table, cell_text, headline, tables

FONTS = Path(__file__).with_name("fonts")
FONT = "DejaVu"
PAPERS = {"a4": "A4", "letter": "Letter"}


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


class Document(FPDF):
    def __init__(self, title: str, paper: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format=PAPERS[paper])
        self.doc_title = title
        self.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_font(FONT, size=10)
        self.set_margins(16, 16, 16)
        self.set_auto_page_break(True, margin=18)
        self.set_title(title)
        self.set_creator("im")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(110, 120, 130)
        self.cell(0, 6, f"{self.doc_title}  ·  page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)

    # -- blocks ----------------------------------------------------------------------------
    def heading(self, text: str, size: int = 14) -> None:
        if self.get_y() > self.h - 50:
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", size)
        self.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, size=10)
        self.ln(1)

    def paragraph(self, text: str, size: int = 10, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        self.set_font(FONT, size=size)
        self.set_text_color(*color)
        self.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)

    def pairs(self, items: Sequence[tuple[str, str]]) -> None:
        for label, value in items:
            self.set_font(FONT, "B", 10)
            self.cell(38, 6, label)
            self.set_font(FONT, size=10)
            self.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")

    def table_block(self, table: Table) -> None:
        self.heading(table.title, 12)
        if table.note:
            self.paragraph(table.note, 8, (120, 80, 0))
        if not table.rows:
            self.paragraph("(none)", 9)
            return
        self.set_font(FONT, size=7 if len(table.columns) > 7 else 8)
        self.set_draw_color(200, 208, 216)
        self.set_fill_color(247, 249, 251)  # zebra rows (the table fills with the current colour)
        aligns = ["RIGHT" if i in table.numeric else "LEFT" for i in range(len(table.columns))]
        widths = _widths(table)
        with self.table(
            col_widths=widths,
            text_align=aligns,
            headings_style=FontFace(emphasis="BOLD", fill_color=(238, 242, 246)),
            line_height=self.font_size * 1.5,
            repeat_headings=1,
            borders_layout="HORIZONTAL_LINES",
            cell_fill_color=(247, 249, 251),
            cell_fill_mode="ROWS",
        ) as grid:
            heading = grid.row()
            for column in table.columns:
                heading.cell(column)
            for raw in table.rows:
                row = grid.row()
                for cell in raw:
                    if isinstance(cell, Link):
                        row.cell(cell.text, link=cell.url)
                    elif isinstance(cell, list):
                        row.cell(", ".join(link.text for link in cell) or "-", link=cell[0].url if len(cell) == 1 else None)
                    else:
                        row.cell(cell_text(cell))
        self.set_font(FONT, size=10)

    def chart(self, chart: Chart, x: float, y: float, w: float, h: float) -> None:
        left, bottom, top_pad = 12.0, 14.0, 8.0
        px, py, pw, ph = x + left, y + top_pad, w - left - 2, h - top_pad - bottom
        self.set_font(FONT, "B", 9)
        self.text(x, y + 4, chart.title)
        self.set_font(FONT, size=6)
        top = chart.top
        self.set_line_width(0.1)
        for k in range(5):
            gy = py + ph - ph * k / 4
            self.set_draw_color(220, 226, 232)
            self.line(px, gy, px + pw, gy)
            label = fmt_axis(top * k / 4)
            self.text(px - 1 - self.get_string_width(label), gy + 1, label)
        n = max(len(chart.labels), 1)
        every = max(1, n // 12)
        for i, label in enumerate(chart.labels):
            if i % every == 0:
                lx = px + pw * (i + 0.5) / n
                with self.rotation(35, lx, py + ph + 2):
                    self.text(lx - self.get_string_width(label), py + ph + 3, label)
        for s_index, series in enumerate(chart.series):
            color = _rgb(PALETTE[s_index % len(PALETTE)])
            points = [(px + pw * (i + 0.5) / n, py + ph - ph * (v / top)) for i, v in enumerate(series.values) if v is not None]
            if chart.kind == "bar":
                self.set_fill_color(*color)
                bar = pw / n * 0.7
                for bx, by in points:
                    self.rect(bx - bar / 2, by, bar, py + ph - by, style="F")
            elif points:
                self.set_draw_color(*color)
                self.set_line_width(0.5)
                self.polyline(points) if len(points) > 1 else self.circle(points[0][0], points[0][1], 0.8, style="D")
                self.set_line_width(0.1)
                if len(chart.series) > 1:
                    self.set_text_color(*color)
                    self.set_font(FONT, "B", 7)
                    self.text(px + pw - 20 * (len(chart.series) - s_index), py - 1, f"■ {series.name}")
                    self.set_font(FONT, size=6)
                    self.set_text_color(0, 0, 0)
        self.set_draw_color(0, 0, 0)

    def charts(self, charts: list[Chart]) -> None:
        width = (self.w - self.l_margin - self.r_margin - 6) / 2
        height = 62.0
        for index in range(0, len(charts), 2):
            if self.get_y() + height > self.h - 20:
                self.add_page()
            y = self.get_y()
            for offset, chart in enumerate(charts[index : index + 2]):
                self.chart(chart, self.l_margin + offset * (width + 6), y, width, height)
            self.set_y(y + height + 4)


def _widths(table: Table) -> list[int]:
    """Width by the longest text in each column (first 200 rows), within bounds, so titles get room."""
    sample = table.rows[:200]
    widths = []
    for i, column in enumerate(table.columns):
        longest = max([len(column), *(len(cell_text(r[i])) for r in sample)])
        widths.append(max(6, min(longest, 40)))
    return widths


def report_pdf(report: Report, paper: str = "a4") -> bytes:
    pdf = Document(report.title, paper)
    pdf.add_page()
    pdf.ln(40)
    pdf.set_font(FONT, "B", 26)
    pdf.multi_cell(0, 12, report.title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.pairs([*headline(report)[:2], ("Generated", short(report.generated_at))])
    pdf.ln(6)
    pdf.heading("Summary", 16)
    pdf.pairs(headline(report)[2:])
    for note in [*report.notes, *(f"{s.system}: {n}" for s in report.external for n in s.notes)]:
        pdf.paragraph(f"Note: {note}", 9, (140, 80, 0))
    pdf.ln(4)
    pdf.heading("Definitions", 11)
    for definition in report.definitions:
        pdf.paragraph(f"• {definition}", 8, (60, 70, 80))
    charts = charts_for(report)
    if charts:
        pdf.add_page()
        pdf.heading("Charts", 16)
        pdf.charts(charts)
    pdf.add_page()
    for table in tables(report):
        pdf.table_block(table)
    return bytes(pdf.output())
