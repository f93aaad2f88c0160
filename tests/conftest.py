"""Shared fixtures: databases (SQLite always, PostgreSQL when IM_TEST_POSTGRES_URL is set), the fake
Slack Web API, and the real app served over HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import freezegun
import pytest
from sqlalchemy import create_engine, text

if TYPE_CHECKING:  # the fakes and the served app are imported by the fixtures that use them, so the fast
    # unit tier (tests/unit) does not pay for Starlette, Bolt and the fakes at collection
    from tests.fakes.pagerduty_api import FakePagerDuty
    from tests.fakes.slack_api import FakeSlack
    from tests.harness import AppHarness

POSTGRES_URL = os.environ.get("IM_TEST_POSTGRES_URL")

# Tests freeze the clock of the code under test (timers, retries, SLAs), not the machinery that serves
# it: the served app's event loop and the HTTP clients and servers keep real time, or a frozen tick
# would leave the loop waiting for a monotonic time that real time reaches hours later.
freezegun.configure(
    extend_ignore_list=[
        "asyncio",
        "uvicorn",
        "anyio",
        "starlette",
        "h11",
        "httpcore",
        "httpx",
        "socketserver",
        "selectors",
        "http.server",
        "concurrent.futures",
        "urllib3",
        "urllib.request",
    ]
)
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's Slack/PagerDuty variables or .env (Bolt switches to OAuth when
    SLACK_CLIENT_ID is set)."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "IM_", "PAGERDUTY_")) and name != "IM_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    """A database of our own for this test session, so nothing else on the server is touched."""
    if not POSTGRES_URL:
        yield None
        return
    name = f"im_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_database: str | None) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    from integrations.pagerduty.registry import changed as connectors_changed

    connectors_changed()  # a fresh database: nothing cached about the last one's connectors
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'im.db'}"
    if postgres_database is None:
        pytest.skip("PostgreSQL run skipped: set IM_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    _reset_postgres(postgres_database)
    return postgres_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'im.db'}"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    from tests.fakes.slack_api import FakeSlack
    from tests.harness import BOT_TOKEN

    fake = FakeSlack(bot_token=BOT_TOKEN)
    fake.start()
    fake.add_channel("C0INCIDENT", "incidents", members=["U0LAN0Z89"])
    fake.add_user("U0LAN0Z89", "alice", email="alice@example.com", real_name="Alice Doe")
    fake.add_user("U0BOB0001", "bob", email="bob@example.com", real_name="Bob Roe")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def app(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    from tests.harness import AppHarness, make_settings

    harness = AppHarness(make_settings(database_url, fake_slack), fake_slack)
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    """A fake PagerDuty account with users, escalation policies and services (tests/pd_support.py)."""
    from tests.pd_support import pagerduty_account

    fake = pagerduty_account()
    yield fake
    fake.stop()
