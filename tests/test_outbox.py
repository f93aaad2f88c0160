"""The outbox and its workers, on SQLite and PostgreSQL: order, retries, dead letters, claims."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.app import Im
from bot.domain import outbox
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob
from bot.slack.delivery import SlackDelivery, make_client
from bot.wiring import build
from bot.workers import Dispatcher, RetryPolicy
from tests.fakes.slack_api import FakeSlack
from tests.harness import make_settings

CLI = Actor(Origin.CLI, "carol", "carol")


@pytest.fixture
def im(database_url: str, fake_slack: FakeSlack) -> Iterator[Im]:
    app = build(make_settings(database_url, fake_slack, IM_SLACK_CHANNEL="C0INCIDENT"))
    yield app
    app.store.dispose()


def dispatcher(im: Im, fake: FakeSlack, **policy: object) -> Dispatcher:
    return Dispatcher(im.store, {"slack": SlackDelivery(im, make_client(im.settings))}, policy=RetryPolicy(**policy))  # type: ignore[arg-type]


def jobs(im: Im) -> list[OutboxJob]:
    with im.store.read() as session:
        return list(session.exec(select(OutboxJob).order_by(OutboxJob.id)))


def test_change_and_jobs_commit_together_and_deliver_in_order(im: Im, fake_slack: FakeSlack) -> None:
    incident = im.incidents.declare(title="Disk full", severity="SEV-3", services=["db"], actor=CLI)
    assert incident is not None
    im.incidents.add_note(incident.id, "first", actor=CLI)
    im.incidents.add_note(incident.id, "second", actor=CLI)
    assert [j.status for j in jobs(im)] == ["pending"] * 3
    with im.store.transaction() as session:
        claimed = outbox.claim(session, limit=10)
    assert [j.id for j in claimed] == [1], "later jobs of one incident wait for the earlier one"
    with im.store.transaction() as session:
        outbox.complete(session, claimed[0])
    d = dispatcher(im, fake_slack)
    assert d.drain() == 2
    root = fake_slack.messages("C0INCIDENT")[0]
    assert [r.text.rsplit(": ", 1)[-1] for r in fake_slack.replies("C0INCIDENT", root.ts)] == ["first", "second"]
    assert fake_slack.violations == []


def test_rate_limit_honours_retry_after(im: Im, fake_slack: FakeSlack) -> None:
    with freeze_time("2026-03-01 12:00:00") as clock:
        im.incidents.declare(title="Queue backlog", severity="SEV-3", services=["queue"], actor=CLI)
        fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)
        d = dispatcher(im, fake_slack)
        assert d.run_once() == 1
        [job] = jobs(im)
        assert job.status == JobStatus.PENDING and "rate-limited" in (job.last_error or "")
        clock.tick(29)
        assert d.run_once() == 0, "not before Retry-After"
        clock.tick(3)
        assert d.run_once() == 1
        assert jobs(im)[0].status == JobStatus.DONE
    assert len(fake_slack.messages("C0INCIDENT")) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


def test_server_errors_back_off_then_dead_letter_visibly(im: Im, fake_slack: FakeSlack) -> None:
    with freeze_time("2026-03-01 12:00:00") as clock:
        incident = im.incidents.declare(title="Cache misses", severity="SEV-4", services=["cache"], actor=CLI)
        fake_slack.fail_next("chat.postMessage", status=503, times=100)
        d = dispatcher(im, fake_slack, max_attempts=4, base_delay=2.0)
        waits = []
        for _ in range(4):
            assert d.run_once() == 1
            job = jobs(im)[0]
            if job.status == JobStatus.DEAD:
                break
            waits.append((job.available_at - clock.time_to_freeze.replace(tzinfo=job.available_at.tzinfo)).total_seconds())
            clock.tick(600)
        assert jobs(im)[0].status == JobStatus.DEAD
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2], waits  # exponential
    view = im.describe(im.incidents.get(incident.id))
    assert view.delivery_problems and "gave up after 4 attempts" in view.delivery_problems[0]
    assert "503" in view.delivery_problems[0]


def test_permanent_slack_error_dead_letters_at_once(im: Im, fake_slack: FakeSlack) -> None:
    im.incidents.declare(title="x", severity="SEV-4", services=["a"], actor=CLI)
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    dispatcher(im, fake_slack).drain()
    [job] = jobs(im)
    assert job.status == JobStatus.DEAD and "channel_not_found" in (job.last_error or "")


def test_expired_lease_is_claimed_again_and_delivered_once(im: Im, fake_slack: FakeSlack) -> None:
    with freeze_time("2026-03-01 12:00:00") as clock:
        im.incidents.declare(title="Worker died", severity="SEV-4", services=["a"], actor=CLI)
        with im.store.transaction() as session:
            assert len(outbox.claim(session, limit=10)) == 1  # a worker claims, then the process dies
        d = dispatcher(im, fake_slack)
        assert d.run_once() == 0, "the lease still holds"
        clock.tick(outbox.LEASE.total_seconds() + 1)
        assert d.run_once() == 1
        assert d.run_once() == 0
    assert jobs(im)[0].status == JobStatus.DONE
    assert len(fake_slack.messages("C0INCIDENT")) == 1


def test_concurrent_claims_never_share_a_job(im: Im) -> None:
    for n in range(20):
        im.incidents.declare(title=f"i{n}", severity="SEV-4", services=["a"], actor=CLI)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        with im.store.transaction() as session:
            claimed.append([j.id for j in outbox.claim(session, limit=3)])  # type: ignore[misc]

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for ids in claimed for i in ids]
    assert len(flat) == 12 and len(set(flat)) == 12


def test_a_retried_job_does_not_post_its_reply_twice(im: Im, fake_slack: FakeSlack) -> None:
    incident = im.incidents.declare(title="Cert expiry", severity="SEV-3", services=["edge"], actor=CLI)
    d = dispatcher(im, fake_slack)
    d.drain()
    im.incidents.transition(incident.id, "acknowledge", actor=CLI)  # type: ignore[union-attr]
    fake_slack.fail_next("chat.update", status=429, retry_after=0)  # the reply is posted, then the update fails
    with freeze_time(utcnow_plus(0)) as clock:
        d.run_once()
        clock.tick(5)
        d.drain()
    root = fake_slack.messages("C0INCIDENT")[0]
    acks = [r for r in fake_slack.replies("C0INCIDENT", root.ts) if "Acknowledged" in r.text]
    assert len(acks) == 1
    assert len(fake_slack.calls_to("chat.update")) == 2 and root.edited == 1


def utcnow_plus(seconds: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from bot.clock import utcnow

    return utcnow() + timedelta(seconds=seconds + 1)
