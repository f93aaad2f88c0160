"""`/livez` and `/readyz` over real HTTP: ready when everything is, and for each broken part a 503 whose
body names it, while `/livez` stays 200 (a database outage never gets a healthy process restarted)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.clock import utcnow
from bot.domain import outbox
from bot.server import Runtime, create_app
from bot.wiring import build
from tests.conftest import POSTGRES_URL
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, ServedApp, make_settings


def probe(url: str, path: str) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{url}{path}", timeout=10)
    return answer.status_code, answer.json()


@pytest.fixture
def served(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    app = AppHarness(make_settings(database_url, fake_slack), fake_slack)
    yield app
    app.stop()


def test_ready_when_everything_is(served: AppHarness) -> None:
    assert probe(served.url, "/livez") == (200, {"status": "alive"})
    status, body = probe(served.url, "/readyz")
    assert status == 200 and body["status"] == "ready" and body["failed"] == []
    checks = body["checks"]
    assert {name for name, check in checks.items() if check["ok"]} == {"database", "migrations", "workers", "scheduler", "outbox"}
    assert checks["migrations"]["current"] == checks["migrations"]["head"] != []
    assert checks["workers"] == {"ok": True, "alive": 3, "threads": 3}, "two workers and their heartbeat"
    assert httpx.get(f"{served.url}/healthz").json()["status"] == "ok", "/healthz as before"


def test_stopped_workers_make_it_not_ready(served: AppHarness) -> None:
    served.runtime.workers.stop()
    status, body = probe(served.url, "/readyz")
    assert status == 503 and body["failed"] == ["workers"]
    assert body["checks"]["workers"]["alive"] == 0 and "not running" in body["checks"]["workers"]["error"]
    assert body["checks"]["outbox"] == {"ok": None, "skipped": "the workers are not running"}
    assert probe(served.url, "/livez")[0] == 200


def test_a_database_behind_the_code_is_not_ready(served: AppHarness) -> None:
    with served.im.store.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    status, body = probe(served.url, "/readyz")
    assert status == 503 and body["failed"] == ["migrations"]
    assert body["checks"]["migrations"]["current"] == ["0003"] and "im db upgrade" in body["checks"]["migrations"]["error"]


def test_a_wedged_outbox_is_not_ready(sqlite_url: str, fake_slack: FakeSlack) -> None:
    """One worker held up by a slow Slack answer; a job claimable for over ten minutes waits behind it."""
    app = AppHarness(make_settings(sqlite_url, fake_slack, IM_WORKERS="1"), fake_slack)
    try:
        fake_slack.inject_faults(seed=1, rate=1.0, kinds=("late",), late_by=4.0, times=1)
        app.command('declare --sev SEV-3 --title "Slow" --service web')
        deadline = time.monotonic() + 5
        while not fake_slack.faults and time.monotonic() < deadline:  # until the one worker waits for the late answer
            time.sleep(0.01)
        assert fake_slack.faults
        with app.im.store.transaction() as session:
            job = outbox.enqueue(session, outbox.JobSpec("nowhere", "test"), None, ordering_key="wedged")
            job.available_at = utcnow() - timedelta(minutes=11)
        status, body = probe(app.url, "/readyz")
        assert status == 503 and body["failed"] == ["outbox"], body
        assert body["checks"]["outbox"]["oldest_due_seconds"] > 600 and "workers stuck" in body["checks"]["outbox"]["error"]
        app.wait_idle(15)  # the answer comes, the worker takes the waiting job
        assert probe(app.url, "/readyz")[0] == 200
    finally:
        app.stop()


def test_a_stopped_scheduler_is_not_ready(sqlite_url: str) -> None:
    im = build(make_settings(sqlite_url))
    runtime = Runtime(im, poll=0.05, scheduler=True)
    served = ServedApp(create_app(im, runtime))
    try:
        status, body = probe(served.url, "/readyz")
        assert status == 200 and body["checks"]["scheduler"] == {"ok": True, "enabled": True}
        runtime.background[0].stop()
        status, body = probe(served.url, "/readyz")
        assert status == 503 and body["failed"] == ["scheduler"]
    finally:
        served.stop()
        im.store.dispose()


def test_a_removed_sqlite_file_fails_readyz_never_livez(sqlite_url: str, fake_slack: FakeSlack, tmp_path: Path) -> None:
    app = AppHarness(make_settings(sqlite_url, fake_slack), fake_slack)
    try:
        assert probe(app.url, "/readyz")[0] == 200
        for name in ("im.db", "im.db-wal", "im.db-shm"):
            if (tmp_path / name).exists():
                os.remove(tmp_path / name)
        status, body = probe(app.url, "/readyz")
        assert status == 503 and "database" in body["failed"] and "is gone" in body["checks"]["database"]["error"]
        assert body["checks"]["migrations"]["skipped"] == "needs the database"
        assert probe(app.url, "/livez") == (200, {"status": "alive"})
    finally:
        app.stop()


@pytest.mark.skipif(not POSTGRES_URL, reason="set IM_TEST_POSTGRES_URL for the PostgreSQL outage")
def test_a_dropped_postgresql_database_fails_readyz_never_livez(fake_slack: FakeSlack) -> None:
    assert POSTGRES_URL is not None
    name = f"im_probe_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    app = AppHarness(make_settings(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}", fake_slack), fake_slack)
    try:
        assert probe(app.url, "/readyz")[0] == 200
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        status, body = probe(app.url, "/readyz")
        assert status == 503 and "database" in body["failed"] and body["checks"]["database"]["error"].startswith("error:")
        assert probe(app.url, "/livez") == (200, {"status": "alive"})
        metrics = httpx.get(f"{app.url}/metrics").text
        assert "im_database_up 0.0" in metrics, "a scrape still answers, saying the database is away"
    finally:
        app.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
