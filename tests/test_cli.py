"""The terminal front end, run as a user runs it: a real `im` process with a clean environment,
judged by its stdout, stderr and exit code (and by what it left in the database)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import utcnow
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.wiring import build
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, AppHarness, make_settings

REPO = Path(__file__).resolve().parents[1]
IM_SCRIPT = Path(sys.executable).with_name("im")
CHANNEL = "C0INCIDENT"
USER = "carol"


# -- running `im` ------------------------------------------------------------------------------


@dataclass
class Run:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"im {' '.join(self.argv)} -> exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"

    def json(self) -> Any:
        assert self.code == 0, str(self)
        return json.loads(self.out)


def clean_env(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment minus anything that configures im, plus our database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_", "PAGERDUTY_"))}
    env["IM_DATABASE_URL"] = database_url
    env["IM_ACTOR"] = USER
    env["PYTHONPATH"] = str(REPO)  # this checkout, whatever the venv's editable install points at
    env.update(extra)
    return env


class Im:
    """`im` against one SQLite file, run in `cwd` (so no stray `.env` is read)."""

    def __init__(self, tmp_path: Path, **extra_env: str) -> None:
        self.db = tmp_path / "im.db"
        self.url = f"sqlite:///{self.db}"
        self.cwd = tmp_path
        self.env = clean_env(self.url, **extra_env)

    def __call__(self, *argv: str, env: dict[str, str] | None = None, script: bool = False) -> Run:
        command = [str(IM_SCRIPT)] if script else [sys.executable, "-m", "bot.main"]
        proc = subprocess.run(
            [*command, *argv],
            env=env or self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,  # not a terminal: never prompt
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Run(tuple(argv), proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *argv: str) -> Run:
        run = self(*argv)
        assert run.code == 0, str(run)
        assert run.err == "", str(run)
        return run

    def many(self, *argvs: tuple[str, ...], env: dict[str, str] | None = None) -> list[Run]:
        """Independent read-only runs side by side (each process spends most of its time importing)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda argv: self(*argv, env=env), argvs))

    def rows(self) -> dict[str, int]:
        if not self.db.exists():
            return {}
        with sqlite3.connect(self.db) as conn:
            return {
                t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in ("incident", "timeline_event", "outbox_job")
            }

    def jobs(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("select * from outbox_job order by id")]


@pytest.fixture
def im(tmp_path: Path) -> Im:
    return Im(tmp_path)


def ids(run: Run) -> list[str]:
    return [i["id"] for i in run.json()["incidents"]]


def assert_usage_error(run: Run, usage_prefix: str) -> None:
    """One line `im: ...`, then the command's usage; nothing on stdout; exit 2; no traceback."""
    assert run.code == 2, str(run)
    assert run.out == "", str(run)
    assert "Traceback" not in run.err, str(run)
    lines = run.err.rstrip("\n").splitlines()
    assert lines[0].startswith("im: ") and len(lines[0]) > len("im: "), str(run)
    assert [line for line in lines if line.startswith("im:")] == [lines[0]], str(run)
    assert lines[1].startswith(usage_prefix), str(run)
    assert all(line.startswith(" ") for line in lines[2:]), f"usage continuation lines only after the message\n{run}"


# -- the happy path ----------------------------------------------------------------------------


def test_incident_lifecycle_from_the_terminal(im: Im) -> None:
    first = im.ok("declare", "--sev", "SEV-2", "--title", "Database slow", "--service", "db")
    assert first.out == "INC-1 declared: SEV-2 Database slow (db)\n"
    second = im.ok("declare", "--severity", "3", "-t", "Checkout errors", "-s", "web,API", "-d", "5xx on /pay")
    assert second.out == "INC-2 declared: SEV-3 Checkout errors (web, api)\n"

    assert im.ok("ack", "--incident", "INC-1", "--note", "looking").out == "INC-1 acknowledged (mitigated)\n"
    assert im.ok("acknowledge", "-i", "inc-1").out == "INC-1 is already mitigated: nothing changed\n"
    assert im.ok("note", "-i", "INC-1", "restarted", "the", "primary").out == "Note added to INC-1\n"
    assert im.ok("sev", "-i", "1", "--sev", "SEV-1").out == "INC-1 is now SEV-1\n"
    assert im.ok("resolve", "-i", "INC-1", "-n", "rolled back the index").out == "INC-1 resolved\n"
    assert im.ok("close", "-i", "INC-1").out == "INC-1 closed\n"
    assert im.ok("reopen", "-i", "INC-1", "-n", "latency is back").out == "INC-1 reopened\n"
    assert im.ok("close", "-i", "INC-2").out == "INC-2 closed\n"

    status, detail, timeline, status_json, list_json, timeline_json = im.many(
        ("status",),
        ("status", "-i", "INC-1"),
        ("timeline", "-i", "INC-1"),
        ("status", "--json"),
        ("list", "--json"),
        ("timeline", "--incident", "INC-1", "--json"),
    )
    for run in (status, detail, timeline, status_json, list_json, timeline_json):
        assert run.code == 0 and run.err == "", str(run)

    # text: `status` is every incident not closed; one incident in full; the timeline oldest first
    assert status.out.splitlines()[0].split() == ["ID", "SEV", "STATUS", "SERVICES", "DECLARED", "OWNER", "TITLE"]
    assert [line.split()[:4] for line in status.out.splitlines()[1:]] == [["INC-1", "SEV-1", "open", "db"]]
    assert detail.out.startswith("INC-1  Database slow\n")
    detail_lines = ("severity:     SEV-1", "status:       open", f"by {USER}", "resolution:   rolled back the index")
    for line in (*detail_lines, "  to ack:       ", "  to resolve:   ", "  ack SLA:      running (target 5m, due "):
        assert line in detail.out, detail.out
    assert timeline.out.startswith("INC-1 SEV-1 [open] Database slow\n")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ", timeline.out.splitlines()[2]), "the timeline to the second"
    steps = [
        "Declared SEV-2: Database slow",
        "Acknowledged: looking",
        "restarted the primary",
        "Severity SEV-2 -> SEV-1",
        "Resolved: rolled back the index",
        "Closed",
        "Reopened: latency is back",
    ]
    assert [line.split(USER, 1)[1].strip() for line in timeline.out.splitlines()[2:]] == steps

    # JSON
    body = status_json.json()
    assert body["kind"] == "incidents" and body["delivery_problems"] == []
    assert [i["id"] for i in body["incidents"]] == ["INC-1"]
    listed = list_json.json()
    assert listed["kind"] == "incidents" and listed["title"] == "2 incident(s)"
    inc2, inc1 = listed["incidents"]
    ttr = inc2["time_to_resolve_seconds"]
    assert isinstance(ttr, int) and ttr >= 0, "time to resolve, from the stored timestamps"
    assert [(c["kind"], c["state"], c["target_seconds"]) for c in inc2["sla"]] == [
        ("ack", "met", 3600),
        ("resolve", "met", 86400),
    ]
    assert inc2 | {"declared_at": None, "resolved_at": None, "closed_at": None, "time_to_resolve_seconds": None, "sla": None} == {
        "id": "INC-2",
        "title": "Checkout errors",
        "severity": "SEV-3",
        "status": "closed",
        "services": ["web", "api"],
        "description": "5xx on /pay",
        "fields": {},
        "drill": False,
        "resolution": None,
        "declared_by": USER,
        "declared_at": None,
        "acknowledged_at": None,
        "mitigated_at": None,
        "resolved_at": None,
        "closed_at": None,
        "owner": None,
        "roles": {},
        "time_to_acknowledge_seconds": None,
        "time_to_resolve_seconds": None,
        "sla": None,
        "links": [],
        "delivery_problems": [],
    }
    stamps = [datetime.fromisoformat(inc2[k].replace("Z", "+00:00")) for k in ("declared_at", "resolved_at", "closed_at")]
    assert stamps == sorted(stamps) and all(s.tzinfo is not None for s in stamps)
    assert (inc1["id"], inc1["status"], inc1["severity"], inc1["closed_at"]) == ("INC-1", "open", "SEV-1", None)
    assert inc1["acknowledged_at"] is not None and inc1["resolution"] == "rolled back the index"
    # reopened: its clocks run again from the reopen, though its first acknowledgement is kept
    assert [(c["kind"], c["state"], c["target_seconds"]) for c in inc1["sla"]] == [
        ("ack", "running", 300),
        ("resolve", "running", 14400),
    ]
    assert inc1["sla"][0]["started_at"] > inc1["acknowledged_at"] and inc1["sla"][0]["stopped_at"] is None
    tl = timeline_json.json()
    assert tl["kind"] == "timeline" and tl["incident"]["id"] == "INC-1"
    assert [e["text"] for e in tl["events"]] == steps
    assert [e["kind"] for e in tl["events"]] == ["declared", "status", "note", "severity", "status", "status", "status"]
    assert {(e["origin"], e["actor"]) for e in tl["events"]} == {("cli", USER)}
    assert set(tl["events"][0]) == {"at", "kind", "origin", "actor", "text"}
    # No Slack configured: nothing was queued for it.
    assert im.rows() == {"incident": 2, "timeline_event": 9, "outbox_job": 0}


def test_the_installed_im_script_works_from_any_directory(im: Im) -> None:
    env = {k: v for k, v in im.env.items() if k != "PYTHONPATH"}
    run = im("declare", "--sev", "SEV-3", "--title", "From the script", "--service", "web", env=env, script=True)
    assert (run.code, run.out, run.err) == (0, "INC-1 declared: SEV-3 From the script (web)\n", ""), str(run)


def seed(cli: Im) -> dict[str, datetime]:
    """Incidents with known dates, written in-process (what is under test is the terminal reading them)."""
    app = build(make_settings(cli.url))
    carol = Actor(Origin.CLI, USER)
    now = utcnow()
    declared = {
        "INC-1": datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
        "INC-2": datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
        "INC-3": now - timedelta(days=2),
        "INC-4": now - timedelta(hours=1),
    }
    service = app.incidents
    service.declare(title="Old db outage", severity="SEV-1", services=["db"], actor=carol, at=declared["INC-1"])
    service.transition(1, "resolve", actor=carol, note="fixed")
    service.declare(title="New year api", severity="SEV-2", services=["api", "web"], actor=carol, at=declared["INC-2"])
    service.declare(title="Cache misses", severity="SEV-3", services=["db", "cache"], actor=carol, at=declared["INC-3"])
    service.declare(title="Web slow", severity="SEV-2", services=["web"], actor=carol, at=declared["INC-4"])
    service.transition(4, "acknowledge", actor=carol)
    app.store.dispose()
    return declared


def test_list_filters(im: Im) -> None:
    declared = seed(im)
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    cases: dict[tuple[str, ...], list[str]] = {
        ("list", "--status", "resolved", "--json"): ["INC-1"],
        ("list", "--sev", "2", "--json"): ["INC-4", "INC-2"],
        ("ls", "--service", "WEB", "--json"): ["INC-4", "INC-2"],
        ("list", "--since", "24h", "--json"): ["INC-4"],
        ("list", "--since", "2026-01-01", "--json"): [r for r in ("INC-4", "INC-3", "INC-2") if declared[r] >= new_year],
        ("list", "--status", "open", "--severity", "SEV-2", "--service", "web", "--json"): ["INC-2"],
        ("list", "--service", "db", "--since", "3d", "--json"): ["INC-3"],
    }
    runs = im.many(*cases, ("list", "--sev", "SEV-1"))
    for run, expected in zip(runs, cases.values()):
        assert ids(run) == expected, str(run)
    text = runs[-1]
    assert text.code == 0 and text.err == "", str(text)
    lines = text.out.splitlines()
    assert len(lines) == 2 and lines[1].split()[:4] == ["INC-1", "SEV-1", "resolved", "db"], text.out


# -- bad input ---------------------------------------------------------------------------------


BAD_INPUT = {
    "unknown command": (("frobnicate", "--now"), "usage: im <"),
    "unknown flag": (("list", "--bogus"), "usage: im list"),
    "missing value": (("declare", "--sev"), "usage: im declare"),
    "bad severity": (("declare", "--sev", "SEV-9", "--title", "x", "--service", "db"), "usage: im declare"),
    "unknown incident": (("ack", "--incident", "INC-99"), "usage: im ack"),
    "forbidden transition": (("ack", "--incident", "INC-1"), "usage: im ack"),
    "empty title": (("declare", "--sev", "2", "--title", "", "--service", "db"), "usage: im declare"),
    "blank title": (("declare", "--sev", "2", "--title", "   ", "--service", "db"), "usage: im declare"),
    "bad --since": (("list", "--since", "yesterday"), "usage: im list"),
    "no incident given": (("note", "hello"), "usage: im note"),
}


def test_bad_input_is_one_line_plus_usage_exit_2_and_changes_nothing(im: Im) -> None:
    seed(im)
    before = im.rows()

    runs = im.many(*(argv for argv, _ in BAD_INPUT.values()))
    failures = []
    for (name, (_, usage)), run in zip(BAD_INPUT.items(), runs):
        try:
            assert_usage_error(run, usage)
        except AssertionError as exc:
            failures.append(f"[{name}] {exc}")
    assert not failures, "\n\n".join(failures)

    messages = {name: run.err.splitlines()[0] for name, run in zip(BAD_INPUT, runs)}
    assert messages["unknown command"] == "im: unknown command 'frobnicate'"
    assert "--bogus" in messages["unknown flag"]
    assert "--sev" in messages["missing value"]
    assert "SEV-9" in messages["bad severity"]
    assert messages["unknown incident"] == "im: INC-99 does not exist"
    assert messages["forbidden transition"] == "im: INC-1 is resolved: it cannot be acknowledged (reopen it first)"
    assert "title" in messages["empty title"] and "title" in messages["blank title"]
    assert "yesterday" in messages["bad --since"]
    assert "--incident" in messages["no incident given"]

    assert im.rows() == before
    assert [(i["id"], i["status"]) for i in im.ok("list", "--json").json()["incidents"]] == [
        ("INC-4", "mitigated"),
        ("INC-3", "open"),
        ("INC-2", "open"),
        ("INC-1", "resolved"),
    ]


# -- settings ----------------------------------------------------------------------------------


def test_invalid_settings_name_the_variable(im: Im) -> None:
    cases = {
        "IM_PORT": "abc",
        "IM_WAR_ROOM_MIN_SEV": "SEV-9",
        "IM_DATABASE_URL": "mysql://x",
        "SLACK_API_URL": "notaurl",
        "IM_SLACK_CHANNEL": "general",
    }
    declare = ("declare", "--sev", "2", "-t", "x", "-s", "db")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda item: (item[0], im(*declare, env={**im.env, item[0]: item[1]})), cases.items()))
    for name, run in runs:
        assert run.code == 2, str(run)
        assert run.out == "" and "Traceback" not in run.err, str(run)
        lines = run.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"im: invalid setting {name}: "), str(run)
    assert im.rows().get("incident", 0) == 0


# -- help --------------------------------------------------------------------------------------


def test_help_is_generated_from_the_commands(im: Im) -> None:
    top, one, flag, empty = im.many(("help",), ("help", "declare"), ("declare", "--help"), ("list",))
    for run in (top, one, flag, empty):
        assert run.code == 0 and run.err == "", str(run)
    listed = {line.split()[0] for line in top.out.splitlines()[2:] if line.strip()}
    assert {"declare", "ack", "resolve", "close", "reopen", "note", "severity", "status", "list", "timeline", "help"} <= listed
    assert {"serve", "db"} <= listed, "terminal-only commands are listed in the terminal"
    assert "upgrade" in next(line for line in top.out.splitlines() if line.split()[:1] == ["db"])

    assert one.out == flag.out
    assert one.out.startswith("usage: im declare --sev SEV --title TEXT --service"), "required in a terminal, shown so"
    for option in ("--sev SEV, --severity SEV", "--title TEXT, -t TEXT", "--service NAME[,NAME...]", "--description TEXT"):
        assert option in one.out
    assert 'im declare --sev SEV-2 --title "Database slow" --service db' in one.out
    assert empty.out == "no incidents\n"
    assert im.rows().get("incident", 0) == 0


# -- the terminal reaches Slack through the outbox ---------------------------------------------


def slack_env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.base_url, **extra}


def test_terminal_declare_reaches_slack_through_the_outbox(tmp_path: Path, fake_slack: FakeSlack) -> None:
    im = Im(tmp_path, **slack_env(fake_slack, IM_SLACK_CHANNEL=CHANNEL))
    assert im.ok("declare", "--sev", "SEV-3", "--title", "Disk full", "--service", "storage").out.startswith("INC-1 declared")
    jobs = im.jobs()
    assert [(j["destination"], j["kind"], j["status"]) for j in jobs] == [("slack", "timeline_event", "pending")]
    assert fake_slack.calls == [], "the terminal itself does not call Slack"

    harness = AppHarness(make_settings(im.url, fake_slack, IM_SLACK_CHANNEL=CHANNEL), fake_slack)
    try:
        assert fake_slack.wait_for(lambda: len(fake_slack.messages(CHANNEL)) == 1), fake_slack.calls
        harness.wait_idle()
    finally:
        harness.stop()
    root = fake_slack.messages(CHANNEL)[0]
    assert "INC-1" in root.text and "Disk full" in root.text
    assert [j["status"] for j in im.jobs()] == ["done"]
    assert fake_slack.violations == []


def test_terminal_declare_without_a_slack_channel_is_dead_lettered_visibly(tmp_path: Path, fake_slack: FakeSlack) -> None:
    im = Im(tmp_path, **slack_env(fake_slack))  # Slack configured, IM_SLACK_CHANNEL not set
    declared = im("declare", "--sev", "SEV-3", "--title", "Disk full", "--service", "storage")
    assert declared.code == 0 and "INC-1 declared" in declared.out
    assert "warning: Slack is configured but IM_SLACK_CHANNEL is not set" in declared.err  # said at once
    assert [j["status"] for j in im.jobs()] == ["pending"]

    harness = AppHarness(make_settings(im.url, fake_slack), fake_slack)
    try:
        harness.wait_idle()
    finally:
        harness.stop()
    (job,) = im.jobs()
    assert job["status"] == "dead" and job["attempts"] == 1
    assert "IM_SLACK_CHANNEL" in job["last_error"]
    assert fake_slack.calls_to("chat.postMessage") == []

    status, detail = im.many(("status",), ("status", "-i", "INC-1"))
    assert status.code == 0 and detail.code == 0, f"{status}\n{detail}"
    assert "Delivery problems (dead-lettered):" in status.out
    problem = next(line for line in status.out.splitlines() if line.strip().startswith("!"))
    assert "slack" in problem and "IM_SLACK_CHANNEL" in problem, status.out
    assert "! delivery:" in detail.out and "IM_SLACK_CHANNEL" in detail.out, str(detail)
