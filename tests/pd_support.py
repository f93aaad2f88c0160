"""Shared set-up for PagerDuty connector tests: a fake PagerDuty account, the served app, and the
terminal front end run in-process through its real entry point (`bot.main.main`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from bot.main import main
from integrations.pagerduty.plugin import registry_for
from integrations.pagerduty.tables import PagerDutyLink
from integrations.pagerduty.ticker import Ticker
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, AppHarness, make_settings, reserve_socket, socket_url

SECRET_KEY = "test-secret-key-for-im-connectors"
PD_KEY = "pd-test-key"


def pagerduty_account() -> FakePagerDuty:
    fake = FakePagerDuty(api_key=PD_KEY)
    fake.add_user("PUOPS01", "Ops Robot", "ops@example.com")
    fake.add_user("PUALICE", "Alice Doe", "alice@example.com")
    fake.add_user("PUCAROL", "Carol Lin", "carol@example.com")
    fake.add_escalation_policy("PESC001", "Default", oncall_user_ids=["PUOPS01"])
    fake.add_escalation_policy("PESCAPI", "API team", oncall_user_ids=["PUCAROL"])
    fake.add_service("PGEN001", "General Service", "PESC001")
    fake.add_service("PDAT001", "Database Service", "PESC001")
    fake.add_service("PAPI001", "API Service", "PESCAPI")
    return fake.start()


def connector_config(fake: FakePagerDuty, direction: str = "bidirectional", **custom: Any) -> dict[str, Any]:
    return {
        "base_url": fake.base_url,
        "api_key": PD_KEY,
        "sync_direction": direction,
        "sync_interval": "1m",
        "custom": {
            "service_id": "PGEN001",
            "from_email": "ops@example.com",
            "escalation_policy_id": "PESC001",
            "service_mappings": {"db": "PDAT001", "api": "PAPI001"},
            **custom,
        },
    }


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Terminal:
    """`im ...` through the terminal's own entry point, with this test's environment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
        self.monkeypatch, self.capsys, self.env = monkeypatch, capsys, env

    def __call__(self, *argv: str) -> Ran:
        with self.monkeypatch.context() as m:
            for name, value in self.env.items():
                m.setenv(name, value)
            self.capsys.readouterr()
            code = main(list(argv))
            captured = self.capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    def ok(self, *argv: str) -> str:
        ran = self(*argv)
        assert ran.code == 0, f"im {' '.join(argv)} -> {ran.code}\n{ran.out}\n{ran.err}"
        return ran.out


class PagerDutyWorld:
    """The app (Slack + PagerDuty connector) served over HTTP, with both fakes."""

    def __init__(
        self,
        database_url: str,
        slack: FakeSlack,
        pd: FakePagerDuty,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        *,
        direction: str = "bidirectional",
        rate_limits: str = "off",
        **custom: Any,
    ) -> None:
        sock = reserve_socket()
        self.url = socket_url(sock)
        env = {
            "IM_DATABASE_URL": database_url,
            "IM_SECRET_KEY": SECRET_KEY,
            "IM_PUBLIC_URL": self.url,
            "IM_SLACK_CHANNEL": "C0INCIDENT",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "IM_RATE_LIMITS": rate_limits,
        }
        self.slack, self.pd = slack, pd
        self.app = AppHarness(
            make_settings(
                database_url,
                slack,
                IM_SECRET_KEY=SECRET_KEY,
                IM_PUBLIC_URL=self.url,
                IM_SLACK_CHANNEL="C0INCIDENT",
                IM_RATE_LIMITS=rate_limits,
            ),
            slack,
            sock=sock,
        )
        self.im = self.app.im
        self.terminal = Terminal(monkeypatch, capsys, env)
        self.terminal.ok(
            "connector", "add", "pagerduty", "prod", "--config", json.dumps(connector_config(pd, direction, **custom))
        )
        self.registry = registry_for(self.im)
        self.ticker = Ticker(self.im, self.registry)

    def enable_webhook(self) -> None:
        self.terminal.ok("connector", "webhook", "prod", "--enable")

    def links(self, incident_id: int | None = None) -> list[PagerDutyLink]:
        with self.im.store.read() as session:
            query = select(PagerDutyLink).order_by(PagerDutyLink.id)
            if incident_id is not None:
                query = query.where(PagerDutyLink.incident_id == incident_id)
            return list(session.exec(query))

    def writes_to_pd(self) -> list[Any]:
        return [r for r in self.pd.requests if r.method in ("POST", "PUT", "DELETE") and "webhook_subscriptions" not in r.path]

    def stop(self) -> None:
        self.app.stop()
