"""`im report --include-pagerduty` and the postmortem's people, from the fake PagerDuty's incident logs
(GET /incidents/{id}/log_entries, validated against the OpenAPI); a PagerDuty outage is a note on the
report, never a failure."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.pd_support import PagerDutyWorld


@pytest.fixture
def world(database_url: str, fake_slack: FakeSlack, pd: FakePagerDuty, monkeypatch, capsys) -> Iterator[PagerDutyWorld]:  # type: ignore[no-untyped-def]
    w = PagerDutyWorld(database_url, fake_slack, pd, monkeypatch, capsys)
    yield w
    w.stop()


def test_report_with_pagerduty_log_and_outage(world: PagerDutyWorld) -> None:
    pd = world.pd
    world.terminal.ok("declare", "--sev", "SEV-2", "--title", "DB down", "--service", "db")
    world.app.wait_idle()
    (remote,) = pd.incidents.values()
    pd.set_incident_status(remote.id, "acknowledged", agent_user_id="PUALICE")

    report = json.loads(world.terminal.ok("report", "--since", "1d", "--include-pagerduty", "--format", "json"))
    (section,) = report["external"]
    assert section["system"] == "PagerDuty" and section["notes"] == []
    (facts,) = section["incidents"]["INC-1"]
    assert facts["label"] == f"#{remote.number} (db)" and facts["paged"] == ["Ops Robot (auto)"]
    assert facts["acknowledged_by"] == ["Alice Doe"] and facts["first_notification_at"] is not None
    load = {p["person"]: (p["pages"], p["acknowledgements"]) for p in section["load"]}
    assert load == {"Ops Robot": (1, 0), "Alice Doe": (0, 1)}
    asked = [r for r in pd.requests if r.path == f"/incidents/{remote.id}/log_entries"]
    assert len(asked) == 1, "read once for the run"
    draft = world.terminal.ok("postmortem", "INC-1")
    assert "- **Paged by PagerDuty:** Ops Robot (auto)" in draft and "- **Acknowledged in PagerDuty:** Alice Doe" in draft

    pd.down = True
    ran = world.terminal("report", "--since", "1d", "--include-pagerduty")
    assert ran.code == 0, ran.err
    assert (
        "PagerDuty connector 'prod' could not be read" in ran.out and "1 linked PagerDuty incident(s) have no figures" in ran.out
    )
    assert "MTTA:" in ran.out
    assert pd.violations == [] and pd.response_violations == []
