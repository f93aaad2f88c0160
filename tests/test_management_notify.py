"""The seed's automated workflow, step 5: management hears of every critical incident. A SEV-1 declared, or
an incident raised to SEV-1, is told once to the channels and people of IM_MANAGEMENT_NOTIFY, with the
link to the incident's thread; through the running app, signed Slack requests and the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings
from tests.pd_support import Terminal

MANAGEMENT_CHANNEL = "C0MGMT0001"
BOSS = "U0BOSS0001"


@pytest.fixture
def app(database_url: str, fake_slack: FakeSlack) -> Iterator[AppHarness]:
    fake_slack.add_channel(MANAGEMENT_CHANNEL, "leadership")
    fake_slack.add_user(BOSS, "carol", email="carol@example.com", real_name="Carol Boss")
    settings = make_settings(
        database_url, fake_slack, IM_SLACK_CHANNEL="C0INCIDENT", IM_MANAGEMENT_NOTIFY=f"{MANAGEMENT_CHANNEL},{BOSS}"
    )
    harness = AppHarness(settings, fake_slack)
    try:
        yield harness
    finally:
        harness.stop()


def test_sev1_declared_or_raised_is_told_to_management_once(app: AppHarness, fake_slack: FakeSlack) -> None:
    app.command('declare --sev SEV-1 --title "Payments & API down" -s payments')
    app.command('declare --sev SEV-3 --title "Search slow" -s search')
    app.wait_idle()
    [notice] = fake_slack.messages(MANAGEMENT_CHANNEL)
    [dm] = fake_slack.dms(BOSS)
    [root] = [m for m in fake_slack.messages("C0INCIDENT") if m.text.startswith("INC-1 ")]
    link = f"https://slack.com/archives/C0INCIDENT/p{root.ts.replace('.', '')}"
    for text in (notice.text, dm.text):
        assert "Critical incident declared by <@U0LAN0Z89>" in text
        assert "INC-1 [SEV-1] Payments &amp; API down (payments)" in text, "the title is data, not markup"
        assert f"<{link}|Open the incident thread>" in text
    app.command("severity --incident INC-2 --sev SEV-1")
    app.command("severity --incident INC-1 --sev SEV-2")
    app.command("severity --incident INC-1 --sev SEV-1")
    app.wait_idle()
    notices = [m.text for m in fake_slack.messages(MANAGEMENT_CHANNEL)]
    assert len(notices) == 2 and "Critical incident raised to SEV-1" in notices[1] and "INC-2 [SEV-1]" in notices[1]
    assert len(fake_slack.dms(BOSS)) == 2, "once per incident: lowered and raised again is not told twice"


def test_nothing_is_sent_when_unset_and_bad_settings_are_refused(
    database_url: str, fake_slack: FakeSlack, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    fake_slack.add_channel(MANAGEMENT_CHANNEL, "leadership")
    harness = AppHarness(make_settings(database_url, fake_slack, IM_SLACK_CHANNEL="C0INCIDENT"), fake_slack)
    try:
        harness.command('declare --sev SEV-1 --title "DB down" -s db')
        harness.wait_idle()
        assert fake_slack.messages(MANAGEMENT_CHANNEL) == []
    finally:
        harness.stop()
    im = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": database_url, "IM_MANAGEMENT_NOTIFY": "C0MGMT0001,#leadership"})
    ran = im("status")
    assert ran.code == 2 and "IM_MANAGEMENT_NOTIFY" in ran.err and "'#leadership' is neither a Slack channel ID" in ran.err
