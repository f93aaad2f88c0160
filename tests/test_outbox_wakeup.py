"""Workers are woken by the commit that writes jobs, not by polling: this process's at once, and on
PostgreSQL every other replica's through LISTEN/NOTIFY. The poll interval is an hour here, so only a
wake-up can deliver within the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bot.app import Im
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.slack.delivery import SlackDelivery, make_client
from bot.wiring import build
from bot.workers import Dispatcher, WorkerPool
from tests.fakes.slack_api import FakeSlack
from tests.harness import make_settings
from tests.test_outbox import wait

CLI = Actor(Origin.CLI, "carol", "carol")
HOUR = 3600.0


@pytest.fixture
def replicas(database_url: str, fake_slack: FakeSlack) -> Iterator[tuple[Im, Im]]:
    """Two processes' worth of app on one database: each its own engine, store and wake event."""
    settings = make_settings(database_url, fake_slack, IM_SLACK_CHANNEL="C0INCIDENT")
    a, b = build(settings), build(settings, migrate=False)
    yield a, b
    a.store.dispose()
    b.store.dispose()


def pool_for(im: Im) -> WorkerPool:
    dispatcher = Dispatcher(im.store, {"slack": SlackDelivery(im, make_client(im.settings))})
    return WorkerPool(dispatcher, im.outbox_ready, threads=1, poll=HOUR)


def declare(im: Im, title: str) -> None:
    im.incidents.declare(title=title, severity="SEV-4", services=["db"], actor=CLI)


def posted(fake: FakeSlack, title: str) -> bool:
    return any(title in m.text for m in fake.messages("C0INCIDENT"))


def test_a_commit_that_writes_jobs_wakes_this_process_workers(replicas: tuple[Im, Im], fake_slack: FakeSlack) -> None:
    im, _ = replicas
    pool = pool_for(im)
    pool.start()
    try:
        declare(im, "First")
        wait(lambda: posted(fake_slack, "First"), "the first root message")
        declare(im, "Second")  # the workers are idle now, waiting an hour unless woken
        wait(lambda: posted(fake_slack, "Second"), "the second root message, without a poll")
    finally:
        pool.stop()


def test_a_commit_with_no_jobs_wakes_nobody(replicas: tuple[Im, Im]) -> None:
    im, _ = replicas
    im.outbox_ready.clear()
    with im.store.transaction() as session:
        session.execute(text("select 1"))
    assert not im.outbox_ready.is_set()


def postgresql_only(im: Im) -> None:
    if im.store.is_sqlite:
        pytest.skip("one SQLite file has one writing process here: replicas are a PostgreSQL matter")


def test_postgresql_a_job_written_by_replica_a_is_delivered_by_replica_b_at_once(
    replicas: tuple[Im, Im], fake_slack: FakeSlack
) -> None:
    a, b = replicas
    postgresql_only(a)
    pool = pool_for(b)  # only B has workers; A writes, as a terminal `im` or a replica's ack would
    pool.start()
    try:
        assert pool.listener is not None and pool.listener.listening.is_set()
        declare(a, "First")
        wait(lambda: posted(fake_slack, "First"), "B to deliver A's first job")
        declare(a, "Second")  # B is idle now: only A's NOTIFY can wake it within the hour
        wait(lambda: posted(fake_slack, "Second"), "B to deliver A's second job, without a poll")
    finally:
        pool.stop()


def test_postgresql_the_listener_reconnects_after_its_connection_is_killed(
    replicas: tuple[Im, Im], fake_slack: FakeSlack
) -> None:
    a, b = replicas
    postgresql_only(a)
    pool = pool_for(b)
    assert pool.listener is not None
    pool.listener.retry = 0.05
    pool.start()
    try:
        declare(a, "Before")
        wait(lambda: posted(fake_slack, "Before"), "B to deliver the first job")
        killed = listener_pids(a)
        assert len(killed) == 1, "the listener's session was found"
        with a.store.transaction() as session:  # the server drops the LISTEN session, as a failover would
            session.execute(text("select pg_terminate_backend(:pid)"), {"pid": killed[0]})
        wait(lambda: listener_pids(a) not in ([], killed), "the listener to listen again on a new session")
        declare(a, "After")
        wait(lambda: posted(fake_slack, "After"), "B to deliver a job written after the reconnection")
    finally:
        pool.stop()


def listener_pids(im: Im) -> list[int]:
    with im.store.read() as session:
        rows = session.execute(
            text(
                "select pid from pg_stat_activity where datname = current_database() "
                "and query = 'LISTEN im_outbox' and pid <> pg_backend_pid()"
            )
        ).all()
    return [row[0] for row in rows]
