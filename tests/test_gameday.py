"""Game days end to end: `im gameday` in a terminal against the served app (its workers and webhook
endpoint), and `/im gameday` in Slack answered at once with the hops posted in the drill's thread; the
fake PagerDuty sends its webhooks back over HTTP. A failing hop (PagerDuty down, no `im serve`) reports
FAIL, names the hop and still cleans up. Drills are marked everywhere and left out of reports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlmodel import col, select

from bot.domain.models import Incident, JobStatus, OutboxJob
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET
from tests.pd_support import SECRET_KEY, PagerDutyWorld, Terminal, connector_config
from tests.test_serve import wait_until

CHANNEL = "C0INCIDENT"
HOPS = (
    "declared in im",
    "Slack root message posted",
    "PagerDuty incident created",
    "webhook back from PagerDuty",
    "acknowledged (im, then PagerDuty)",
    "resolved (im, then PagerDuty)",
)


@contextlib.contextmanager
def pagerduty_answers(pd: FakePagerDuty) -> Iterator[None]:
    """As PagerDuty does: each incident created is announced to the webhook subscriptions (signed, over HTTP)."""
    stop = threading.Event()

    def run() -> None:
        told: set[str] = set()
        while not stop.is_set():
            with contextlib.suppress(RuntimeError):  # the fake's dict changed while we looked: look again
                for incident_id in [i for i in list(pd.incidents) if i not in told]:
                    told.add(incident_id)
                    pd.notify_subscriptions("incident.triggered", incident_id)
            stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _hop_line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if name in line)


def _incident(world: PagerDutyWorld, number: int = 1) -> Incident:
    return world.im.incidents.get(number)


def test_a_drill_passes_through_the_whole_loop_from_a_terminal(world: PagerDutyWorld) -> None:
    with pagerduty_answers(world.pd):
        ran = world.terminal("gameday", "--service", "db", "--connector", "prod", "--timeout", "15s")
    assert ran.code == 0, ran.out + ran.err
    for name in HOPS:
        line = _hop_line(ran.out, name)
        assert line.strip().startswith("PASS") and "s" in line, line
    assert ran.out.rstrip().endswith("PASS"), ran.out
    assert "PagerDuty #" in _hop_line(ran.out, "PagerDuty incident created")
    assert "incident.triggered received and applied" in _hop_line(ran.out, "webhook back")

    incident = _incident(world)
    assert incident.drill and incident.title == "[DRILL] Game day: db via prod" and incident.status == "resolved"
    [remote] = world.pd.incidents.values()
    assert remote.status == "resolved" and remote.title.startswith("[DRILL]") and remote.service_id == "PDAT001"
    world.app.wait_idle()
    root = world.slack.messages(CHANNEL)[0]
    assert "[DRILL]" in root.text and any(b.get("block_id") == "drill" for b in root.blocks or [])
    replies = [r.text for r in world.slack.replies(CHANNEL, root.ts)]
    result = next(text for text in replies if "Game day PASS" in text)
    assert all(name.replace("(", "").split()[0] in result for name in HOPS)
    assert world.pd.violations == [] and world.slack.violations == []

    # drills are left out of reports unless asked for
    report = json.loads(world.terminal.ok("report", "--since", "1d", "--format", "json"))
    assert report["total"] == 0, report
    with_drills = json.loads(world.terminal.ok("report", "--since", "1d", "--format", "json", "--include-drills"))
    assert with_drills["total"] == 1


def test_each_hop_is_printed_as_it_happens(world: PagerDutyWorld, tmp_path: Path) -> None:
    """`im gameday` in its own process, its standard output a pipe read line by line: the hops up to the
    PagerDuty incident arrive while the drill still waits for the webhook, which the fake sends only once
    they have been read, so those lines cannot have come at the end; then the rest, PASS last."""
    env = {**os.environ, **world.terminal.env}
    argv = [sys.executable, "-m", "bot.main", "gameday", "--service", "db", "--connector", "prod", "--timeout", "20s"]
    proc = subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        early = []
        for line in proc.stdout:
            early.append(line.rstrip("\n"))
            if "PagerDuty incident created" in line:
                break
        assert proc.poll() is None, "still running: the webhook hop waits for PagerDuty's answer"
        assert early[0].startswith("Game day INC-1 (db via prod), 20s per hop:"), early
        assert [line.split("  ")[2].strip() for line in early[1:]] == list(HOPS[:3]), early
        assert all(line.strip().startswith("PASS") and re.search(r"\+\d+\.\ds +\(\d+\.\ds\)", line) for line in early[1:]), early
        [remote_id] = world.pd.incidents
        world.pd.notify_subscriptions("incident.triggered", remote_id)  # PagerDuty answers only now
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (early, rest, err)
    later = rest.splitlines()
    assert [_hop_line(rest, name).strip()[:4] for name in HOPS[3:]] == ["PASS"] * 3, rest
    assert later[-1] == "PASS" and not any(name in rest for name in HOPS[:3]), "each hop printed once"


def _pagerduty_job_running(world: PagerDutyWorld) -> bool:
    with world.app.im.store.read() as session:
        statuses = session.exec(select(OutboxJob.status).where(col(OutboxJob.destination).startswith("pagerduty:"))).all()
    return JobStatus.RUNNING in statuses


def test_pagerduty_down_fails_the_hop_and_still_cleans_up(world: PagerDutyWorld) -> None:
    world.pd.down = True
    ran = world.terminal("gameday", "--service", "db", "--timeout", "2s")
    assert ran.code == 1, ran.out + ran.err
    failed = _hop_line(ran.out, "PagerDuty incident created")
    assert failed.strip().startswith("FAIL") and "timed out after 2s" in failed, failed
    assert "pagerduty:prod create" in failed and "503" in failed, "says which job and why"
    assert _hop_line(ran.out, "Slack root message posted").strip().startswith("PASS")
    assert all(_hop_line(ran.out, name).strip().startswith("skip") for name in HOPS[3:])
    assert "stopped at 'PagerDuty incident created'" in ran.out and "cleanup: INC-1 resolved in im" in ran.out
    assert _incident(world).status == "resolved"

    # A try of the create that began before the cleanup may still be retrying inside the client: it read
    # the drill as running. PagerDuty comes back once no try is under way: the next one reads it over.
    wait_until(lambda: not _pagerduty_job_running(world), 30, "no PagerDuty create try under way")
    world.pd.down = False  # PagerDuty back: the queued create finds the drill over and pages nobody
    world.app.wait_idle(timeout=30)
    assert world.pd.incidents == {}
    root = world.slack.messages(CHANNEL)[0]
    assert any("Game day FAIL" in r.text for r in world.slack.replies(CHANNEL, root.ts))


def test_without_im_serve_the_first_hop_that_needs_it_says_so(
    sqlite_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    env = {
        "IM_DATABASE_URL": sqlite_url,
        "IM_SECRET_KEY": SECRET_KEY,
        "IM_SLACK_CHANNEL": CHANNEL,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.base_url,
    }
    im = Terminal(monkeypatch, capsys, env)
    im.ok("connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd)))
    started = time.monotonic()
    ran = im("gameday", "--service", "db")
    assert ran.code == 1
    assert time.monotonic() - started < 10, "no waiting out the 60 s timeout: nothing would ever come"
    stuck = _hop_line(ran.out, "Slack root message posted")
    assert stuck.strip().startswith("FAIL") and "no im serve is running" in stuck and "slack job(s) wait" in stuck, stuck
    assert "cleanup: INC-1 resolved in im" in ran.out
    assert fake_slack.calls_to("chat.postMessage") == [] and pd.incidents == {}


def test_preflight_refusals_write_nothing(world: PagerDutyWorld) -> None:
    for argv, said in (
        (("--connector", "nope"), "no PagerDuty connector 'nope'"),
        (("--service", "bad name"), "is not a service name"),
        (("--timeout", "soon"), "is not a duration"),
    ):
        ran = world.terminal("gameday", *argv)
        assert ran.code == 2 and said in ran.err, ran
    assert world.im.incidents.search() == []


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_from_slack_answered_at_once_and_the_hops_posted_in_the_thread(world: PagerDutyWorld) -> None:
    with pagerduty_answers(world.pd):
        started = time.monotonic()
        answer = world.app.command("gameday --service db --timeout 15s").json()
        assert time.monotonic() - started < 2.5
        assert "Game day started: INC-1" in answer["text"], answer

        def posted() -> bool:
            roots = world.slack.messages(CHANNEL)
            return bool(roots) and any("Game day" in r.text for r in world.slack.replies(CHANNEL, roots[0].ts))

        _wait_for(posted)
    root = world.slack.messages(CHANNEL)[0]
    result = next(r.text for r in world.slack.replies(CHANNEL, root.ts) if "Game day" in r.text)
    assert "Game day PASS" in result, result
    assert _incident(world).status == "resolved"
    assert world.slack.violations == [] and world.pd.violations == []


def test_runbook_and_gameday_are_in_help(sqlite_url: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    shown = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url}).ok("help")
    assert "list|remove|set" in shown and "gameday" in shown
