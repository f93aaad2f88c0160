"""The core loop from Slack, end to end over real HTTP: signed requests in, Web API calls out."""

from __future__ import annotations

import json
import time

from sqlmodel import select

from bot.domain.incidents import Actor
from bot.domain.models import Incident, Origin, OutboxJob, TimelineEvent
from bot.slack import render
from tests.fakes import slack_requests as sr
from tests.harness import AppHarness

CHANNEL = "C0INCIDENT"


def root_message(app: AppHarness):  # type: ignore[no-untyped-def]
    roots = app.fake.messages(CHANNEL)
    assert len(roots) == 1, roots
    return roots[0]


def count(app: AppHarness, model) -> int:  # type: ignore[no-untyped-def]
    with app.im.store.read() as session:
        return len(session.exec(select(model)).all())


def test_declare_acknowledge_resolve_from_slack(app: AppHarness) -> None:
    answer = app.command('declare --sev SEV-2 --title "Database slow" --service db,api')
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    assert "INC-1 declared" in body["text"]

    app.wait_idle()
    root = root_message(app)
    assert "INC-1" in root.text and "SEV-2" in root.text
    actions = [b for b in root.blocks if b["type"] == "actions"][0]
    assert [e["action_id"] for e in actions["elements"]] == [render.ACK_ACTION, render.RESOLVE_ACTION]
    assert "<@U0LAN0Z89>" in json.dumps(root.blocks)  # who declared it

    # Bob clicks Acknowledge: acts as Bob, lands in the thread, root updated in place.
    click = app.click(render.ACK_ACTION, "INC-1", user_id="U0BOB0001", user_name="bob", message_ts=root.ts)
    assert click.status_code == 200
    app.wait_idle()
    replies = app.fake.replies(CHANNEL, root.ts)
    assert any("Acknowledged" in r.text and "<@U0BOB0001>" in r.text for r in replies)
    root = root_message(app)
    assert "mitigated" in json.dumps(root.blocks)
    assert root.edited >= 1
    incident = app.im.incidents.get("INC-1")
    assert incident.status == "mitigated" and incident.acknowledged_at is not None
    _, events = app.im.incidents.timeline(1)
    assert events[-1].actor == "slack:U0BOB0001" and events[-1].origin == "slack"

    # Resolve opens a modal asking for the note; submitting it resolves.
    click = app.click(render.RESOLVE_ACTION, "INC-1", message_ts=root.ts, trigger_id="trigger-resolve-1")
    assert click.status_code == 200
    assert app.fake.wait_for(lambda: len(app.fake.opened_views) == 1)
    view = app.fake.opened_views[0]
    assert view["trigger_id"] == "trigger-resolve-1" and view["view"]["callback_id"] == render.RESOLVE_VIEW
    submit = app.submit(
        render.RESOLVE_VIEW,
        {"note": {"value": sr.text_input("Rolled back the index change")}},
        private_metadata=view["view"]["private_metadata"],
    )
    assert submit.status_code == 200
    app.wait_idle()
    incident = app.im.incidents.get("INC-1")
    assert incident.status == "resolved" and incident.resolution == "Rolled back the index change"
    root = root_message(app)
    assert not [b for b in root.blocks if b["type"] == "actions"], "no buttons once resolved"
    assert any("Resolved" in r.text for r in app.fake.replies(CHANNEL, root.ts))
    assert app.fake.violations == []


def test_stale_button_answers_ephemerally(app: AppHarness) -> None:
    app.command("declare --sev SEV-3 --title Flaky --service web")
    app.im.incidents.transition(
        1,
        "resolve",
        actor=Actor(Origin.CLI, "carol"),
        note="done",
    )
    app.wait_idle()
    url = app.fake.response_url()
    assert app.click(render.ACK_ACTION, "INC-1", response_url=url).status_code == 200
    assert app.fake.wait_for(lambda: len(app.fake.responses) == 1)
    assert "INC-1 is resolved" in app.fake.responses[0]["text"]
    assert app.im.incidents.get(1).status == "resolved"

    url = app.fake.response_url()
    app.click("some_old_button", "x", response_url=url)
    assert app.fake.wait_for(lambda: len(app.fake.responses) == 2)
    assert "no longer in use" in app.fake.responses[1]["text"]
    assert app.fake.violations == []


def test_bad_input_is_ephemeral_with_usage_and_writes_nothing(app: AppHarness) -> None:
    cases = {
        "declare --sev SEV-9 --title x --service db": "not a severity",
        "declare --sev SEV-2 --service db": "missing required option(s): --title",
        "declare --sev SEV-2 --title x --service db --bogus 1": "unknown option(s): --bogus",
        "frobnicate": "unknown command 'frobnicate'",
        'declare --title "unclosed': "check your quotes",
        "ack --incident INC-42": "INC-42 does not exist",
        "ack": "--incident is required",
        "connector add pagerduty prod": "only runs from a terminal",
    }
    for text, expected in cases.items():
        answer = app.command(text)
        assert answer.status_code == 200, text
        body = answer.json()
        assert body["response_type"] == "ephemeral", text
        assert expected in body["text"], (text, body["text"])
        assert "Traceback" not in body["text"]
    assert count(app, Incident) == 0 and count(app, TimelineEvent) == 0 and count(app, OutboxJob) == 0


def test_usage_is_shown_with_the_error(app: AppHarness) -> None:
    body = app.command("resolve --incident INC-1").json()
    assert "missing required option(s): --note" in body["text"]
    assert "usage: /im resolve" in body["text"]


def test_invalid_transition_is_explained(app: AppHarness) -> None:
    app.command("declare --sev SEV-3 --title t --service web")
    app.command('resolve --incident INC-1 --note "fixed"')
    body = app.command("ack --incident INC-1").json()
    assert "INC-1 is resolved: it cannot be acknowledged (reopen it first)" in body["text"]
    # the same state again is a no-op, not an error and not an event
    events_before = count(app, TimelineEvent)
    body = app.command('resolve --incident INC-1 --note "again"').json()
    assert "already resolved" in body["text"]
    assert count(app, TimelineEvent) == events_before


def test_smart_punctuation_from_phones_and_macs(app: AppHarness) -> None:
    body = app.command("declare \u2014sev SEV-2 \u2014title \u201cDB slow & sad\u201d \u2014service db").json()
    assert "INC-1 declared" in body["text"], body
    assert app.im.incidents.get(1).title == "DB slow & sad"


def test_forged_and_stale_requests_get_401(app: AppHarness) -> None:
    body = sr.slash_command("declare --sev SEV-2 --title x --service db")
    assert app.slack.post(body, signature="v0=" + "0" * 64).status_code == 401
    old = int(time.time()) - 600
    assert app.slack.post(body, timestamp=old).status_code == 401
    assert count(app, Incident) == 0


def test_war_room_for_sev1_with_name_collision(app: AppHarness) -> None:
    app.fake.add_channel("C0TAKEN01", "inc-1-payments-down")
    app.command('declare --sev SEV-1 --title "Payments down!" --service payments')
    app.wait_idle()
    room = app.fake.find_channel_by_name("inc-1-payments-down-2")
    assert room is not None
    assert "U0LAN0Z89" in room.members
    root = root_message(app)
    assert any(f"<#{room.id}>" in r.text for r in app.fake.replies(CHANNEL, root.ts))
    # inside the war room --incident may be left out
    body = app.command('ack --note "on it"', channel_id=room.id, channel_name=room.name).json()
    assert "INC-1 acknowledged" in body["text"], body
    assert app.fake.violations == []


def test_declare_modal(app: AppHarness) -> None:
    answer = app.command("declare", trigger_id="trigger-declare-1")
    assert answer.status_code == 200
    assert app.fake.wait_for(lambda: len(app.fake.opened_views) == 1)
    view = app.fake.opened_views[0]["view"]
    assert view["callback_id"] == render.DECLARE_VIEW
    bad = app.submit(
        render.DECLARE_VIEW,
        {
            "title": {"value": sr.text_input("Checkout errors")},
            "severity": {"value": sr.static_select("SEV-2")},
            "services": {"value": sr.text_input("bad service!")},
            "description": {"value": sr.text_input("")},
        },
        private_metadata=view["private_metadata"],
    )
    assert bad.json()["response_action"] == "errors" and "services" in bad.json()["errors"]
    assert count(app, Incident) == 0
    good = app.submit(
        render.DECLARE_VIEW,
        {
            "title": {"value": sr.text_input("Checkout errors")},
            "severity": {"value": sr.static_select("SEV-2")},
            "services": {"value": sr.text_input("checkout, payments")},
            "description": {"value": sr.text_input("5xx on /pay")},
        },
        private_metadata=view["private_metadata"],
    )
    assert good.status_code == 200 and good.json()["response_action"] == "update"
    incident = app.im.incidents.get(1)
    assert incident.services == ["checkout", "payments"] and incident.description == "5xx on /pay"
    app.wait_idle()
    assert len(app.fake.messages(CHANNEL)) == 1  # announced where /im declare ran
    assert app.fake.violations == []


def test_status_list_timeline_json_and_help(app: AppHarness) -> None:
    app.command('declare --sev SEV-2 --title "Database slow" --service db')
    app.command("note --incident INC-1 replica lag is 30s")
    assert "INC-1" in app.command("status").json()["text"]
    assert "replica lag is 30s" in app.command("timeline --incident INC-1").json()["text"]
    listed = app.command("list --sev SEV-2 --json").json()["text"]
    assert json.loads(listed.strip("`"))["incidents"][0]["id"] == "INC-1"
    help_text = app.command("help").json()["text"]
    assert "declare" in help_text and "serve" not in help_text  # terminal-only commands are not offered
    assert "--sev" in app.command("help declare").json()["text"]
    assert "--sev" in app.command("declare --help").json()["text"]
