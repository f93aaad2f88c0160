"""The deployment files (Dockerfile, compose.yaml, docs/im.service, docs/im.env.example) against the code.

No Docker engine runs here, so the image is never built: instead each file is parsed and every `im`
command it runs is parsed by the real grammar, every Python it runs is compiled (the HEALTHCHECK is
even run against a served app), every port is the one im listens on, and every variable it sets is a
setting im reads (Settings' validation aliases) with a value im accepts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings, load_settings
from bot.wiring import register_commands
from commands.grammar import UsageError, parse
from tests.harness import AppHarness, make_settings

ROOT = Path(__file__).resolve().parents[1]
ALIASES = {str(f.validation_alias) for f in Settings.model_fields.values()}
DEFAULT_PORT = Settings.model_fields["port"].default


def check_im_command(argv: list[str]) -> None:
    """`im ...` as a deployment file runs it: a command the grammar knows, with options it accepts."""
    assert argv and Path(argv[0]).name == "im", argv
    register_commands()
    try:
        parse(argv[1:], prog_prefix="im")
    except UsageError as exc:
        raise AssertionError(f"{shlex.join(argv)}: {exc}") from None


def check_variables(variables: dict[str, str], where: str) -> None:
    unknown = sorted(set(variables) - ALIASES)
    assert not unknown, f"{where} sets variables im does not read: {unknown}"
    load_settings(_env_file=None, **variables)  # and im accepts their values (ConfigError names the bad one)


# -- Dockerfile --------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            found.append((instruction.upper(), rest.strip()))
    return found


def docker_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in instructions:
        if instruction == "ENV":
            env |= dict(word.split("=", 1) for word in shlex.split(rest))
    return env


def test_dockerfile_runs_im_as_a_non_root_user_on_the_port_im_listens_on() -> None:
    instructions = dockerfile()
    first = {name: rest for name, rest in reversed(instructions)}
    last = dict(instructions)
    assert first["FROM"] == "python:3.11-slim"
    assert last["USER"] not in ("root", "0") and any(
        "useradd" in rest and last["USER"] in rest for name, rest in instructions if name == "RUN"
    ), "the user it runs as is created in the image"

    im_env = {k: v for k, v in docker_env(instructions).items() if k.startswith(("IM_", "SLACK_"))}
    check_variables(im_env, "Dockerfile ENV")
    port = int(im_env.get("IM_PORT", DEFAULT_PORT))
    assert last["EXPOSE"] == str(port), "EXPOSE is the port im serve listens on"

    check_im_command(json.loads(last["CMD"]))
    assert json.loads(last["CMD"]) == ["im", "serve"]

    # the image installs exactly the packages pyproject declares, from files that exist
    copied = {shlex.split(rest)[0] for name, rest in instructions if name == "COPY"}
    for source in copied:
        assert (ROOT / source).exists(), source
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied, "every package pyproject installs is copied into the image"
    assert any(rest.startswith("pip install .") for name, rest in instructions if name == "RUN")


def test_dockerfile_documents_the_release_step_as_a_runnable_command() -> None:
    text = (ROOT / "Dockerfile").read_text()
    runs = [shlex.split(m.group(1)) for m in re.finditer(r"docker run (.*?)(?:\s+#.*)?$", text, re.MULTILINE)]
    assert runs
    commands = []
    for words in runs:
        image = words.index("im")  # the image's name (the settings file is im.env)
        if image + 1 < len(words):  # an explicit command after the image name
            commands.append(words[image + 1 :])
    for argv in commands:
        check_im_command(argv)
    assert ["im", "db", "upgrade"] in commands, "the release step is shown as `docker run ... im im db upgrade`"


def test_dockerfile_healthcheck_is_python_and_passes_against_a_served_app(tmp_path: Path) -> None:
    healthcheck = dict(dockerfile())["HEALTHCHECK"]
    assert "curl" not in healthcheck
    argv = json.loads(healthcheck.split("CMD", 1)[1].strip())
    assert argv[:2] == ["python", "-c"] and "/healthz" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")

    harness = AppHarness(make_settings(f"sqlite:///{tmp_path}/im.db"), None)
    try:
        env = {"PATH": os.environ["PATH"], "IM_PORT": str(harness.served.port)}
        healthy = subprocess.run([sys.executable, "-c", argv[2]], env=env, capture_output=True, text=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
    finally:
        harness.stop()
    down = subprocess.run([sys.executable, "-c", argv[2]], env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode != 0, "nothing listening: the check fails"


# -- compose.yaml ------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def interpolate(value: str) -> str:
    """Compose's ${VAR:?message} / ${VAR:-default}, with a sample value for the required ones."""
    return re.sub(r"\$\{(\w+)(?::[?-]([^}]*))?\}", lambda m: "sample-" + m.group(1).lower(), value)


def test_compose_runs_postgresql_a_migration_and_two_replicas() -> None:
    services = compose()["services"]
    ims = {name: s for name, s in services.items() if s.get("build") == "."}
    assert set(services) - set(ims) == {"postgres"} and services["postgres"]["image"].startswith("postgres:")

    commands = {name: s["command"] for name, s in ims.items()}
    for argv in commands.values():
        check_im_command(argv)
    migrate = [name for name, argv in commands.items() if argv == ["im", "db", "upgrade"]]
    replicas = [name for name, argv in commands.items() if argv == ["im", "serve"]]
    assert len(migrate) == 1 and len(replicas) == 2, commands
    assert ims[migrate[0]]["restart"] == "no", "a one-shot"
    assert ims[migrate[0]]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in replicas:
        assert ims[name]["depends_on"] == {migrate[0]: {"condition": "service_completed_successfully"}}, name

    published = set()
    for name, service in ims.items():
        env = {k: interpolate(str(v)) for k, v in service["environment"].items()}
        check_variables(env, f"compose service {name}")
        assert env["IM_DATABASE_URL"].startswith("postgresql://"), "two replicas need PostgreSQL"
        assert env["IM_DATABASE_URL"].endswith(f"@postgres:5432/{services['postgres']['environment']['POSTGRES_DB']}")
        assert env.get("IM_HOST", "0.0.0.0") == "0.0.0.0", "reachable from outside its container"
        port = int(env.get("IM_PORT", DEFAULT_PORT))
        for mapping in service.get("ports", []):
            host, container = mapping.rsplit(":", 1)
            assert int(container) == port, f"{name} publishes {container}, but im listens on {port}"
            published.add(host)
        assert [f["path"] for f in service["env_file"]] == ["im.env"]
    assert len(published) == 2, "each replica on its own host port"


# -- systemd -----------------------------------------------------------------------------------


def unit() -> list[tuple[str, str, str]]:
    """(section, key, value) in order; a unit file may repeat keys, so no dict."""
    found, section = [], ""
    for line in (ROOT / "docs/im.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def test_systemd_unit_runs_migrations_then_serve_as_a_service_user() -> None:
    entries = unit()
    service = {key: value for section, key, value in entries if section == "Service"}
    assert {s for s, _, _ in entries} == {"Unit", "Service", "Install"}
    execs = [(key, shlex.split(value)) for section, key, value in entries if section == "Service" and key.startswith("Exec")]
    for _, argv in execs:
        assert argv[0].startswith("/"), "systemd wants absolute paths"
        check_im_command(argv)
    assert [(k, argv[1:]) for k, argv in execs] == [("ExecStartPre", ["db", "upgrade"]), ("ExecStart", ["serve"])]
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"].startswith("/etc/")
    assert not [value for section, key, value in entries if key == "Environment"], "settings live in the EnvironmentFile"
    assert "docs/im.env.example" in (ROOT / "docs/im.service").read_text(), "the unit says where its EnvironmentFile comes from"


# -- the settings file all three read ----------------------------------------------------------


def test_env_example_names_only_real_settings_with_values_im_accepts() -> None:
    text = (ROOT / "docs/im.env.example").read_text()
    values = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    mentioned = set(re.findall(r"^#\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert values and "IM_DATABASE_URL" in values
    assert not (mentioned - ALIASES), f"commented examples of unknown settings: {mentioned - ALIASES}"
    check_variables(values, "docs/im.env.example")
    assert int(values["IM_PORT"]) == DEFAULT_PORT


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml", "docs/im.service", "docs/im.env.example"])
def test_deployment_files_hold_no_real_secret(name: str) -> None:
    text = (ROOT / name).read_text()
    assert not re.search(r"xox[abp]-(?!change-me|\.\.\.)[A-Za-z0-9-]{8,}", text), "no Slack token"
    for key in ("SLACK_SIGNING_SECRET", "IM_SECRET_KEY", "POSTGRES_PASSWORD"):
        for value in re.findall(rf"^\s*{key}[=:]\s*(\S+)", text, re.MULTILINE):
            assert "change-me" in value or value.startswith("${"), f"{name}: {key} has a value that looks real"
