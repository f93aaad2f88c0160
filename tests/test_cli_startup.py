"""A terminal start imports only what its command uses: `im --help` nothing of the database, `im status`
no Slack, HTTP, cryptography, Alembic (the schema is current) or report renderers, and on SQLite (settings
it need not validate) not even SQLAlchemy or pydantic. Checked on the
modules a real `im` process imports (`-X importtime`), not on how long it takes (bench/cli_startup.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import clean_env

NEVER = ("slack_sdk", "slack_bolt", "httpx", "alembic", "fpdf", "cryptography", "starlette", "uvicorn", "apscheduler")
NOT_FOR_HELP = (*NEVER, "sqlalchemy", "sqlmodel", "pydantic", "pydantic_settings")


def imported(argv: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.main", *argv], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    return {line.rsplit("|", 1)[1].strip() for line in lines} - {"package"}


def tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'im.db'}"
    env = clean_env(url)
    # a current schema and an incident to show, made by a process of its own
    subprocess.run(
        [sys.executable, "-m", "bot.main", "declare", "--sev", "SEV-2", "-t", "slow", "-s", "db"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return env


def test_help_imports_nothing_of_the_database_or_the_vendors(env: dict[str, str], tmp_path: Path) -> None:
    for argv in (["--help"], ["help"], ["help", "connector"]):
        assert tops(imported(argv, env, tmp_path)) & set(NOT_FOR_HELP) == set(), argv


@pytest.mark.parametrize("argv", [["status"], ["status", "--incident", "INC-1"], ["status", "--json"]])
def test_status_imports_no_vendor_http_crypto_or_migrations(argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
    modules = imported(argv, env | {"IM_LOG_FORMAT": "text"}, tmp_path)  # a setting to validate: the full path
    assert "bot.domain.incidents" in modules  # it did read the incidents
    assert tops(modules) & set(NEVER) == set()
    assert not {m for m in modules if m.startswith(("bot.slack.app", "bot.slack.listeners", "integrations.pagerduty.api.client"))}


@pytest.mark.parametrize(
    "argv", [["status"], ["status", "--incident", "INC-1"], ["status", "--json"], ["--utc", "status", "-i", "INC-1", "--json"]]
)
def test_status_on_sqlite_reads_with_sqlite3_alone(argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
    """The fast read path (bot/fast_status.py): no ORM, no pydantic, no settings model, nothing of the app's core."""
    modules = imported(argv, env, tmp_path)
    assert "bot.fast_status" in modules and "sqlite3" in modules
    assert tops(modules) & {*NOT_FOR_HELP, "sqlmodel"} == set()
    assert not {m for m in modules if m.startswith(("bot.domain.incidents", "bot.domain.models", "bot.config", "bot.app"))}


def test_a_database_behind_is_migrated_first(tmp_path: Path) -> None:
    """The cheap version check still sends a new database through Alembic."""
    env = clean_env(f"sqlite:///{tmp_path / 'new.db'}")
    modules = imported(["status"], env, tmp_path)
    assert "alembic" in tops(modules)
