"""The outbox and its workers, on SQLite and PostgreSQL: order, retries, dead letters, claims."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from freezegun import freeze_time
from sqlmodel import select

from bot.app import Im
from bot.clock import utcnow
from bot.domain import outbox
from bot.domain.incidents import Actor
from bot.domain.models import JobStatus, Origin, OutboxJob, WorkerProcess
from bot.domain.outbox import DEAD_AFTER, HEARTBEAT, LEASE
from bot.slack.delivery import SlackDelivery, make_client
from bot.wiring import build
from bot.workers import Dispatcher, JobKind, RetryLater, RetryPolicy, WorkerPool, kind_table
from tests.fakes.slack_api import FakeSlack
from tests.harness import make_settings

CLI = Actor(Origin.CLI, "carol", "carol")


@pytest.fixture
def im(database_url: str, fake_slack: FakeSlack) -> Iterator[Im]:
    app = build(make_settings(database_url, fake_slack, IM_SLACK_CHANNEL="C0INCIDENT"))
    yield app
    app.store.dispose()


def dispatcher(im: Im, fake: FakeSlack, process_id: int | None = None, **policy: object) -> Dispatcher:
    deliveries = {"slack": SlackDelivery(im, make_client(im.settings))}
    return Dispatcher(im.store, deliveries, policy=RetryPolicy(**policy), process_id=process_id)  # type: ignore[arg-type]


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
    """A 5xx is transient: it spends the rate-limited budget (here 4 tries), never the ordinary one."""
    with freeze_time("2026-03-01 12:00:00") as clock:
        incident = im.incidents.declare(title="Cache misses", severity="SEV-4", services=["cache"], actor=CLI)
        fake_slack.fail_next("chat.postMessage", status=503, times=100)
        d = dispatcher(im, fake_slack, max_attempts=2, max_rate_limited_attempts=4, base_delay=2.0)
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


def test_a_holder_never_claims_its_own_job_again_however_late_its_heartbeat(im: Im) -> None:
    with freeze_time("2026-03-01 12:00:00") as clock:
        im.incidents.declare(title="Slow delivery", severity="SEV-4", services=["a"], actor=CLI)
        with im.store.transaction() as session:
            (held,) = outbox.claim(session, limit=10)
        assert held.claim_token is not None
        clock.tick(outbox.LEASE.total_seconds() + 1)  # the lease looks lapsed: no heartbeat since
        with im.store.transaction() as session:
            assert outbox.claim(session, limit=10, holding=[held.claim_token]) == [], "its holder skips it"
        with im.store.transaction() as session:
            (again,) = outbox.claim(session, limit=10)  # anyone else takes it, as a lapsed lease allows
        assert again.id == held.id and again.attempts == 2


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


# -- job kinds: one declared table per destination ---------------------------------------------


def test_a_kind_its_destination_does_not_declare_is_dead_lettered_with_the_reason(im: Im, fake_slack: FakeSlack) -> None:
    from bot.domain.outbox import JobSpec, enqueue

    with im.store.transaction() as session:
        enqueue(session, JobSpec("slack", "carrier_pigeon", {}), None)
    assert dispatcher(im, fake_slack).drain() == 1
    (job,) = jobs(im)
    assert job.status == JobStatus.DEAD
    known = ", ".join(sorted(SlackDelivery(im, make_client(im.settings)).kinds))
    assert job.last_error == f"'slack' has no job kind 'carrier_pigeon' (it knows: {known})"
    assert "timeline_event" in known
    assert fake_slack.calls == []


def test_a_kind_retries_by_its_own_policy_and_may_give_up_quietly(im: Im) -> None:
    """A kind's policy (here: 3 tries, 3 s apart, then done) wins over the dispatcher's default."""
    from bot.domain.outbox import JobSpec, enqueue

    tries: list[int] = []

    def not_yet(job: OutboxJob) -> None:
        tries.append(job.attempts)
        raise RetryLater("not there yet")

    class Later:
        kinds = kind_table(JobKind("wait", not_yet, RetryPolicy(max_attempts=3, fixed_delay=3.0, give_up_quietly=True)))

    d = Dispatcher(im.store, {"later": Later()})
    with freeze_time("2026-03-01 12:00:00") as clock:
        with im.store.transaction() as session:
            enqueue(session, JobSpec("later", "wait", {}), None)
        for _ in range(2):
            assert d.run_once() == 1
            clock.tick(2.9)
            assert d.run_once() == 0, "3 s apart"
            clock.tick(0.2)
        assert d.run_once() == 1
    (job,) = jobs(im)
    assert tries == [1, 2, 3]
    assert (job.status, job.last_error) == (JobStatus.DONE, "not there yet")


def test_a_wait_for_a_paced_turn_is_not_an_attempt(im: Im) -> None:
    """A job deferred to its rate-limit turn many times over (a long storm) is never dead-lettered for it."""
    from bot.domain.outbox import JobSpec, enqueue

    waits: list[int] = []

    def turn_later(job: OutboxJob) -> None:
        if len(waits) < 12:
            waits.append(job.attempts)
            raise RetryLater("pacing: slack turn", delay=1.0, rate_limited=True, free=True)

    class Paced:
        kinds = kind_table(JobKind("post", turn_later, RetryPolicy(max_attempts=2, max_rate_limited_attempts=3)))

    d = Dispatcher(im.store, {"paced": Paced()})
    with freeze_time("2026-03-01 12:00:00") as clock:
        with im.store.transaction() as session:
            enqueue(session, JobSpec("paced", "post", {}), None)
        for _ in range(13):
            assert d.run_once() == 1
            clock.tick(1.01)
    (job,) = jobs(im)
    assert waits == [1] * 12, "each wait hands the claim back uncounted"
    assert (job.status, job.attempts) == (JobStatus.DONE, 1)


def test_transient_refusals_do_not_eat_into_the_ordinary_budget(im: Im) -> None:
    """A job refused transiently (429, a look-up that could not be made) spends the rate-limited budget only:
    its ordinary failures still get their full count of tries, and the rate-limited budget stays a bound."""
    from bot.domain.outbox import JobSpec, enqueue

    def flaky(job: OutboxJob) -> None:
        if job.payload["transient"] > job.attempts - 1:
            raise RetryLater("look-up timed out", rate_limited=True)
        raise RetryLater("post answered HTTP 500")

    class Flaky:
        kinds = kind_table(JobKind("post", flaky, RetryPolicy(max_attempts=3, max_rate_limited_attempts=6, fixed_delay=1.0)))

    d = Dispatcher(im.store, {"flaky": Flaky()})
    with freeze_time("2026-03-01 12:00:00") as clock:
        with im.store.transaction() as session:
            enqueue(session, JobSpec("flaky", "post", {"transient": 4}), None)  # 4 transient, then ordinary
            enqueue(session, JobSpec("flaky", "post", {"transient": 100}), 1)  # transient for ever
        for _ in range(10):
            d.run_once()
            d.run_once()
            clock.tick(1.01)
    first, second = jobs(im)
    assert (first.status, first.attempts, first.rate_limited_attempts) == (JobStatus.DEAD, 7, 4), "4 transient + 3 ordinary"
    assert "post answered HTTP 500" in (first.last_error or "")
    assert (second.status, second.attempts) == (JobStatus.DEAD, 6), "the rate-limited budget still bounds it"
    with im.store.transaction() as session:
        outbox.retry_dead(session, job_id=first.id)
    assert (jobs(im)[0].attempts, jobs(im)[0].rate_limited_attempts) == (0, 0)


# -- worker processes: claims of the dead are due at once, claims of the living never ------------


def register(im: Im, host: str, pid: int) -> int:
    with im.store.transaction() as session:
        return outbox.register_process(session, host=host, pid=pid)


def test_a_live_process_keeps_its_job_past_the_lease_and_loses_it_once_silent(im: Im, fake_slack: FakeSlack) -> None:
    with freeze_time("2026-03-01 12:00:00") as clock:
        im.incidents.declare(title="Slow Slack", severity="SEV-4", services=["a"], actor=CLI)
        a, b = register(im, "replica-a", 101), register(im, "replica-b", 202)
        with im.store.transaction() as session:
            (held,) = outbox.claim(session, limit=10, process_id=a)
        assert held.claimed_by == a and held.claim_token
        other = dispatcher(im, fake_slack, process_id=b)

        # A slow but alive delivery: A beats (renewing the lease of the job it holds) for three leases.
        for _ in range(int(3 * LEASE / HEARTBEAT)):
            clock.tick(HEARTBEAT.total_seconds())
            with im.store.transaction() as session:
                assert outbox.beat(session, a, [held.claim_token])
            assert other.run_once() == 0, "a live replica's job is never taken"

        # A falls silent (killed on another host): its lease still runs, but its heartbeat is too old.
        clock.tick(DEAD_AFTER.total_seconds() - 1)
        assert other.run_once() == 0
        clock.tick(2)
        assert jobs(im)[0].available_at > clock.time_to_freeze.replace(tzinfo=jobs(im)[0].available_at.tzinfo)
        assert other.run_once() == 1
        (job,) = jobs(im)
        assert (job.status, job.attempts, job.claimed_by) == (JobStatus.DONE, 2, b)
        with im.store.transaction() as session:  # A's late answer changes nothing
            assert outbox.complete(session, held) is False
            assert outbox.beat(session, a, [held.claim_token])  # and its renewal renews nothing of B's
    assert jobs(im)[0].status == JobStatus.DONE
    assert len(fake_slack.messages("C0INCIDENT")) == 1


def test_the_jobs_of_a_stopped_process_are_due_at_once(im: Im, fake_slack: FakeSlack) -> None:
    with freeze_time("2026-03-01 12:00:00"):
        im.incidents.declare(title="Restarted", severity="SEV-4", services=["a"], actor=CLI)
        a, b = register(im, "host-1", 101), register(im, "host-1", 102)
        with im.store.transaction() as session:
            outbox.claim(session, limit=10, process_id=a)
        assert dispatcher(im, fake_slack, process_id=b).run_once() == 0, "A lives"
        with im.store.transaction() as session:
            outbox.stop_process(session, a)
        assert dispatcher(im, fake_slack, process_id=b).run_once() == 1, "no lease to wait out"
    assert jobs(im)[0].status == JobStatus.DONE and len(fake_slack.messages("C0INCIDENT")) == 1


def test_a_starting_process_marks_its_dead_predecessors_on_this_host_only(im: Im) -> None:
    live_pids = {300}
    rows = {
        "dead pid here": register(im, "host-1", 200),
        "live pid here": register(im, "host-1", 300),
        "our pid, before a restart": register(im, "host-1", 1),
        "dead pid elsewhere": register(im, "host-2", 200),
    }
    me = register(im, "host-1", 1)
    with im.store.transaction() as session:
        reaped = outbox.reap_predecessors(session, me, host="host-1", pid=1, pid_alive=live_pids.__contains__)
    assert sorted(reaped) == sorted([rows["dead pid here"], rows["our pid, before a restart"]])
    with im.store.read() as session:
        stopped = {row.id: row.stopped_at is not None for row in session.exec(select(WorkerProcess))}
    assert stopped == {
        rows["dead pid here"]: True,
        rows["live pid here"]: False,
        rows["our pid, before a restart"]: True,
        rows["dead pid elsewhere"]: False,  # another host's pids mean nothing here: its heartbeat decides
        me: False,
    }


def test_two_replicas_a_slow_delivery_is_never_taken_from_a_live_one(im: Im, fake_slack: FakeSlack) -> None:
    """Real threads: replica A delivers through a slow Slack under its heartbeat while the clock jumps
    past A's first lease; replica B, another process identity on the same database, takes nothing."""
    im.incidents.declare(title="Slow Slack", severity="SEV-4", services=["a"], actor=CLI)
    a = dispatcher(im, fake_slack)
    pool = WorkerPool(a, threading.Event(), threads=1, poll=0.05, heartbeat=0.05)
    b = dispatcher(im, fake_slack, process_id=register(im, "replica-b", 202))
    fake_slack.response_delay = 1.0
    pool.start()
    try:
        assert a.process_id is not None
        wait(lambda: a.held(), "A to claim the job")
        later = utcnow() + 3 * LEASE
        with freeze_time(later, tick=True):

            def beat_since_the_jump() -> bool:  # A's heartbeat, in the moved clock, renewed its lease
                with im.store.read() as session:
                    row = session.get(WorkerProcess, a.process_id)
                return row is not None and row.heartbeat_at.replace(tzinfo=later.tzinfo) >= later

            wait(beat_since_the_jump, "A's heartbeat")
            assert b.drain() == 0, "B must not take a job A still delivers"
            fake_slack.response_delay = 0
            wait(lambda: jobs(im)[0].status == JobStatus.DONE, "A to finish")
    finally:
        pool.stop()
    (job,) = jobs(im)
    # A's own claims skip the job it holds, though its lease looked lapsed until A's next heartbeat
    assert job.claimed_by == a.process_id and job.attempts == 1
    assert len(fake_slack.messages("C0INCIDENT")) == 1 and len(fake_slack.calls_to("chat.postMessage")) == 1
    with im.store.read() as session:
        assert session.get(WorkerProcess, a.process_id).stopped_at is not None  # type: ignore[union-attr]  # a clean stop says so


def wait(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Polls by count, not by clock: the clock may be frozen."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_single_statement_commits_whole_or_not_at_all_and_leaves_the_pool_transactional(im: Im) -> None:
    """The alert intake's write (Store.single_statement: on PostgreSQL one autocommitted statement, no
    BEGIN/COMMIT round trips): a multi-row INSERT with a bad row stores none of its rows, a good one wakes
    the workers, and the connection goes back to the pool transactional (a failed core() rolls back)."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from bot.domain.outbox import JOBS, JobSpec, job_values
    from bot.store import note_enqueued

    woken: list[bool] = []
    im.store.after_enqueue.append(lambda: woken.append(True))
    good = job_values(JobSpec("alerts", "apply", {"n": 1}), None, "alerts:a")
    bad = {**job_values(JobSpec("alerts", "apply", {"n": 2}), None, "alerts:b"), "destination": None}
    with pytest.raises(IntegrityError), im.store.single_statement() as conn:
        conn.execute(insert(JOBS).values([good, bad]))
    assert jobs(im) == [] and woken == []
    with im.store.single_statement() as conn:
        conn.execute(insert(JOBS), good)
        note_enqueued(conn)
    assert [job.ordering_key for job in jobs(im)] == ["alerts:a"] and woken == [True]
    for _ in range(3):  # every pooled connection it may have used
        with pytest.raises(RuntimeError), im.store.core() as conn:
            conn.execute(insert(JOBS), {**good, "ordering_key": "alerts:rolled-back"})
            raise RuntimeError("after the insert, before the commit")
    assert [job.ordering_key for job in jobs(im)] == ["alerts:a"]
