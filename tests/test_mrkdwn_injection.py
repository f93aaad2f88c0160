"""Text from people or PagerDuty never becomes Slack markup: mentions and links typed into titles,
notes, descriptions, modal fields or PagerDuty names reach Slack escaped, through every front end.
Our own mentions, built from Slack IDs, still ping."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack import render
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings
from tests.pd_support import PagerDutyWorld, Terminal, pagerduty_account
from tests.test_cli import slack_env
from tests.test_slack_events_and_load import mention

CHANNEL = "C0INCIDENT"
HOSTILE = "<!channel> disk full <https://evil.example|click>"
# what Slack sends when a user types HOSTILE into a slash command: &, < and > escaped
TYPED = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
LIVE_MARKUP = re.compile(r"<(!channel|!here|!everyone|!subteam|https?://evil\.example)")


def mrkdwn_texts(node: Any) -> Iterator[str]:
    """Every string Slack would read as mrkdwn: `text` values anywhere except in plain_text objects."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str) and node.get("type") != "plain_text":
                yield value
            else:
                yield from mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from mrkdwn_texts(item)


def everything_sent(fake: FakeSlack, *answers: Any) -> list[str]:
    """What Slack was given to show: Web API calls, response_url posts and our HTTP answers."""
    sent = [call.args for call in fake.calls if call.method.startswith(("chat.", "views."))]
    return list(mrkdwn_texts([sent, fake.responses, list(answers)]))


def assert_inert(texts: list[str]) -> None:
    live = [t for t in texts if LIVE_MARKUP.search(t)]
    assert live == [], f"user text became Slack markup: {live}"


@pytest.fixture
def slack_app(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    harness = AppHarness(make_settings(database_url, fake_slack, IM_SLACK_CHANNEL=CHANNEL), fake_slack)
    try:
        yield harness
    finally:
        harness.stop()


def test_slash_command_title_note_and_echoes_stay_text(slack_app: AppHarness) -> None:
    app = slack_app
    declared = app.command(f'declare --sev SEV-1 --title "{TYPED}" --service db --description "&lt;!here&gt; &amp;amp; co"')
    assert declared.status_code == 200
    # the user's own characters are stored, as data
    incident = app.im.incidents.get(1)
    assert incident.title == HOSTILE and incident.description == "<!here> &amp; co"
    noted = app.command('note --incident INC-1 "&lt;!everyone&gt; see &lt;https://evil.example|runbook&gt;"')
    refused = app.command('ack --incident "&lt;!channel&gt;"')  # an error message echoing what was typed
    app.wait_idle()
    root = app.fake.messages(CHANNEL)[0]
    # a note from the thread: Slack sends mentions in events as markup already
    mention(app, 'note "<!subteam^S0ONCALL|@oncall> <https://evil.example|look>"', event_id="EvNote1", thread_ts=root.ts)
    app.wait_idle()

    texts = everything_sent(app.fake, declared.json(), noted.json(), refused.json())
    assert_inert(texts)
    assert "&lt;!channel&gt; disk full &lt;https://evil.example|click&gt;" in root.text, "shown as typed"
    assert any("&amp;amp; co" in t for t in texts), "an & typed as &amp; is shown as &amp;"
    assert any("&lt;!subteam^S0ONCALL|@oncall&gt;" in r.text for r in app.fake.replies(CHANNEL, root.ts))
    assert "<@U0LAN0Z89>" in json.dumps(root.blocks), "our own mention of the declarer still pings"
    assert any("<@U0BOB0001>" in r.text for r in app.fake.replies(CHANNEL, root.ts))
    room = app.fake.find_channel_by_name("inc-1-channel-disk-full-https-evil-example-click")
    assert room is not None and any("&lt;!channel&gt;" in m.text for m in room.messages), "the war-room hello"
    assert app.fake.violations == []


def test_modal_fields_stay_text(slack_app: AppHarness) -> None:
    app = slack_app
    app.command("declare", trigger_id="trigger-declare-1")
    assert app.fake.wait_for(lambda: len(app.fake.opened_views) == 1)
    form = app.fake.opened_views[0]["view"]
    declared = app.submit(
        render.DECLARE_VIEW,
        {
            "title": {"value": sr.text_input(HOSTILE)},  # modal inputs arrive as typed, unescaped
            "severity": {"value": sr.static_select("SEV-2")},
            "services": {"value": sr.text_input("db")},
            "description": {"value": sr.text_input("<!everyone> <https://evil.example|details>")},
        },
        private_metadata=form["private_metadata"],
    )
    assert declared.json()["response_action"] == "update"
    app.wait_idle()
    root = app.fake.messages(CHANNEL)[0]
    app.click(render.RESOLVE_ACTION, "INC-1", message_ts=root.ts, trigger_id="trigger-resolve-1")
    assert app.fake.wait_for(lambda: len(app.fake.opened_views) == 2)
    resolved = app.submit(
        render.RESOLVE_VIEW,
        {"note": {"value": sr.text_input("<!here> fixed, see <https://evil.example|postmortem>")}},
        private_metadata=app.fake.opened_views[1]["view"]["private_metadata"],
    )
    assert resolved.status_code == 200
    app.wait_idle()
    assert app.im.incidents.get(1).resolution == "<!here> fixed, see <https://evil.example|postmortem>"

    texts = everything_sent(app.fake, declared.json())
    assert_inert(texts)
    assert "&lt;!channel&gt;" in json.dumps(declared.json()["view"]), "the done view shows the title as typed"
    resolution = json.dumps(app.fake.messages(CHANNEL)[0].blocks)
    assert "&lt;!here&gt; fixed, see &lt;https://evil.example|postmortem&gt;" in resolution
    assert app.fake.violations == []


def test_terminal_title_note_and_name_stay_text(
    slack_app: AppHarness, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = slack_app
    env = {"IM_DATABASE_URL": database_url, "IM_SLACK_CHANNEL": CHANNEL, "IM_ACTOR": "<!here> mallory"}
    im = Terminal(monkeypatch, capsys, env | slack_env(app.fake))
    im.ok("declare", "--sev", "SEV-2", "--title", HOSTILE, "--service", "db")
    im.ok("note", "--incident", "INC-1", "<!everyone> & <https://evil.example|click>")
    app.wait_idle()
    root = app.fake.messages(CHANNEL)[0]
    replies = app.fake.replies(CHANNEL, root.ts)
    assert_inert(everything_sent(app.fake))
    assert any("&lt;!everyone&gt; &amp; &lt;https://evil.example|click&gt;" in r.text for r in replies)
    assert any("&lt;!here&gt; mallory (terminal)" in r.text for r in replies), "the terminal user's name is text"
    assert app.fake.violations == []


@pytest.fixture
def world(database_url: str, fake_slack: FakeSlack, monkeypatch, capsys) -> Iterator[PagerDutyWorld]:  # type: ignore[no-untyped-def]
    """The PagerDuty world, with a PagerDuty user whose name is hostile."""
    pd = pagerduty_account()
    pd.add_user("PUEVIL1", "<!channel> Eve <https://evil.example|click>", "eve@example.com")
    connected = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    try:
        connected.enable_webhook()
        yield connected
    finally:
        connected.stop()
        pd.stop()


def test_pagerduty_title_notes_and_names_stay_text(world: PagerDutyWorld) -> None:
    app, pd = world.app, world.pd
    remote = pd.trigger_incident(service_id="PDAT001", title=HOSTILE, urgency="high")
    pd.notify_subscriptions("incident.triggered", remote.id)
    app.wait_idle()
    assert app.im.incidents.get(1).title == HOSTILE
    pd.reassign_incident(remote.id, ["PUEVIL1"], agent_user_id="PUEVIL1")
    pd.notify_subscriptions("incident.reassigned", remote.id)
    pd.add_incident_note(remote.id, "<!here> <https://evil.example|dashboard>", user_id="PUEVIL1")
    pd.notify_subscriptions("incident.annotated", remote.id)
    pd.set_incident_status(remote.id, "resolved", agent_user_id="PUEVIL1")
    pd.notify_subscriptions("incident.resolved", remote.id)
    app.wait_idle()
    assert app.im.incidents.get(1).status == "resolved"

    assert_inert(everything_sent(app.fake))
    root = app.fake.messages(CHANNEL)[0]
    assert "&lt;!channel&gt; disk full" in root.text
    replies = "\n".join(r.text for r in app.fake.replies(CHANNEL, root.ts))
    assert "now paging &lt;!channel&gt; Eve &lt;https://evil.example|click&gt;" in replies
    assert "&lt;!here&gt; &lt;https://evil.example|dashboard&gt;" in replies
    assert f"<https://fake.pagerduty.com/incidents/{remote.id}|PagerDuty #{remote.number} (db)>" in json.dumps(root.blocks), (
        "a link we mean, from a URL we checked, is still a link"
    )
    assert app.fake.violations == [] and pd.violations == []
