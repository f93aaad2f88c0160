"""The terminal's fast `im status` (bot/fast_status.py, sqlite3 only) prints exactly what the full path
prints: the same stdout, stderr and exit code, byte for byte, on one populated store; and it steps aside
(the full path answers) whenever it could not be sure."""

from __future__ import annotations

import difflib
import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import utcnow
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.domain.people import PersonRef
from bot.domain.runbooks import set_runbook
from bot.fast_status import FREE, SETTING_PREFIXES, run
from bot.wiring import build
from tests.harness import make_settings
from tests.test_cli import clean_env

CLI = Actor(Origin.CLI, "dana", "dana")
SLACK = Actor(Origin.SLACK, "U0ALICE", "alice")
HOSTILE = "<!channel> *bold* `code` &amp; <https://evil.example|click> \u202eevil\u202c ✓ 🔥 \x1b[31mred\x1b[0m 'q' \"dq\" \\"

# Runs every argv through `main` in ONE process (their imports are paid once) and prints each one's
# stdout, stderr and exit code as JSON. FAST: bot.main as a user runs it; FULL: the terminal without the fast path.
RUNNER = """
import contextlib, io, json, sys
from bot import __version__
from bot.main import main, register_commands
from bot.command_index import ENTRIES, ENVIRONMENT
from bot.wiring import build_for_terminal
from commands import cli
from commands.grammar import register_index

def full(argv):
    register_index(ENTRIES, ENVIRONMENT, load_all=register_commands)
    return cli.main(argv, build=build_for_terminal, version=__version__)

entry = main if sys.argv[1] == "fast" else full
found = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = entry(argv)
    found.append([out.getvalue(), err.getvalue(), code])
print(json.dumps(found))
"""


def populate(url: str) -> None:
    """Incidents of every shape `status` shows, written by the app itself, then a few rows the adapters write."""
    im = build(make_settings(url))
    svc = im.incidents
    set_runbook(im.store, service="db", url="https://wiki.example/db", match=None, actor="cli:dana")
    set_runbook(im.store, service="db", url="https://wiki.example/db-sev1", match="severity=SEV-1", actor="cli:dana")
    # 1: open, runbook links, custom fields, a description
    svc.declare(
        title="Database slow",
        severity="SEV-2",
        services=["db"],
        actor=CLI,
        description="p99 up",
        fields=["environment=production", "customer_impact=high"],
    )
    # 2: acknowledged by someone from Slack, with an owner and roles, a Slack thread, a dead delivery
    svc.declare(title=HOSTILE, severity="SEV-1", services=["web", "api", "db"], actor=SLACK)
    svc.assign(2, PersonRef(slack_user_id="U0BOB", name="Bob Builder"), actor=SLACK)
    # not in alphabetical order: JSON keeps the rows' order, which both paths must read alike
    svc.set_role(2, "communications", PersonRef(pagerduty_user_id="PDAVE"), actor=SLACK)
    svc.set_role(2, "commander", PersonRef(email="carol@example.com"), actor=SLACK)
    svc.transition(2, "acknowledge", actor=SLACK, note="rolling back")
    # 3: resolved (durations), 4: closed (not listed), 5: reopened after a resolve, 6: a breached and a warned clock
    svc.declare(title="Queue backlog", severity="SEV-3", services=["queue"], actor=CLI)
    svc.transition(3, "acknowledge", actor=CLI)
    svc.transition(3, "resolve", actor=CLI, note="drained — <b>ok</b>")
    svc.declare(title="Closed one", severity="SEV-4", services=["misc"], actor=CLI)
    svc.transition(4, "close", actor=CLI)
    svc.declare(title="Flapping", severity="SEV-2", services=["edge"], actor=CLI)
    svc.transition(5, "acknowledge", actor=CLI)
    svc.transition(5, "resolve", actor=CLI, note="fixed")
    svc.transition(5, "reopen", actor=CLI, note="back again")
    svc.declare(title="Ünïcödé ταυτότητα 名前", severity="SEV-4", services=["ü"], actor=CLI, fields=["root_cause=x=y"])
    svc.declare(title="Old", severity="SEV-1", services=["old"], actor=CLI)
    im.store.dispose()
    at = utcnow().replace(tzinfo=None)
    stored = "%Y-%m-%d %H:%M:%S.%f"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "insert into slack_user (user_id, name, real_name, deleted, fetched_at) values ('U0ALICE', 'alice', 'Alice A.', 0, ?)",
            (at.strftime(stored),),
        )
        conn.execute(
            "insert into slack_thread (incident_id, channel, ts, war_room_announced) values (2, 'C0INC', '1700000000.123456', 0)"
        )
        conn.execute("insert into slack_thread (incident_id, channel, ts, war_room_announced) values (1, 'C0INC', NULL, 0)")
        for incident, status in ((2, "dead"), (2, "dead"), (3, "dead"), (None, "pending")):
            conn.execute(
                "insert into outbox_job (destination, kind, incident_id, ordering_key, payload, status, attempts, available_at, created_at, last_error) "
                "values ('slack', 'post_root', ?, 'k', '{}', ?, 5, ?, ?, ?)",
                (
                    incident,
                    status,
                    at.strftime(stored),
                    (at - timedelta(minutes=5)).strftime(stored),
                    "channel_not_found <x>" if incident != 3 else None,
                ),
            )
        # SEV-1 declared 4h30 ago: its ack clock breached, its resolve clock past the warning
        conn.execute(
            "update incident set declared_at = ? where id = 7", ((at - timedelta(hours=3, minutes=30)).strftime(stored),)
        )
        conn.execute(
            "update incident set declared_at = ? where id = 6",
            ((at - timedelta(hours=3, minutes=30, seconds=7)).strftime(stored),),
        )


ARGVS: list[list[str]] = [
    ["status"],
    ["status", "--json"],
    ["--json", "status"],
    ["status", "--utc"],
    ["--utc", "--json", "status"],
    *[["status", "--incident", f"INC-{n}"] for n in range(1, 8)],
    *[["status", "-i", f"inc-{n}", "--json"] for n in range(1, 8)],
    ["status", "--incident=7", "--utc"],
    ["status", "-i", "INC-002"],
    # refused: the full path says why (stderr, exit 2), whichever entry point ran
    ["status", "-i", "INC-99"],
    ["status", "-i", "bogus"],
    ["status", "-i", "INC-99999999999"],
    ["status", "--incident"],
    ["status", "extra"],
]


def both(tmp_path: Path, argvs: list[list[str]], **env: str) -> tuple[list[Any], list[Any]]:
    environ = clean_env(f"sqlite:///{tmp_path / 'im.db'}", TZ="America/St_Johns", **env)
    found = []
    for entry in ("fast", "full"):
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, entry, json.dumps(argvs)], env=environ, cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        found.append(json.loads(proc.stdout))
    return found[0], found[1]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    populate(f"sqlite:///{tmp_path / 'im.db'}")
    return tmp_path


def test_fast_and_full_status_print_the_same(store: Path) -> None:
    fast, full = both(store, ARGVS)
    for argv, mine, theirs in zip(ARGVS, fast, full, strict=True):
        diff = difflib.unified_diff(theirs[0].splitlines(), mine[0].splitlines(), "full", "fast", lineterm="")
        assert mine == theirs, f"{argv}\n" + "\n".join(diff)
    listed = json.loads(full[1][0])
    assert [v["id"] for v in listed["incidents"]] == ["INC-7", "INC-6", "INC-5", "INC-3", "INC-2", "INC-1"]
    detail = json.loads(full[ARGVS.index(["status", "-i", "inc-2", "--json"])][0])["incident"]
    assert detail["owner"]["name"] == "Bob Builder" and len(detail["roles"]) == 2 and detail["declared_by"] == "Alice A."
    assert [link["system"] for link in detail["links"]] == ["slack", "runbook", "runbook"]
    assert {c["state"] for c in json.loads(full[ARGVS.index(["status", "-i", "inc-7", "--json"])][0])["incident"]["sla"]} == {
        "breached",
        "warned",
    }
    assert "! delivery:" in full[ARGVS.index(["status", "--incident", "INC-2"])][0]
    assert full[ARGVS.index(["status", "-i", "INC-99"])][2] == 2


def test_the_fast_path_answers_every_status_it_can(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    environ = clean_env(f"sqlite:///{store / 'im.db'}")
    for argv in ARGVS[: ARGVS.index(["status", "-i", "INC-99"])]:
        assert run(argv, environ, store) is not None, argv
    for argv in ARGVS[ARGVS.index(["status", "-i", "INC-99"]) :]:
        assert run(argv, environ, store) is None, argv


@pytest.mark.parametrize(
    "change",
    [
        {"IM_SLACK_CHANNEL": "C0123"},  # a setting with a validator: pydantic-settings' to judge
        {"im_sla_ack": "SEV-1=1m"},  # in any case
        {"IM_DATABASE_URL": "sqlite:///missing.db"},  # the full path creates and migrates it
        {"IM_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test"},
        {".env": "IM_SLA_RESOLVE=SEV-2=1h\n"},
        {".env": 'SLACK_BOT_TOKEN="xoxb-1"\n'},  # quoted: python-dotenv's reading
        {"sql": "update alembic_version set version_num = '0001_initial'"},
        {
            "sql": "insert into connector (name, type, config, webhook_enabled, created_at, updated_at) "
            "values ('pd', 'pagerduty', '{}', 0, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
        },
        {
            "sql": "insert into pagerduty_link (connector, incident_id, service, pd_service_id, assignees, updated_at) "
            "values ('pd', 2, 'db', 'PSVC', '[]', '2026-01-01 00:00:00.000000')"
        },
        {"sql": "update incident set fields = '{\"n\": 1}' where id = 1"},
        {"sql": "update incident set title = x'00ff' where id = 1"},  # not text
        {"sql": "update incident set declared_at = '2026-01-01T00:00:00+02:00' where id = 1"},
    ],
)
def test_the_fast_path_steps_aside_when_unsure(store: Path, change: dict[str, str]) -> None:
    environ = clean_env(f"sqlite:///{store / 'im.db'}")
    if ".env" in change:
        (store / ".env").write_text(change[".env"])
    elif "sql" in change:
        with sqlite3.connect(store / "im.db") as conn:
            try:
                conn.execute(change["sql"])
            except sqlite3.Error as exc:  # a column this test does not know: say which
                pytest.fail(f"{change['sql']}: {exc}")
    else:
        environ.update(change)
    assert run(["status"], environ, store) is None


def test_settings_free_words_are_not_validated() -> None:
    """The settings the fast path lets through have no validator; every setting's variable has a prefix it checks."""
    from pydantic import SecretStr

    from bot.config import Settings

    aliases = {str(field.validation_alias).lower(): name for name, field in Settings.model_fields.items()}
    assert all(alias.startswith(SETTING_PREFIXES) for alias in aliases)
    validated = {
        name for decorator in Settings.__pydantic_decorators__.field_validators.values() for name in decorator.info.fields
    }
    constrained = {name for name, field in Settings.model_fields.items() if field.metadata}
    for alias in FREE - {"im_actor"}:
        assert aliases[alias] not in validated | constrained, alias
        assert Settings.model_fields[aliases[alias]].annotation in (str, SecretStr | None), alias
    assert "im_actor" not in aliases  # who a terminal command is recorded as: read by the terminal, not a setting
