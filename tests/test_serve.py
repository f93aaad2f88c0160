"""`im serve` as a real process: health, the Slack endpoint with and without credentials, a clean stop,
and a process killed in the middle of deliveries (its successor takes its jobs at once; each is delivered once)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from freezegun import freeze_time
from sqlmodel import select

import bot
from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob
from bot.slack.delivery import SlackDelivery, make_client
from bot.wiring import build
from bot.workers import Dispatcher
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, make_settings

REPO = Path(__file__).resolve().parents[1]
CHANNEL = "C0INCIDENT"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Server:
    """`im serve` in its own process, on a free port, with a clean environment."""

    def __init__(self, tmp_path: Path, name: str = "serve", **extra_env: str) -> None:
        self.db = tmp_path / "im.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IM_", "PAGERDUTY_"))}
        env |= {
            "IM_DATABASE_URL": f"sqlite:///{self.db}",
            "IM_HOST": "127.0.0.1",
            "IM_PORT": str(self.port),
            "PYTHONPATH": str(REPO),
            **extra_env,
        }
        self.out_path, self.err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.main", "serve"],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        wait_until(self._up, 20, f"`im serve` to answer /healthz\n{self.stderr}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"`im serve` exited with {self.proc.returncode}\n--- stderr\n{self.stderr}")
        try:
            return self.http.get("/healthz").status_code in (200, 503)
        except httpx.TransportError:
            return False

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"`im serve` did not stop within {timeout}s of signal {sig}\n{self.stderr}") from None
        return self.proc.returncode


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:  # whatever a failing test left running
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def slack_env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.base_url, **extra}


def jobs(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select * from outbox_job order by id")]


def test_serve_without_slack_credentials(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)
    servers.append(server)

    health = server.http.get("/healthz")
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    body = health.json()
    assert body["status"] == "ok" and body["version"] == bot.__version__
    assert body["database"] == {"status": "ok", "backend": "sqlite"}
    assert body["slack"]["configured"] is False
    assert body["slack"]["missing"] == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)"]

    events = server.http.post(
        "/slack/events",
        content=sr.slash_command("declare --sev 1 -t x -s db"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert events.status_code == 503
    assert events.json() == {"error": "Slack is not configured on this server"}

    code = server.stop(signal.SIGTERM)  # what systemd / docker stop send
    assert code in (0, -signal.SIGTERM), f"exit {code}\n{server.stderr}"
    err = server.stderr
    assert "Traceback" not in err, err
    said = [line for line in err.splitlines() if "SLACK_BOT_TOKEN" in line]
    assert len(said) == 1, err
    assert "Slack is not configured" in said[0] and "SLACK_SIGNING_SECRET" in said[0] and "503" in said[0]
    assert server.stdout in ("", "stopped\n")
    with sqlite3.connect(server.db) as conn:  # it migrated the database it was given, and declared nothing
        assert conn.execute("select count(*) from incident").fetchone() == (0,)


def test_serve_with_slack_declares_from_a_signed_slash_command(
    tmp_path: Path, servers: list[Server], fake_slack: FakeSlack
) -> None:
    server = Server(tmp_path, **slack_env(fake_slack))
    servers.append(server)

    slack = server.http.get("/healthz").json()["slack"]
    assert slack == {"configured": True, "mode": "http", "missing": []}

    with sr.SlackClient(server.url, SIGNING_SECRET) as client:
        forged = client.post(sr.slash_command("declare --sev SEV-3 -t forged -s web"), signature="v0=" + "0" * 64)
        assert forged.status_code == 401
        answer = client.post(
            sr.slash_command('declare --sev SEV-3 --title "Disk full" --service storage', response_url=fake_slack.response_url())
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["response_type"] == "ephemeral" and "INC-1 declared" in answer.json()["text"]

    # No IM_SLACK_CHANNEL: the root goes to the channel the command was typed in.
    assert fake_slack.wait_for(lambda: len(fake_slack.messages(CHANNEL)) == 1), fake_slack.calls
    root = fake_slack.messages(CHANNEL)[0]
    assert "INC-1" in root.text and "Disk full" in root.text
    wait_until(lambda: [j["status"] for j in jobs(server.db)] == ["done"], 10, "the job to be recorded done")

    assert server.stop(signal.SIGINT) == 0, server.stderr  # Ctrl-C in a terminal
    assert server.stdout == "stopped\n"
    assert "Traceback" not in server.stderr and "not configured" not in server.stderr, server.stderr
    with sqlite3.connect(server.db) as conn:
        assert conn.execute("select id, title from incident").fetchall() == [(1, "Disk full")]
    assert fake_slack.violations == []


def test_killed_server_restarted_delivers_every_pending_effect_once_within_15s(
    tmp_path: Path, servers: list[Server], fake_slack: FakeSlack
) -> None:
    """SIGKILL while jobs are claimed; restart. The new process finds its predecessor's pid gone and takes
    the jobs it held at once (their leases still run), and the ones queued behind them; each effect once."""
    env = slack_env(fake_slack, IM_SLACK_CHANNEL=CHANNEL, IM_WORKERS="2")
    first = Server(tmp_path, "first", **env)
    servers.append(first)
    with sr.SlackClient(first.url, SIGNING_SECRET) as client:
        assert client.post(sr.slash_command("help")).status_code == 200  # Bolt's one-off auth.test, at full speed
        fake_slack.response_delay = 3  # from now on every Slack call hangs long enough to kill the workers in it
        for user, title in (("U0LAN0Z89", "Disk full"), ("U0BOB0001", "Queue backlog")):
            answer = client.post(sr.slash_command(f'declare --sev SEV-3 --title "{title}" --service storage', user_id=user))
            assert answer.status_code == 200 and "declared" in answer.json()["text"], answer.text
        note = client.post(sr.slash_command("note --incident INC-1 primary restarted"))
        assert note.status_code == 200, note.text

    # Both workers are inside a Slack call (users.info: each job learns its declarer first).
    wait_until(lambda: len([j for j in jobs(first.db) if j["status"] == JobStatus.RUNNING]) == 2, 10, "two claimed jobs")
    first.proc.kill()
    first.proc.wait(10)
    assert first.proc.returncode == -signal.SIGKILL
    held = [j for j in jobs(first.db) if j["status"] == JobStatus.RUNNING]
    assert len(held) == 2 and all(j["claim_token"] and j["claimed_by"] for j in held)
    assert all(datetime.fromisoformat(j["available_at"]).replace(tzinfo=UTC) > utcnow() for j in held), "their leases hold"
    assert [j["status"] for j in jobs(first.db)].count("pending") == 1  # the note, behind INC-1's root
    fake_slack.response_delay = 0

    restarted = time.monotonic()
    second = Server(tmp_path, "second", **env)
    servers.append(second)
    wait_until(lambda: [j["status"] for j in jobs(second.db)] == ["done"] * 3, 15, "the restarted server to deliver every job")
    assert time.monotonic() - restarted < 15
    assert second.stop() == 0, second.stderr

    assert all(j["attempts"] == (2 if j["id"] in {h["id"] for h in held} else 1) for j in jobs(second.db)), jobs(second.db)
    roots = fake_slack.messages(CHANNEL)
    assert len(roots) == 2 and len([c for c in fake_slack.calls_to("chat.postMessage") if not c.args.get("thread_ts")]) == 2
    (inc1,) = [r for r in roots if "INC-1" in r.text]
    assert [r for r in roots if "INC-2" in r.text], roots
    assert len([r for r in fake_slack.replies(CHANNEL, inc1.ts) if "primary restarted" in r.text]) == 1
    with sqlite3.connect(second.db) as conn:  # the first process was found dead; the second stopped cleanly
        rows = conn.execute("select id, stopped_at is not null from worker_process order by id").fetchall()
    assert [stopped for _, stopped in rows] == [True, True], rows
    # the killed process's users.info calls were answered to a closed socket; nothing else went wrong
    assert [v for v in fake_slack.violations if "users.info: BrokenPipeError" not in v] == []


def test_expired_lease_is_claimed_again_and_delivered_once(tmp_path: Path, fake_slack: FakeSlack) -> None:
    """In-process version with a frozen clock: a 'dead worker' claims the job and never finishes it."""
    settings = make_settings(f"sqlite:///{tmp_path / 'im.db'}", fake_slack, IM_SLACK_CHANNEL=CHANNEL)
    im = build(settings)
    try:
        im.incidents.declare(title="Disk full", severity="SEV-3", services=["storage"], actor=Actor(Origin.CLI, "carol"))
        with im.store.transaction() as session:
            (dead,) = outbox.claim(session, limit=10)  # the worker that died holding the job
        assert dead.status == JobStatus.RUNNING and dead.attempts == 1

        def dispatcher() -> Dispatcher:
            return Dispatcher(im.store, {"slack": SlackDelivery(im, make_client(settings))})

        # While the lease holds, nobody else takes the job: not now, not a minute later.
        assert dispatcher().drain() == 0
        with freeze_time(utcnow() + outbox.LEASE - timedelta(seconds=5), tick=True):
            assert dispatcher().drain() == 0
        assert fake_slack.calls == []

        with freeze_time(utcnow() + outbox.LEASE + timedelta(seconds=1), tick=True):
            assert dispatcher().drain() == 1
            assert dispatcher().drain() == 0  # done: a second dispatcher finds nothing to do

            with im.store.read() as session:
                (job,) = session.exec(select(OutboxJob)).all()
            assert (job.status, job.attempts, job.last_error) == (JobStatus.DONE, 2, None)
            # The dead worker comes back and reports: its claim is gone, so nothing is overwritten.
            with im.store.transaction() as session:
                assert outbox.complete(session, dead) is False
                assert outbox.retry_later(session, dead, delay=1, error="late") is False

        roots = fake_slack.messages(CHANNEL)
        assert len(roots) == 1 and "INC-1" in roots[0].text
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
        assert fake_slack.violations == []
    finally:
        im.store.dispose()


def test_socket_mode_without_signing_secret_refuses_http_slack_requests(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Nothing could verify a request on /slack/events then: none is taken, signed or not."""
    from tests.fakes import slack_requests
    from tests.harness import AppHarness, make_settings

    settings = make_settings(
        f"sqlite:///{tmp_path}/im.db", None, SLACK_BOT_TOKEN="xoxb-test-token", SLACK_APP_TOKEN="xapp-test-token"
    )
    app = AppHarness(settings, None)
    try:
        answer = app.slack.post(slack_requests.slash_command("declare --sev SEV-3 --title forged --service x"))
        assert answer.status_code == 404
        assert app.im.incidents.search() == []
    finally:
        app.stop()
