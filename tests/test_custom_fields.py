"""Custom incident fields (`environment`, `customer_impact`, `root_cause`) as a user sets them: `--field` on
declare and the `field` command in a terminal and in Slack, the declare modal's input, and the PagerDuty
connector mapping them into the incident's details (an unknown source field refused when configured)."""

from __future__ import annotations

import json

import httpx

from bot.domain.models import Incident
from bot.store import Store
from tests.fakes import slack_requests as sr
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.harness import AppHarness
from tests.pd_support import SECRET_KEY, PagerDutyWorld, Terminal, connector_config


def _incidents(url: str) -> list[Incident]:
    store = Store(url)
    try:
        with store.read() as session:
            from sqlmodel import select

            return list(session.exec(select(Incident)))
    finally:
        store.dispose()


def test_fields_on_declare_and_with_the_field_command_in_a_terminal(sqlite_url: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    im = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url})
    im.ok(
        "declare",
        "--sev",
        "SEV-2",
        "--title",
        "Checkout slow",
        "--service",
        "web",
        "--field",
        "environment=production",
        "-f",
        "Customer_Impact=card payments fail for 5%",
    )
    status = im.ok("status", "--incident", "INC-1")
    assert "  environment:  production" in status and "  customer_impact: card payments fail for 5%" in status
    out = im.ok("field", "INC-1", "root_cause=bad deploy", "environment=staging")
    assert "INC-1: Field root_cause: bad deploy; environment: staging (was production)" in out
    assert "nothing changed" in im.ok("field", "INC-1", "root_cause=bad deploy")
    im.ok("field", "--incident", "INC-1", "customer_impact=")
    timeline = im.ok("timeline", "-i", "INC-1")
    assert "Declared SEV-2: Checkout slow (environment: production, customer_impact: card payments fail for 5%)" in timeline
    assert "Field customer_impact cleared (was card payments fail for 5%)" in timeline
    shown = json.loads(im.ok("field", "INC-1", "--json"))
    assert shown["incident"]["fields"] == {"environment": "staging", "root_cause": "bad deploy"}


def test_bad_fields_are_refused_and_change_nothing(sqlite_url: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    im = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url})
    base = ("declare", "--sev", "2", "--title", "x", "--service", "web")
    for field, message in {
        "enviroment=prod": "'enviroment' is not an incident field (known: environment, customer_impact, root_cause)",
        "environment": "'environment' is not a field (expected key=value",
        "environment=": "environment: a value is needed",
        "root_cause=" + "x" * 501: "at most 500 are allowed",
    }.items():
        ran = im(*base, "--field", field)
        assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err, (field, ran)
    assert _incidents(sqlite_url) == []
    im.ok(*base, "--field", "environment=prod")
    ran = im("field", "INC-1", "environment=dev", "nope=1")
    assert ran.code == 2 and "'nope' is not an incident field" in ran.err
    ran = im("field", "INC-1", "environment=dev", "environment=test")
    assert ran.code == 2 and "given twice" in ran.err
    assert _incidents(sqlite_url)[0].fields == {"environment": "prod"}, "a refused change changes nothing"
    im.env["IM_INCIDENT_FIELDS"] = "region,Bad Name"
    ran = im("status")
    assert ran.code == 2 and "IM_INCIDENT_FIELDS" in ran.err and "'Bad Name' is not a field name" in ran.err
    im.env["IM_INCIDENT_FIELDS"] = "region,tier"
    assert im.ok("field", "INC-1", "region=eu-west-1")
    assert "'environment' is not an incident field (known: region, tier)" in im("field", "INC-1", "environment=x").err


def _declare_modal(app: AppHarness, fields: str) -> httpx.Response:
    values = {
        "title": {"value": sr.text_input("Checkout errors")},
        "severity": {"value": sr.static_select("SEV-2")},
        "services": {"value": sr.text_input("web")},
        "fields": {"value": sr.text_input(fields)},
    }
    return app.submit("incident_declare_modal", values)


def test_fields_from_slack_command_and_modal(app: AppHarness) -> None:
    body = app.command('declare --sev SEV-3 --title "Search slow" -s search --field environment=prod').json()
    assert "INC-1 declared" in body["text"]
    body = app.command("field INC-1 'root_cause=cache stampede'").json()
    assert body["text"] == "INC-1: Field root_cause: cache stampede"
    bad = _declare_modal(app, "environment=prod\nservice=web").json()
    assert bad["response_action"] == "errors" and "'service' is not an incident field" in bad["errors"]["fields"]
    good = _declare_modal(app, "environment=production\n\ncustomer_impact=high\n")
    assert good.json()["response_action"] == "update"
    app.wait_idle()
    first, second = sorted(_incidents(app.settings.database_url), key=lambda i: i.number)
    assert first.fields == {"environment": "prod", "root_cause": "cache stampede"}
    assert second.fields == {"environment": "production", "customer_impact": "high"}
    assert app.fake is not None
    # The root message is posted once and updated in place; a worker that posts it late posts the latest
    # state at once, so the last write of either kind is the one that counts.
    roots = [
        json.dumps(c.args)
        for c in app.fake.calls
        if (c.method == "chat.update" or (c.method == "chat.postMessage" and "thread_ts" not in c.args))
        and "Search slow" in json.dumps(c.args)
    ]
    assert "environment: prod \\u00b7 root_cause: cache stampede" in roots[-1], "the root message shows the fields"


def test_mapped_fields_reach_pagerduty_details(database_url: str, fake_slack, pd: FakePagerDuty, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    world = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys, direction="outbound")
    try:
        ran = world.terminal("connector", "config", "prod", "--custom-field-mappings", '{"enviroment": "custom_details.env"}')
        assert ran.code == 2 and "custom_field_mappings: 'enviroment' is not an im field" in ran.err
        ran = world.terminal("connector", "config", "prod", "--custom-field-mappings", '{"environment": "not a field!"}')
        assert ran.code == 2 and "is not a PagerDuty field name" in ran.err
        mappings = {
            "environment": "custom_details.environment",
            "customer_impact": "custom_details.customer_impact",
            "severity": "custom_details.im_severity",
        }
        world.terminal.ok("connector", "config", "prod", "--custom-field-mappings", json.dumps(mappings))
        world.app.command('declare --sev SEV-2 --title "DB down" -s db --field environment=production --field root_cause=disk')
        world.app.wait_idle()
        [incident] = pd.incidents.values()
        details = str(incident.details)
        assert "environment: production" in details and "im_severity: SEV-2" in details
        assert "root_cause" not in details, "only mapped fields go to PagerDuty"
        world.app.command("field INC-1 'customer_impact=checkout down'")
        world.app.command("field INC-1 root_cause=full-disk")
        world.app.wait_idle()
        notes = [n.content for n in incident.notes]
        assert any("customer_impact: checkout down" in n for n in notes), notes
        assert not any("root_cause" in n for n in notes), "an unmapped field is not sent"
    finally:
        world.stop()


def test_add_refuses_an_unknown_source_field(sqlite_url: str, pd: FakePagerDuty, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    im = Terminal(monkeypatch, capsys, {"IM_DATABASE_URL": sqlite_url, "IM_SECRET_KEY": SECRET_KEY})
    config = {**connector_config(pd), "custom_field_mappings": {"im_field": "pd_custom_field"}}
    ran = im("connector", "add", "pagerduty", "prod", "--config", json.dumps(config))
    assert ran.code == 2 and "'im_field' is not an im field" in ran.err
    assert im.ok("connector", "list").strip() == "(none)"
