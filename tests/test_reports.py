"""`im report` and `im postmortem` through the terminal's entry point, on a dataset built under freezegun
whose every figure is worked out by hand below, on SQLite and PostgreSQL.

The dataset (August 2026, UTC; targets ack SEV-1 5m / SEV-2 15m, resolve SEV-1 1h / SEV-2 4h):
  INC-1 SEV-1 db       08-03 10:00  ack +270 s (met)          resolve +3000 s (met)
  INC-2 SEV-1 api      08-04 09:00  ack +301 s (target + 1 s: breached)  resolve +3600 s (exactly: met)
  INC-3 SEV-2 db,web   08-05 12:00  ack +270 s, resolve +1800 s, reopened +7200 s, resolved again +10800 s
  INC-4 SEV-2 web      08-31 23:00  still open at the end of the range (09-01 00:00: 3600 s in)
  INC-5 SEV-3 db       09-02 08:00  outside the range
MTTA samples 270, 301, 270: mean 280.333, median 270, p90 270 + 0.8 * 31 = 294.8.
MTTR samples 3000, 3600, 10800 (INC-3 to its last resolve): mean 5800, median 3600, p90 3600 + 0.8 * 7200 = 9360.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from freezegun import freeze_time
from pypdf import PdfReader

from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.wiring import build
from tests.harness import make_settings
from tests.pd_support import Terminal

ALICE = Actor(Origin.CLI, "alice", "Alice")
TARGETS = {"IM_SLA_ACK": "SEV-1=5m,SEV-2=15m", "IM_SLA_RESOLVE": "SEV-1=1h,SEV-2=4h"}
AUGUST = ("--start", "2026-08-01", "--end", "2026-08-31", "--tz", "UTC")
REPORT_TIME = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _seed(database_url: str) -> None:
    im = build(make_settings(database_url))
    svc = im.incidents

    def declare(at: datetime, sev: str, title: str, services: list[str]) -> int:
        with freeze_time(at):
            incident = svc.declare(
                title=title, severity=sev, services=services, description=None, actor=ALICE, context={}, once_key=None
            )
            assert incident is not None
            return incident.number

    def step(at: datetime, number: int, verb: str, note: str | None = None) -> None:
        with freeze_time(at):
            svc.transition(number, verb, actor=ALICE, note=note, context={}, once_key=None)

    one = declare(datetime(2026, 8, 3, 10, 0, tzinfo=UTC), "SEV-1", "Database slow", ["db"])
    step(datetime(2026, 8, 3, 10, 4, 30, tzinfo=UTC), one, "acknowledge")
    step(datetime(2026, 8, 3, 10, 50, tzinfo=UTC), one, "resolve", "index rebuilt")
    two = declare(datetime(2026, 8, 4, 9, 0, tzinfo=UTC), "SEV-1", "API errors", ["api"])
    step(datetime(2026, 8, 4, 9, 5, 1, tzinfo=UTC), two, "acknowledge")
    step(datetime(2026, 8, 4, 10, 0, tzinfo=UTC), two, "resolve", "rolled back")
    three = declare(datetime(2026, 8, 5, 12, 0, tzinfo=UTC), "SEV-2", "Checkout | *slow*", ["db", "web"])
    step(datetime(2026, 8, 5, 12, 4, 30, tzinfo=UTC), three, "acknowledge")
    step(datetime(2026, 8, 5, 12, 30, tzinfo=UTC), three, "resolve", "cache warmed")
    step(datetime(2026, 8, 5, 14, 0, tzinfo=UTC), three, "reopen", "back again")
    step(datetime(2026, 8, 5, 14, 10, tzinfo=UTC), three, "acknowledge")
    step(datetime(2026, 8, 5, 15, 0, tzinfo=UTC), three, "resolve", "cache resized")
    declare(datetime(2026, 8, 31, 23, 0, tzinfo=UTC), "SEV-2", "Web down", ["web"])
    declare(datetime(2026, 9, 2, 8, 0, tzinfo=UTC), "SEV-3", "Later", ["db"])
    im.store.dispose()


@pytest.fixture
def im_cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Terminal]:
    _seed(database_url)
    terminal = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": database_url, **TARGETS})
    with freeze_time(REPORT_TIME):
        yield terminal


def test_json_figures_computed_by_hand(im_cli: Terminal) -> None:
    report = json.loads(im_cli.ok("report", *AUGUST, "--format", "json"))
    assert (report["total"], report["reopened"]) == (4, 1)
    assert report["start"].startswith("2026-08-01T00:00:00") and report["end"].startswith("2026-09-01T00:00:00")
    assert {c["key"]: c["count"] for c in report["by_severity"]} == {"SEV-1": 2, "SEV-2": 2}
    assert {c["key"]: c["count"] for c in report["by_service"]} == {"db": 2, "api": 1, "web": 2}
    assert {c["key"]: c["count"] for c in report["by_status"]} == {"resolved": 3, "open": 1}
    assert {m["service"]: m["minutes"] for m in report["minutes_by_service"]} == {"db": 230.0, "api": 60.0, "web": 240.0}
    overall = report["overall"]
    assert overall["mtta"] == {"samples": 3, "mean": 280.333, "median": 270.0, "p90": 294.8, "reason": None}
    assert overall["mttr"] == {"samples": 3, "mean": 5800.0, "median": 3600.0, "p90": 9360.0, "reason": None}
    sev2 = next(g for g in report["figures_by_severity"] if g["key"] == "SEV-2")
    assert sev2["mtta"]["mean"] == 270.0, "MTTA of exactly 4 min 30 s"
    assert sev2["mttr"]["samples"] == 1 and sev2["mttr"]["mean"] == 10800.0, "the reopened incident: to its last resolve"
    sla = {(r["severity"], r["kind"]): (r["met"], r["breached"], r["open"]) for r in report["sla"]}
    assert sla == {
        ("SEV-1", "ack"): (1, 1, 0),  # 270 s met; 301 s is the target plus one second: breached
        ("SEV-2", "ack"): (1, 1, 0),  # INC-4 unacknowledged 3600 s in at the end of the range
        ("SEV-1", "resolve"): (2, 0, 0),  # 3600 s is exactly the target: met
        ("SEV-2", "resolve"): (1, 0, 1),  # INC-4 still within 4 h at the end of the range
    }
    rows = {r["ref"]: r for r in report["incidents"]}
    assert list(rows) == ["INC-1", "INC-2", "INC-3", "INC-4"]
    assert rows["INC-2"]["ack_sla"] == "breached" and rows["INC-2"]["resolve_sla"] == "met"
    assert rows["INC-3"]["reopened"] is True and rows["INC-3"]["ttr_seconds"] == 10800.0
    assert rows["INC-4"]["resolved_at"] is None and rows["INC-4"]["resolve_sla"] == "open"
    assert report["trend_unit"] == "day" and len(report["trend"]) == 31
    assert report["trend"][2]["incidents"] == 1 and report["trend"][2]["mtta_mean"] == 270.0
    assert any("Reopened incidents count once" in d for d in report["definitions"])


def test_filters_and_text(im_cli: Terminal) -> None:
    only = json.loads(im_cli.ok("report", *AUGUST, "--service", "web", "--severity", "sev2", "--format", "json"))
    assert only["total"] == 2 and only["filters"] == {"services": ["web"], "severities": ["SEV-2"]}
    text = im_cli.ok("report", *AUGUST)
    assert "2026-08-01 00:00 to 2026-09-01 00:00 (UTC; start included, end excluded)" in text
    assert "MTTA:            mean 4m 40s, median 4m 30s, p90 4m 55s (n=3)" in text
    assert text.count("MTTA (time to acknowledge): from declared to the first acknowledgement.") == 1


def test_empty_range_is_a_report_that_says_so(im_cli: Terminal) -> None:
    ran = im_cli("report", "--start", "2026-07-01", "--end", "2026-07-31", "--tz", "UTC")
    assert ran.code == 0, ran.err
    assert "No incident was declared in this range" in ran.out and "n/a (no incident acknowledged)" in ran.out
    report = json.loads(im_cli.ok("report", "--start", "2026-07-01", "--end", "2026-07-31", "--format", "json"))
    assert report["total"] == 0 and report["overall"]["mtta"]["mean"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--start", "2026-08-10", "--end", "2026-08-01"), "is not after the start"),
        (("--service", "nosuch"), "unknown service(s): nosuch"),
        (("--severity", "SEV-9"), "is not a severity"),
        (("--format", "docx"), "invalid choice: 'docx'"),
        (("--tz", "Mars/Base"), "is not a time zone"),
        (("--output", "/nonexistent/folder/r.pdf", "--format", "pdf"), "does not exist"),
    ],
)
def test_bad_input_exit_2_nothing_written(im_cli: Terminal, tmp_path: Path, argv: tuple[str, ...], message: str) -> None:
    def written() -> set[Path]:
        return {p for p in tmp_path.iterdir() if not p.name.startswith("im.db")}

    before = written()
    ran = im_cli("report", *argv)
    assert ran.code == 2 and message in ran.err, ran
    assert ran.out == "" and written() == before


def test_pdf_read_back(im_cli: Terminal, tmp_path: Path) -> None:
    out = im_cli.ok("report", *AUGUST, "--format", "pdf", "--output", "august.pdf", "--paper", "letter")
    assert out.startswith("Written to august.pdf: 4 incidents; MTTA 4m 40s")
    reader = PdfReader(tmp_path / "august.pdf")
    assert len(reader.pages) >= 3
    assert round(float(reader.pages[0].mediabox.width)) == 612, "Letter"
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "Incident report",
        "mean 4m 40s, median 4m 30s",
        "50.0% (2 met, 2 breached, 0 open)",
        "INC-3 (reopened)",
        "Checkout | *slow*",
    ):
        assert expected in text
    charts = next(p for p in reader.pages if "Incidents per day" in p.extract_text())
    drawing = charts.get_contents().get_data().decode("latin-1")
    assert " re" in drawing and " l" in drawing, "bars and lines drawn"
    fonts = {str(f["/BaseFont"]) for p in reader.pages for f in p["/Resources"]["/Font"].get_object().values()}
    assert all("DejaVu" in name for name in fonts)
    descriptor = next(iter(reader.pages[0]["/Resources"]["/Font"].values())).get_object()["/DescendantFonts"][0].get_object()
    assert "/FontFile2" in descriptor["/FontDescriptor"], "fonts embedded"


def test_csv_parsed(im_cli: Terminal) -> None:
    rows = list(csv.DictReader(io.StringIO(im_cli.ok("report", *AUGUST, "--format", "csv"))))
    value = {(r["section"], r["group"], r["metric"]): r["value"] for r in rows}
    assert value[("overall", "all", "mtta_median_seconds")] == "270.0"
    assert value[("by_severity", "SEV-2", "mttr_mean_seconds")] == "10800.0"
    assert value[("sla_ack", "SEV-1", "breached")] == "1"
    assert value[("incident", "INC-3", "title")] == "Checkout | *slow*"


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_parsed(im_cli: Terminal) -> None:
    page = _Html()
    page.feed(im_cli.ok("report", *AUGUST, "--format", "html"))
    text = "".join(page.text)
    assert page.tags["svg"] == 4 and page.tags["polyline"] >= 3 and page.tags["rect"] >= 5
    assert page.tags["table"] >= 7 and "INC-3 (reopened): Checkout | *slow*" in text
    assert "size:A4" in text


def test_markdown_escapes_and_postmortem(im_cli: Terminal, tmp_path: Path) -> None:
    md = im_cli.ok("report", *AUGUST, "--format", "md")
    assert "Checkout \\| \\*slow\\*" in md and "| INC-1: Database slow |" in md
    draft = im_cli.ok("postmortem", "INC-3")
    for heading in (
        "## Summary",
        "## Impact",
        "## People",
        "## Timeline",
        "## Resolution",
        "## Contributing factors",
        "## Follow-ups",
    ):
        assert heading in draft
    assert "- **Acknowledged:** 2026-08-05 12:04 UTC (after 4m 30s)" in draft
    assert "- **Resolved:** 2026-08-05 15:00 UTC (after 3h 00m)" in draft
    assert "acknowledge within 15m 00s: met; resolve within 4h 00m: met" in draft
    assert "| 2026-08-05 14:00 | terminal | Alice | Reopened: back again |" in draft or "Reopened" in draft
    assert "cache resized" in draft.split("## Resolution")[1]
    im_cli.ok("postmortem", "INC-3", "--format", "pdf", "--output", "pm.pdf")
    text = "\n".join(p.extract_text() for p in PdfReader(tmp_path / "pm.pdf").pages)
    assert "Postmortem draft: INC-3" in text and "Contributing factors" in text and "terminal" in text
    ran = im_cli("postmortem", "INC-99")
    assert ran.code == 2 and "INC-99" in ran.err
