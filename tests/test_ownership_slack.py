"""Ownership from Slack and the terminal, end to end: signed requests into the served app (its workers
stopped, so every Slack call the fake records after a request was made by a delivery we ran, never by
the request's ack), the terminal as a real `im` process, both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from bot.domain.models import Incident, OutboxJob, TimelineEvent
from bot.slack import render
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, AppHarness, make_settings

REPO = Path(__file__).resolve().parents[1]
CHANNEL = "C0INCIDENT"
ALICE, BOB, CAROL, DAVE = "U0LAN0Z89", "U0BOB0001", "U0CAROL01", "U0DAVE001"


@pytest.fixture
def quiet(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    """The served app with no background: deliveries run only when a test drains them."""
    fake_slack.add_user(CAROL, "carol", email="carol@example.com", real_name="Carol Poe")
    fake_slack.add_user(DAVE, "dave", email="dave@example.com", real_name="Dave Left")
    fake_slack.users[DAVE].deleted = True
    settings = make_settings(database_url, fake_slack, SLACK_TEAM_ID="T0001", IM_ADMINS="group:S0ADMINS")
    harness = AppHarness(settings, fake_slack, background=False)
    try:
        yield harness
    finally:
        harness.stop()


def drain(app: AppHarness) -> None:
    app.runtime.dispatcher.drain()


def answer(app: AppHarness, text: str, **kwargs: Any) -> str:
    """A slash command's ephemeral answer; the fake Slack saw no call while it was being answered."""
    before = len(app.fake.calls)
    response = app.command(text, **kwargs)
    assert response.status_code == 200, response.text
    assert len(app.fake.calls) == before, [c.method for c in app.fake.calls[before:]]
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


def root(app: AppHarness) -> Any:
    roots = app.fake.messages(CHANNEL)
    assert len(roots) == 1, roots
    return roots[0]


def fields(app: AppHarness) -> str:
    return json.dumps(root(app).blocks)


def buttons(app: AppHarness) -> list[str]:
    actions = [b for b in root(app).blocks if b["type"] == "actions"]
    return [e["action_id"] for e in actions[0]["elements"]] if actions else []


def counts(app: AppHarness) -> tuple[int, int, int]:
    with app.im.store.read() as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(model)).one() for model in (Incident, TimelineEvent, OutboxJob)
        )


def im(database_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """A terminal beside the server, configured like it (so its changes reach Slack through the outbox)."""
    env = {"IM_DATABASE_URL": database_url, "IM_ACTOR": "ops", "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    env |= {"SLACK_BOT_TOKEN": BOT_TOKEN, "IM_SLACK_CHANNEL": CHANNEL}
    return subprocess.run(
        [sys.executable, "-m", "bot.main", *argv], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_assign_take_role_unassign_from_slack(quiet: AppHarness) -> None:
    app = quiet
    assert "INC-1 declared" in answer(app, 'declare --sev SEV-3 --title "Disk full" --service db')
    drain(app)
    assert render.TAKE_ACTION in buttons(app) and "nobody yet" in fields(app)

    # Slack sends `@bob` as <@U…|bob> (should_escape): the ID names him
    assert "INC-1 is now owned by bob" in answer(app, f"assign INC-1 <@{BOB}|bob>")
    drain(app)
    assert f"*Owner*\\n<@{BOB}>" in fields(app) and render.TAKE_ACTION not in buttons(app)
    replies = app.fake.replies(CHANNEL, root(app).ts)
    assert any(f"Owner: <@{BOB}>" in r.text and f"<@{ALICE}>" in r.text for r in replies)
    dms = app.fake.dms(BOB)
    assert len(dms) == 1 and "INC-1" in dms[0].text and "https://slack.com/archives/C0INCIDENT/p" in dms[0].text
    drain(app)
    assert len(app.fake.dms(BOB)) == 1, "one DM per change of owner"

    assert "alice is commander" in answer(app, f"role INC-1 commander <@{ALICE}|alice>")
    drain(app)
    assert f"*Commander*\\n<@{ALICE}>" in fields(app)
    assert "commander cleared" in answer(app, "role INC-1 commander --clear")
    drain(app)
    assert "Commander" not in fields(app)

    assert "INC-1 has no owner now" in answer(app, "unassign --incident INC-1")
    drain(app)
    assert render.TAKE_ACTION in buttons(app)

    # take, typed as a mention in the thread (no incident given): alice owns it, and gets no DM
    thread_ts = root(app).ts
    event = {"type": "app_mention", "user": ALICE, "text": "<@U0BOT00001> take", "ts": "1.2", "channel": CHANNEL}
    event |= {"thread_ts": thread_ts, "event_ts": "1.2"}
    body = {"type": "event_callback", "team_id": "T0001", "api_app_id": sr.DEFAULT_APP_ID, "event": event, "event_id": "Ev1"}
    assert app.slack.post(json.dumps(body).encode(), content_type="application/json").status_code == 200
    drain(app)
    assert app.im.describe(app.im.incidents.get(1)).owner.slack_user_id == ALICE  # type: ignore[union-attr]
    assert app.fake.dms(ALICE) == []
    assert any("INC-1 is now owned by you" in e["text"] for e in app.fake.ephemerals)
    assert app.fake.violations == []


def test_take_it_button_acks_after_the_local_write(quiet: AppHarness) -> None:
    app = quiet
    answer(app, "declare --sev SEV-3 --title Slow --service api")
    drain(app)
    before = len(app.fake.calls)
    assert app.click(render.TAKE_ACTION, "INC-1", user_id=BOB, user_name="bob").status_code == 200
    assert len(app.fake.calls) == before, "the button's answer waited on no Slack call"
    assert app.im.incidents.get(1).owner_id is not None
    drain(app)
    assert f"*Owner*\\n<@{BOB}>" in fields(app) and render.TAKE_ACTION not in buttons(app)
    assert app.fake.dms(BOB) == [], "who takes it needs no DM"

    # a stale button: someone owns it already; nothing changes, the clicker hears who
    url = app.fake.response_url()
    events = counts(app)[1]
    assert app.click(render.TAKE_ACTION, "INC-1", user_id=ALICE, response_url=url).status_code == 200
    assert counts(app)[1] == events
    drain(app)
    assert f"already owned by <@{BOB}>" in app.fake.responses[-1]["text"]
    assert app.fake.violations == []


def test_terminal_assign_by_email_matches_slack_users_after_the_ack(quiet: AppHarness, database_url: str) -> None:
    app = quiet
    answer(app, "declare --sev SEV-3 --title Queue --service jobs")
    drain(app)
    run = im(database_url, "assign", "INC-1", "--user", "carol@example.com")
    assert run.returncode == 0, run.stderr
    assert "INC-1 is now owned by carol@example.com" in run.stdout
    drain(app)
    assert [c.args["email"] for c in app.fake.calls_to("users.lookupByEmail")] == ["carol@example.com"]
    assert f"*Owner*\\n<@{CAROL}>" in fields(app)
    assert len(app.fake.dms(CAROL)) == 1

    # someone Slack does not know (as PagerDuty may name them): shown by name, "(not in Slack)"
    run = im(database_url, "assign", "--incident", "INC-1", "--user", "pat@elsewhere.example")
    assert run.returncode == 0, run.stderr
    drain(app)
    assert "pat@elsewhere.example (not in Slack)" in fields(app)
    assert not any(c.args.get("users") == "" for c in app.fake.calls_to("conversations.open"))

    # a user who left: matched by email (deleted), then refused by name
    assert im(database_url, "assign", "INC-1", "--user", "dave@example.com").returncode == 0
    drain(app)
    assert "dave@example.com (not in Slack)" in fields(app)
    events = counts(app)
    assert "has left the workspace" in answer(app, f"assign INC-1 <@{DAVE}|dave>")
    assert counts(app) == events

    # terminal: a Slack user ID; status, list and JSON show the owner
    assert im(database_url, "assign", "INC-1", BOB).returncode == 0
    listed = im(database_url, "list")
    assert "OWNER" in listed.stdout and "U0BOB0001" in listed.stdout
    detail = im(database_url, "status", "--incident", "INC-1", "--json")
    assert json.loads(detail.stdout)["incident"]["owner"]["slack_user_id"] == BOB
    drain(app)
    assert "Bob Roe" in im(database_url, "status", "--incident", "INC-1").stdout
    assert app.fake.violations == []


def test_refusals_are_ephemeral_and_write_nothing(quiet: AppHarness) -> None:
    app = quiet
    answer(app, "declare --sev SEV-3 --title Flaky --service web")
    drain(app)
    before = counts(app)
    cases = {
        f"role INC-1 pilot <@{BOB}|bob>": "'pilot' is not a role here (roles: commander, communications)",
        "assign INC-1 @bob": "is not a Slack user I can see",
        "assign INC-1": "whom?",
        "take": "--incident is required",
        f"role INC-1 commander <@{BOB}|bob> --clear": "either a person or --clear",
        f"assign INC-1 <@{BOB}|bob> --user x@example.com": "give the person once",
    }
    for text, expected in cases.items():
        assert expected in answer(app, text), text
    assert counts(app) == before
    assert app.fake.violations == []


def test_add_to_timeline_shortcut(quiet: AppHarness) -> None:
    app = quiet
    answer(app, "declare --sev SEV-3 --title Latency --service api")
    drain(app)
    thread_ts = root(app).ts
    before = len(app.fake.calls)
    body = sr.message_shortcut(
        render.ADD_TO_TIMELINE, message_ts="1700000100.000200", thread_ts=thread_ts, text="p99 &lt;3s again", author=BOB
    )
    assert app.slack.post(body).status_code == 200
    assert len(app.fake.calls) == before
    _, events = app.im.incidents.timeline(1)
    note = events[-1]
    link = f"https://slack.com/archives/{CHANNEL}/p1700000100000200?thread_ts={thread_ts}&cid={CHANNEL}"
    assert note.kind == "note" and note.data["slack_author"] == BOB and note.data["slack_permalink"] == link
    assert "p99 <3s again" in (note.text or "") and link in (note.text or "")
    drain(app)
    reply = app.fake.replies(CHANNEL, thread_ts)[-1].text
    assert f"<@{BOB}>" in reply and "p99 &lt;3s again" in reply and "|message>" in reply

    # a message in no incident's thread: an ephemeral, nothing written
    url = app.fake.response_url()
    counted = counts(app)
    body = sr.message_shortcut(
        render.ADD_TO_TIMELINE, message_ts="1700000200.000100", text="lunch?", author=BOB, response_url=url
    )
    assert app.slack.post(body).status_code == 200
    assert counts(app)[:2] == counted[:2]
    drain(app)
    assert "not in an incident thread" in app.fake.responses[-1]["text"]
    assert app.fake.violations == []


def test_slack_connect_guest_reads_but_cannot_change(quiet: AppHarness) -> None:
    app = quiet
    answer(app, "declare --sev SEV-3 --title Shared --service edge")
    drain(app)
    before = counts(app)
    assert "another workspace" in answer(app, "ack --incident INC-1", user_id="U0GUEST01", user_team="T0OTHER")
    assert "another workspace" in answer(app, "take INC-1", user_id="U0GUEST01", user_team="T0OTHER")
    assert "INC-1" in answer(app, "status --incident INC-1", user_id="U0GUEST01", user_team="T0OTHER")
    assert "Shared" in answer(app, "list", user_id="U0GUEST01", user_team="T0OTHER")
    url = app.fake.response_url()
    assert app.click(render.TAKE_ACTION, "INC-1", user_id="U0GUEST01", team_id="T0OTHER", response_url=url).status_code == 200
    assert counts(app)[:2] == before[:2]
    drain(app)
    assert "another workspace" in app.fake.responses[-1]["text"]
    assert app.im.incidents.get(1).owner_id is None


def test_admin_user_group_may_close_a_sev1_a_non_owner_cannot(quiet: AppHarness) -> None:
    app = quiet
    app.fake.add_usergroup("S0ADMINS", [CAROL])
    answer(app, "declare --sev SEV-1 --title Down --service api")
    answer(app, f"assign INC-1 <@{ALICE}|alice>")
    drain(app)
    before = counts(app)
    assert "needs its owner, its commander or an admin" in answer(app, "close --incident INC-1", user_id=BOB, user_name="bob")
    assert "needs its owner, its commander or an admin" in answer(app, "close --incident INC-1", user_id=CAROL, user_name="carol")
    assert counts(app) == before

    # the members are read in the background (on start and every 10 minutes), never on a request
    assert app.runtime.slack_workspace is not None
    assert app.runtime.slack_workspace.refresh() == ["user group S0ADMINS: 1 members"]
    assert [c.args["usergroup"] for c in app.fake.calls_to("usergroups.users.list")] == ["S0ADMINS"]
    assert "INC-1 closed" in answer(app, "close --incident INC-1", user_id=CAROL, user_name="carol")
    assert app.im.incidents.get(1).status == "closed"
    assert app.fake.violations == []


def test_team_learned_from_auth_test_in_the_background(database_url: str, fake_slack: FakeSlack) -> None:
    harness = AppHarness(make_settings(database_url, fake_slack), fake_slack, background=False)
    try:
        workspace = harness.runtime.slack_workspace
        assert workspace is not None and workspace.team_id() is None
        assert "INC-1" in answer(harness, "declare --sev SEV-4 --title x --service y", user_team="T0OTHER")
        assert workspace.refresh() == ["slack workspace is T0001"]
        assert "another workspace" in answer(harness, "ack --incident INC-1", user_team="T0OTHER")
    finally:
        harness.stop()
