"""`im outbox list|show|retry` on SQLite and PostgreSQL: a Slack post dead-lettered by the served app is
listed, shown, and given a second chance from the terminal, after which the app delivers it; bad input
is refused with exit 2 and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import select

from bot.domain.models import JobStatus, OutboxJob
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings
from tests.pd_support import Terminal
from tests.test_serve import wait_until

CHANNEL = "C0INCIDENT"


@pytest.fixture
def served(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    harness = AppHarness(make_settings(database_url, fake_slack, IM_SLACK_CHANNEL=CHANNEL), fake_slack)
    yield harness
    harness.stop()


def jobs(app: AppHarness) -> list[OutboxJob]:
    with app.im.store.read() as session:
        return list(session.exec(select(OutboxJob).order_by(OutboxJob.id)))


def test_dead_slack_jobs_listed_shown_and_retried(
    served: AppHarness,
    fake_slack: FakeSlack,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    im = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": database_url})
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")
    assert served.command('declare --sev SEV-3 --title "Disk full" --service db').status_code == 200
    dead = wait_until(lambda: [j for j in jobs(served) if j.status == JobStatus.DEAD], 10, "a dead-lettered job")
    job = dead[0]

    listed = json.loads(im.ok("outbox", "list", "--dead", "--json"))
    assert [(j["id"], j["destination"], j["status"], j["incident"]) for j in listed["jobs"]] == [
        (job.id, "slack", "dead", "INC-1")
    ]
    assert "channel_not_found" in listed["jobs"][0]["last_error"]
    assert json.loads(im.ok("outbox", "list", "--destination", "pagerduty", "--json"))["jobs"] == []
    table = im.ok("outbox", "list")
    assert "JOB" in table and "channel_not_found" in table
    shown = im.ok("outbox", "show", str(job.id))
    assert f"job {job.id}: slack timeline_event (dead" in shown and "payload:" in shown

    untouched = [(j.id, j.status, j.attempts) for j in jobs(served)]
    for argv, says in (
        (("outbox", "show", "999"), "no outbox job 999"),
        (("outbox", "retry", "999"), "no outbox job 999"),
        (("outbox", "retry"), "give either a JOB or --all-dead"),
        (("outbox", "retry", "abc"), "'abc' is not a job number"),
        (("outbox", "list", "--destination", "email"), "'email' is not a destination"),
    ):
        ran = im(*argv)
        assert ran.code == 2 and says in ran.err and "Traceback" not in ran.err, (argv, ran)
    assert [(j.id, j.status, j.attempts) for j in jobs(served)] == untouched, "bad input changed nothing"

    assert f"job {job.id} (slack timeline_event, INC-1) queued again" in im.ok("outbox", "retry", str(job.id))
    served.wait_idle()
    assert jobs(served)[0].status == JobStatus.DONE
    assert len(fake_slack.messages(CHANNEL)) == 1, "delivered once, on its second chance"

    before = [(j.status, j.attempts) for j in jobs(served)]
    ran = im("outbox", "retry", str(job.id))
    assert ran.code == 2 and f"job {job.id} is done, not dead: only dead-lettered jobs are retried" in ran.err
    assert [(j.status, j.attempts) for j in jobs(served)] == before, "nothing changed"

    # every dead one at once, Slack's included (`connector sync` retries only PagerDuty's)
    fake_slack.fail_next("chat.postMessage", error="channel_not_found", times=2)
    served.command('note --incident INC-1 "failing over"')
    served.command('declare --sev SEV-4 --title "Cache cold" --service cache')
    wait_until(lambda: len([j for j in jobs(served) if j.status == JobStatus.DEAD]) == 2, 10, "two dead jobs")
    requeued = json.loads(im.ok("outbox", "retry", "--all-dead", "--destination", "slack", "--json"))
    assert len(requeued["data"]["requeued"]) == 2
    served.wait_idle()
    assert {j.status for j in jobs(served)} == {JobStatus.DONE}
    assert "no dead-lettered jobs" in im.ok("outbox", "retry", "--all-dead")
