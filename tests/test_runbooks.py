"""Runbooks as a user sees them: `runbook set|list|remove` in a terminal and in Slack, bad URLs refused
(exit 2, nothing stored), and a declared incident carrying its runbooks on the Slack root message, in
the first thread reply and in `im status`, an alert's own link and attributes included; never markup."""

from __future__ import annotations

import json

import pytest

from bot.domain.incidents import Actor
from bot.domain.models import Origin
from tests.harness import AppHarness
from tests.pd_support import Terminal

CHANNEL = "C0INCIDENT"
WIKI = "https://wiki.example.com/runbooks/payments"
WIKI_DB = "https://wiki.example.com/runbooks/payments-db?section=replicas&x=1"


@pytest.fixture
def im(sqlite_url: str, monkeypatch, capsys) -> Terminal:  # type: ignore[no-untyped-def]
    return Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url})


def test_set_list_replace_and_remove_in_a_terminal(im: Terminal) -> None:
    assert f"Runbook for payments set to {WIKI}" in im.ok("runbook", "set", "--service", "Payments", WIKI)
    out = im.ok("runbook", "set", "--service", "payments", WIKI_DB, "--match", "class=db")
    assert f"Runbook for payments (class=db) set to {WIKI_DB}" in out
    assert "already" in im.ok("runbook", "set", "-s", "payments", WIKI)
    replaced = im.ok("runbook", "set", "-s", "payments", WIKI + "-v2")
    assert f"(was {WIKI})" in replaced
    listed = im.ok("runbook", "list")
    assert "(every incident)" in listed and "class=db" in listed and WIKI + "-v2" in listed
    assert json.loads(im.ok("runbook", "list", "--service", "nothing-here", "--json"))["rows"] == []
    assert "removed" in im.ok("runbook", "remove", "--service", "payments", "--match", "class=db")
    assert "nothing changed" in im.ok("runbook", "remove", "--service", "payments", "--match", "class=db")
    assert json.loads(im.ok("runbook", "list", "--json"))["rows"] == [["payments", "(every incident)", WIKI + "-v2"]]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "is not an http(s) URL"),
        ("ftp://files.example.com/runbook", "is not an http(s) URL"),
        ("https://wiki.example.com/a b", "no spaces"),
        ("https://evil.example.com|click here", "no spaces, quotes, <, >, |"),
        ("<https://evil.example.com|x>", "no spaces, quotes, <, >, |"),
        ("https://", "is not an http(s) URL"),
        ("wiki.example.com/runbook", "is not an http(s) URL"),
    ],
)
def test_bad_urls_are_refused_with_exit_2_and_nothing_stored(im: Terminal, url: str, reason: str) -> None:
    ran = im("runbook", "set", "--service", "payments", url)
    assert ran.code == 2, ran
    assert reason in ran.err and "Traceback" not in ran.err
    assert json.loads(im.ok("runbook", "list", "--json"))["rows"] == []


def test_bad_matches_and_services_are_refused(im: Terminal) -> None:
    for argv in (
        ("--service", "payments", WIKI, "--match", "class"),
        ("--service", "payments", WIKI, "--match", "=db"),
        ("--service", "pay ments", WIKI),
    ):
        ran = im("runbook", "set", *argv)
        assert ran.code == 2 and "im: " in ran.err, ran
    assert im("runbook", "set", WIKI).code == 2, "--service is required"


def test_a_declared_incident_carries_its_runbooks_everywhere(app: AppHarness) -> None:
    for text in (
        f"runbook set --service payments {WIKI}",
        f'runbook set --service payments {WIKI_DB} --match "class=db"',
        "runbook set --service payments https://wiki.example.com/sev1 --match severity=SEV-1",
        "runbook set --service web https://wiki.example.com/web",
    ):
        assert "set to" in app.command(text).json()["text"]
    app.command('declare --sev SEV-3 --title "Card payments failing" --service payments').json()
    app.wait_idle()
    assert app.fake is not None
    root = app.fake.messages(CHANNEL)[0]
    blocks = json.dumps(root.blocks)
    assert f"<{WIKI}|Runbook (payments)>" in blocks
    assert "payments-db" not in blocks and "sev1" not in blocks and "/web" not in blocks, "only what matches"
    first = app.fake.replies(CHANNEL, root.ts)[0]
    assert f"<{WIKI}|Runbook (payments)>" in first.text
    status = app.command("status --incident INC-1").json()["text"]
    assert WIKI in status and "Runbook (payments)" in status
    assert app.fake.violations == []


def test_matches_by_alert_attributes_and_the_alerts_own_link(app: AppHarness) -> None:
    app.command(f"runbook set --service payments {WIKI}")
    app.command(f'runbook set --service payments {WIKI_DB} --match "class=db"')
    # what alert intake passes on a declaration: the alert's attributes and its runbook_url annotation
    incident = app.im.incidents.declare(
        title="PaymentsDBReplicaLag",
        severity="SEV-2",
        services=["payments"],
        actor=Actor(Origin.SCHEDULER, "alert/prometheus", "Alertmanager"),
        context={
            "alert_attributes": {"class": "DB", "component": "payments"},
            "runbook_url": "https://runbooks.example.com/lag",
            "slack_channel": CHANNEL,
        },
    )
    assert incident is not None
    app.wait_idle()
    assert app.fake is not None
    root = app.fake.messages(CHANNEL)[-1]
    line = next(b for b in root.blocks or [] if b.get("block_id") == "runbooks")["elements"][0]["text"]
    assert line.index("runbooks.example.com/lag") < line.index("payments-db") < line.index(f"{WIKI}|"), line
    assert "Runbook (from the alert)" in line and "Runbook (payments, class=db)" in line
    assert "&amp;x=1" in line, "the URL's & is escaped inside the link"


def test_hostile_alert_links_never_become_markup(app: AppHarness) -> None:
    for url in ("https://evil.example.com|<!channel>", "javascript:alert(1)", "https://x.example.com> <!here"):
        app.im.incidents.declare(
            title="Disk full",
            severity="SEV-3",
            services=["web"],
            actor=Actor(Origin.SCHEDULER, "alert/x", "x"),
            context={"runbook_url": url, "slack_channel": CHANNEL},
        )
    app.wait_idle()
    assert app.fake is not None
    for message in app.fake.messages(CHANNEL):
        text = json.dumps(message.blocks) + message.text
        assert "<!channel>" not in text and "<!here" not in text and "evil.example.com" not in text
        assert not any(b.get("block_id") == "runbooks" for b in message.blocks or [])


def test_an_alert_through_the_real_endpoint_brings_its_runbooks(database_url: str, fake_slack, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from tests.test_alerts import World

    world = World(database_url, fake_slack, Terminal(monkeypatch, capsys, {}))
    try:
        world.terminal.ok("runbook", "set", "--service", "payments", WIKI_DB, "--match", "class=db")
        world.terminal.ok("runbook", "set", "--service", "payments", WIKI, "--match", "class=network")
        key = world.add_source("mon", "--service", "payments")
        body = {
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": "lag-1",
            "payload": {"summary": "Replica lag 30s", "source": "db-3", "severity": "error", "class": "db"},
        }
        assert world.post("mon", body).status_code == 202
        world.drain()
        root = fake_slack.messages(CHANNEL)[0]
        line = next(b for b in root.blocks or [] if b.get("block_id") == "runbooks")["elements"][0]["text"]
        assert "payments-db" in line and f"{WIKI}|" not in line, line
        assert any("payments-db" in text for text in world.thread(1))
    finally:
        world.close()
