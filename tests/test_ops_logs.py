"""`im logs` and PagerDuty debug mode, through the real entry points: the served app (or `im serve` in
its own process) logs, its log shipper stores the lines, and `im logs` in a terminal reads them back,
filtered, as text or JSON lines, following new ones. With every debug switch on, not one secret and no
email address's local part is in any output: the server's, the terminal's, or `im logs`'."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue

import pytest

from bot.wiring import build
from integrations.pagerduty.plugin import registry_for
from tests.fakes import slack_requests as sr
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import BOT_TOKEN, SIGNING_SECRET, make_settings
from tests.pd_support import PD_KEY, SECRET_KEY, PagerDutyWorld, connector_config
from tests.test_cli import clean_env
from tests.test_serve import Server, wait_until

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(@|%40)example\.com")  # with a local part: a masked one is `***@`


def run_im(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.main", *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def logged(world: PagerDutyWorld, *argv: str) -> list[dict[str, object]]:
    out = world.terminal.ok("logs", "--json", *argv)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_im_logs_shows_what_the_server_did_filtered_as_the_seed_asks(
    world: PagerDutyWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # `im serve`'s default level (the harness does not configure logging)
    app, pd = world.app, world.pd
    assert "INC-1 declared" in app.command('declare --sev SEV-2 --title "Checkout down" --service db').json()["text"]
    app.wait_idle()
    remote = next(iter(pd.incidents.values()))
    pd.notify_subscriptions("incident.acknowledged", remote.id)
    pd.send_webhook(f"{world.url}/connectors/prod/webhook", "incident.acknowledged", remote.id, secrets=["forged-secret-1"])
    app.wait_idle()

    wait_until(
        lambda: any("invalid signature" in str(r["message"]) for r in logged(world, "--level", "warning")), 10, "the refusal"
    )
    lines = [r for r in logged(world, "--component", "webhook") if "accepted" in str(r["message"])]
    assert lines[0]["component"] == "webhook" and lines[0]["fields"]["connector"] == "prod"  # type: ignore[index]
    text = world.terminal.ok("logs", "--component", "webhook", "--filter", "pagerduty")  # the seed's troubleshooting command
    assert "PagerDuty webhook incident.acknowledged" in text and "accepted" in text
    assert "WARNING" in text and "invalid signature" in text, "a forged delivery is there too"
    every = logged(world, "--lines", "10000")
    assert [r["id"] for r in every] == sorted(r["id"] for r in every), "newest last"
    assert {r["component"] for r in every} >= {"webhook", "pagerduty"}
    warnings = logged(world, "--level", "warning")
    assert warnings and all(r["level"] in ("warning", "error", "critical") for r in warnings)
    about = logged(world, "--incident", "INC-1")
    assert about and all(r["fields"].get("incident") == 1 for r in about)  # type: ignore[union-attr]
    assert logged(world, "--since", "10m") and logged(world, "--filter", "no line says this") == []

    for argv, says in (
        (("--component", "database"), "'database' is not a component (expected one of: webhook, slack, pagerduty"),
        (("--since", "yesterday"), "'yesterday' is not a duration"),
        (("--level", "loud"), "'loud' is not a log level"),
        (("--incident", "12x"), "'12x' is not an incident ID"),
    ):
        ran = world.terminal("logs", *argv)
        assert ran.code == 2 and says in ran.err and "Traceback" not in ran.err, (argv, ran)


def test_follow_shows_new_lines_as_they_come(world: PagerDutyWorld, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.INFO)
    app, pd = world.app, world.pd
    app.command('declare --sev SEV-3 --title "Queue slow" --service db')
    app.wait_idle()
    remote = next(iter(pd.incidents.values()))
    env = clean_env(world.im.settings.database_url, IM_SECRET_KEY=SECRET_KEY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.main", "logs", "--follow", "--component", "webhook", "--json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: Queue[str] = Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    try:
        for event in ("incident.acknowledged", "incident.resolved"):
            pd.notify_subscriptions(event, remote.id)
            while True:
                try:
                    record = json.loads(lines.get(timeout=15))
                except Empty:
                    raise AssertionError(
                        f"no line for {event}: {proc.stderr.read() if proc.poll() is not None else ''}"
                    ) from None
                if event in record["message"]:
                    break
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def pd_account() -> FakePagerDuty:
    from tests.pd_support import pagerduty_account

    fake = pagerduty_account()
    yield fake  # type: ignore[misc]
    fake.stop()


def test_debug_mode_logs_each_call_and_no_secret_anywhere(
    tmp_path: Path, fake_slack: FakeSlack, pd_account: FakePagerDuty
) -> None:
    pd = pd_account
    database = f"sqlite:///{tmp_path / 'im.db'}"
    env = clean_env(
        database,
        IM_SECRET_KEY=SECRET_KEY,
        IM_PUBLIC_URL="http://127.0.0.1:9",
        IM_SLACK_CHANNEL="C0INCIDENT",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.base_url,
        PAGERDUTY_DEBUG="true",
        IM_LOG_LEVEL="debug",
    )
    outputs: list[str] = []

    def im(*argv: str, check: bool = True) -> str:
        ran = run_im(env, tmp_path, *argv)
        outputs.append(ran.stderr)  # the logs (stdout is the command's answer: `connector test` names the From user)
        assert ran.returncode == 0 or not check, f"im {' '.join(argv)} -> {ran.returncode}\n{ran.stdout}\n{ran.stderr}"
        return ran.stdout

    config = connector_config(pd) | {"debug": True, "log_requests": True, "log_responses": True}
    im("connector", "add", "pagerduty", "prod", "--config", json.dumps(config))  # the seed's keys, accepted at add time
    assert "updated debug, log-requests, log-responses" in im(
        "connector", "config", "prod", "--debug", "true", "--log-requests", "true", "--log-responses", "true"
    )
    im("connector", "webhook", "prod", "--enable")  # PagerDuty answers with the new signing secret
    im("connector", "test", "prod", check=False)  # its check of IM_PUBLIC_URL fails here: nobody serves it yet
    setup = build(make_settings(database, IM_SECRET_KEY=SECRET_KEY))
    registry = registry_for(setup)
    webhook_secrets = registry.webhook_secrets(registry.get("prod"))
    setup.store.dispose()

    server_env = {k: v for k, v in env.items() if k.startswith(("IM_", "SLACK_", "PAGERDUTY_")) and k != "IM_DATABASE_URL"}
    server = Server(tmp_path, **server_env)
    try:
        slack = sr.SlackClient(server.url, SIGNING_SECRET)
        declared = slack.post(sr.slash_command('declare --sev SEV-2 --title "Card payments failing" --service api'))
        assert declared.status_code == 200
        remote = wait_until(lambda: next(iter(pd.incidents.values()), None), 60, "the PagerDuty incident")
        url = f"{server.url}/connectors/prod/webhook"
        assert pd.send_webhook(url, "incident.acknowledged", remote.id, secrets=webhook_secrets).status_code == 202
        calls = wait_until(
            lambda: [
                line for line in im("logs", "--component", "pagerduty", "--filter", "PagerDuty POST").splitlines() if "->" in line
            ],
            30,
            "the server's PagerDuty calls in `im logs`",
        )
        stored = im("logs", "--json", "--lines", "10000")
    finally:
        slack.close()
        server.stop()
    outputs += [server.stdout, server.stderr, stored]

    # each call: method, path, status, time, rate-limit headers; bodies (truncated) with debug on
    pattern = (
        r"PagerDuty POST /incidents \(From: \*\*\*@example\.com\) -> 201 in \d+ ms \[ratelimit-limit=\d+ ratelimit-remaining=\d+"
    )
    assert any(re.search(pattern, line) and "response body: {" in line for line in calls), calls
    assert any("request body: {" in line for line in stored.splitlines()), "log_requests: the request bodies too"
    assert re.search(r"PagerDuty POST /webhook_subscriptions -> 20[01] .*\"secret\":\"\[redacted\]\"", "\n".join(outputs))
    everything = "\n".join(outputs)
    for secret in [PD_KEY, SECRET_KEY, BOT_TOKEN, SIGNING_SECRET, *webhook_secrets]:
        assert secret not in everything, f"a secret ({secret[:4]}...) reached a log"
    leaks = [everything[max(0, m.start() - 80) : m.end() + 10] for m in EMAIL.finditer(everything)]
    assert not leaks, leaks[:5]
