"""The terminal reads like git's: --version, --json everywhere, "did you mean", grouped help with the
environment and exit codes, required options shown as required, examples that parse, colour only on
a terminal that wants it, local times with --utc, and shell completion generated from the registry.

Run through the real entry point: `bot.main.main([...])` in-process (stdout/stderr captured), the
installed `im` script in a subprocess, and `python -m bot.main` on a pseudo-terminal for colour.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import __version__
from bot.config import Settings
from bot.domain.incidents import Actor
from bot.domain.models import Origin
from bot.main import main
from bot.wiring import build, register_commands
from commands.grammar import GROUP_ORDER, REGISTRY, UsageError, parse
from tests.fakes.slack_api import FakeSlack
from tests.harness import AppHarness, make_settings

ROOT = Path(__file__).resolve().parents[1]
IM_SCRIPT = Path(sys.executable).with_name("im")
ESC = "\x1b["
DECLARED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Run:
    code: int
    out: str
    err: str


ImRun = Callable[..., Run]


@pytest.fixture
def im(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> ImRun:
    """`im ARGS` in this process, as the installed script runs it (the conftest cleared IM_* and chdir'd)."""
    monkeypatch.setenv("IM_DATABASE_URL", f"sqlite:///{tmp_path}/im.db")
    monkeypatch.setenv("IM_ACTOR", "carol")

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def seed(url: str) -> None:
    app = build(make_settings(url))
    carol = Actor(Origin.CLI, "carol")
    app.incidents.declare(title="Payments down", severity="SEV-1", services=["pay"], actor=carol, at=DECLARED)
    app.incidents.declare(title="Slow search", severity="SEV-3", services=["search"], actor=carol, at=DECLARED)
    app.incidents.transition(2, "resolve", actor=carol, note="reindexed")
    app.store.dispose()


# -- --version ---------------------------------------------------------------------------------


def test_version_needs_no_database(im: ImRun, tmp_path: Path) -> None:
    run = im("--version")
    assert (run.code, run.out, run.err) == (0, f"im {__version__}\n", "")
    assert not (tmp_path / "im.db").exists()


def test_version_from_the_installed_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IM_", "SLACK_"))}
    env["IM_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"  # never opened
    proc = subprocess.run([str(IM_SCRIPT), "--version"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"im {__version__}\n", "")


# -- --json ------------------------------------------------------------------------------------


def test_every_command_takes_json_and_declare_prints_the_incident(im: ImRun) -> None:
    register_commands()
    for spec in REGISTRY.values():
        for frontend in ("cli", "slack"):
            flags = {f for a in spec.parser("im", frontend)._actions for f in a.option_strings}
            assert "--json" in flags, f"{spec.name} ({frontend}) has no --json"

    declared = im("declare", "--sev", "2", "--title", "Database slow", "--service", "db", "--json")
    assert declared.code == 0, declared
    body = json.loads(declared.out)
    assert body["incident"]["id"] == "INC-1" and body["incident"]["severity"] == "SEV-2"
    assert body["incident"]["title"] == "Database slow" and body["incident"]["status"] == "open"

    before = {  # the global option before the command, as git takes `git -C dir status`
        ("--json", "ack", "-i", "INC-1"): "done",
        ("note", "-i", "INC-1", "on", "it", "--json"): "done",
        ("--json", "status", "-i", "INC-1"): "incident",
        ("timeline", "-i", "INC-1", "--json"): "timeline",
        ("--json", "list"): "incidents",
        ("help", "--json"): "help",
        ("--json", "connector", "list"): "table",
        ("db", "upgrade", "--json"): "lines",
        ("completion", "bash", "--json"): "lines",
    }
    for argv, kind in before.items():
        run = im(*argv)
        assert run.code == 0 and run.err == "", (argv, run)
        assert json.loads(run.out)["kind"] == kind, (argv, run.out)
        assert ESC not in run.out


# -- did you mean ------------------------------------------------------------------------------


def test_typos_get_a_suggestion_exit_2_and_open_no_database(im: ImRun, tmp_path: Path) -> None:
    cases = {
        ("delcare", "--sev", "2"): "im: unknown command 'delcare': did you mean `declare`?",
        ("conector", "list"): "im: unknown command 'conector': did you mean `connector`?",
        ("connector", "tset", "prod"): "im: unknown subcommand 'connector tset': did you mean `connector test`?",
        ("list", "--stauts", "open"): "did you mean `--status`?",
        ("help", "timline"): "did you mean `timeline`?",
    }
    for argv, message in cases.items():
        run = im(*argv)
        assert run.code == 2 and run.out == "", (argv, run)
        first = run.err.splitlines()[0]
        assert first.startswith("im: ") and first.endswith(message), (argv, run.err)
        assert run.err.splitlines()[1].startswith("usage: im"), run.err
    nothing_close = im("frobnicate")
    assert nothing_close.err.splitlines()[0] == "im: unknown command 'frobnicate'"
    assert not (tmp_path / "im.db").exists(), "a typo is reported before any database is opened"


def test_slack_gets_the_same_suggestion_ephemerally(sqlite_url: str, fake_slack: FakeSlack) -> None:
    app = AppHarness(make_settings(sqlite_url, fake_slack), fake_slack)
    try:
        typo = app.command('delcare --sev 2 --title "x" --service db').json()
        sub = app.command("connector stauts prod").json()
        missing = app.command("declare --sev 2").json()
    finally:
        app.stop()
    assert typo["response_type"] == "ephemeral"
    assert "unknown command 'delcare': did you mean `declare`?" in typo["text"]
    assert "did you mean `connector status`?" in sub["text"]
    # Slack may open a form, so its usage shows these options as optional; the handler still asks for them
    assert "missing required option(s): --title, --service" in missing["text"]
    assert "[--sev SEV]" in missing["text"] and "[--title TEXT]" in missing["text"]
    assert "--utc" not in missing["text"], "times in Slack are UTC; --utc is a terminal option"


# -- help --------------------------------------------------------------------------------------


def test_help_is_grouped_with_environment_and_exit_codes(im: ImRun, tmp_path: Path) -> None:
    run = im("help")
    assert run.code == 0 and run.err == "" and not (tmp_path / "im.db").exists()
    sections: dict[str, list[str]] = {}
    current = ""
    for line in run.out.splitlines()[1:]:
        if line and not line.startswith(" "):
            current = line.rstrip(":")
            sections[current] = []
        elif line.strip():
            sections[current].append(line.split()[0])
    groups = [name for name in sections if name in GROUP_ORDER]
    assert groups == list(GROUP_ORDER), list(sections)
    for spec in REGISTRY.values():
        if spec.terminal:
            assert spec.group in GROUP_ORDER, f"{spec.name} has no help group"
            assert spec.path[0] in sections[spec.group], f"{spec.name} not listed under {spec.group}"
    assert {"declare", "ack", "list"} <= set(sections["incidents"]) and "oncall" in sections["people"]
    assert "connector" in sections["connectors"] and "metrics" in sections["reports"]
    assert {"serve", "db", "help", "completion"} <= set(sections["operations"])

    environment = next(name for name in sections if name.startswith("environment"))
    aliases = [str(f.validation_alias) for f in Settings.model_fields.values()]
    assert sections[environment] == aliases, "every setting, from Settings itself"
    assert "IM_PORT                    default 3000" in run.out and "SLACK_BOT_TOKEN            (secret)" in run.out
    assert sections["exit codes"] == ["0", "1", "2", "130", "141"]
    assert sections["global options"][:3] == ["--json", "--utc", "--version"]
    assert im("--help").out == im().out == run.out


def test_required_options_are_shown_as_required_in_the_terminal(im: ImRun) -> None:
    usage = im("help", "declare").out
    assert usage.startswith("usage: im declare --sev SEV --title TEXT --service NAME[,NAME...]\n"), usage
    assert "[--description TEXT]" in usage
    missing = im("declare", "--sev", "2")
    assert missing.code == 2
    assert missing.err.splitlines()[0] == "im: missing required option(s): --title, --service"
    assert im("help", "resolve").out.startswith("usage: im resolve [--incident ID] --note TEXT")


def test_every_command_has_examples_that_parse() -> None:
    register_commands()
    for spec in REGISTRY.values():
        assert spec.examples, f"{spec.name} has no example"
        frontend = "cli" if spec.terminal else "slack"
        for example in spec.examples:
            words = shlex.split(example)
            words = words[: words.index(">")] if ">" in words else words  # a shell redirection
            try:
                parsed = parse(words, prog_prefix="im", frontend=frontend)
            except UsageError as exc:
                raise AssertionError(f"example `im {example}`: {exc}") from None
            assert parsed.spec is spec, example


# -- local time and --utc ----------------------------------------------------------------------


@pytest.fixture
def india() -> Iterator[None]:
    """A local zone without daylight saving, from a POSIX TZ string (no zone database needed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "IST-5:30")
        time.tzset()
        yield
    time.tzset()


def test_times_are_local_unless_utc(im: ImRun, india: None, tmp_path: Path) -> None:
    seed(f"sqlite:///{tmp_path}/im.db")
    local, utc = im("list"), im("list", "--utc")
    assert "2026-03-01 17:30 IST" in local.out and "UTC" not in local.out, local.out
    assert "2026-03-01 12:00 UTC" in utc.out and "IST" not in utc.out, utc.out
    assert local.out.splitlines()[0].split() == utc.out.splitlines()[0].split(), "same columns"

    detail = im("status", "-i", "INC-2").out
    assert "declared:     2026-03-01 17:30 IST by carol" in detail
    assert re.search(r"resolved:\s+\d{4}-\d\d-\d\d \d\d:\d\d IST", detail), detail
    assert "declared:     2026-03-01 12:00 UTC" in im("--utc", "status", "-i", "INC-2").out
    timeline = im("timeline", "-i", "INC-1").out.splitlines()
    assert timeline[2].startswith("2026-03-01 17:30:00 IST"), timeline
    assert json.loads(im("list", "--json").out)["incidents"][0]["declared_at"].startswith("2026-03-01T12:00:00"), "JSON stays UTC"


# -- colour ------------------------------------------------------------------------------------


def on_a_terminal(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `im` with a pseudo-terminal as its stdout; everything it showed, and its exit code."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "bot.main", *argv], env)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_colour_only_on_a_terminal_that_wants_it(im: ImRun, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/im.db"
    seed(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IM_", "SLACK_", "NO_COLOR"))}
    env |= {"IM_DATABASE_URL": url, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}

    code, shown = on_a_terminal(["list"], env, tmp_path)
    assert code == 0, shown
    assert f"{ESC}1;31mSEV-1" in shown and f"{ESC}1;31mopen" in shown, repr(shown)
    assert f"{ESC}33mSEV-3" in shown and f"{ESC}32mresolved" in shown, repr(shown)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    rows = [line.split() for line in plain.splitlines() if line.startswith("INC-")]
    assert [row[:4] for row in rows] == [["INC-2", "SEV-3", "resolved", "search"], ["INC-1", "SEV-1", "open", "pay"]]
    header = next(line for line in plain.splitlines() if line.startswith("ID"))
    for line in (line for line in plain.splitlines() if line.startswith("INC-")):
        assert line.index(line.split()[3]) == header.index("SERVICES"), "colour does not shift the columns"

    code, detail = on_a_terminal(["status", "-i", "INC-1"], env, tmp_path)
    assert code == 0 and f"severity:     {ESC}1;31mSEV-1" in detail, repr(detail)

    for name, extra, argv in (
        ("NO_COLOR", {"NO_COLOR": "1"}, ["list"]),
        ("TERM=dumb", {"TERM": "dumb"}, ["list"]),
        ("--json", {}, ["list", "--json"]),
    ):
        code, shown = on_a_terminal(argv, env | extra, tmp_path)
        assert code == 0 and "SEV-1" in shown, shown
        assert ESC not in shown, f"{name}: {shown!r}"

    piped = im("list")  # stdout is not a terminal here
    assert "SEV-1" in piped.out and ESC not in piped.out


def test_interrupted_prompt_exits_130(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IM_", "SLACK_"))}
    env |= {"IM_DATABASE_URL": f"sqlite:///{tmp_path}/im.db", "PYTHONPATH": str(ROOT), "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "bot.main", "connector", "add", "pagerduty", "prod"], env)
    shown = b""
    deadline = time.monotonic() + 60
    while b"API Key:" not in shown and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            shown += os.read(fd, 1024)
    os.write(fd, b"\x03")  # Ctrl-C
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130, shown


# -- completion --------------------------------------------------------------------------------


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers after `words` (the last one being typed), with the generated script loaded."""
    line = " ".join(shlex.quote(w) if w else "''" for w in words)
    program = f'source {shlex.quote(str(script))}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _im; printf "%s\\n" "${{COMPREPLY[@]}}"'
    proc = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completion_is_generated_from_the_registry(im: ImRun, tmp_path: Path) -> None:
    run = im("completion", "bash")
    assert run.code == 0 and run.err == "" and not (tmp_path / "im.db").exists()
    script = tmp_path / "im.bash"
    script.write_text(run.out)
    assert complete(script, "im", "de") == ["declare"]
    top = complete(script, "im", "")
    assert {spec.path[0] for spec in REGISTRY.values() if spec.terminal} <= set(top)
    assert {"ls", "--json", "--utc", "--version"} <= set(top)
    assert complete(script, "im", "connector", "") == sorted(p[1] for p in REGISTRY if p[0] == "connector")
    assert complete(script, "im", "connector", "add", "--c") == ["--config"]
    assert complete(script, "im", "list", "--status", "") == ["open", "mitigated", "resolved", "closed"]
    assert complete(script, "im", "ls", "--st") == ["--status"], "aliases complete like their command"
    assert complete(script, "im", "--json", "timeline", "--") == ["--incident", "--json", "--utc"]
    assert set(complete(script, "im", "completion", "")) >= {"bash", "zsh"}
    assert complete(script, "im", "declare", "--title", "") == [], "free text: nothing to offer"


def test_zsh_completion_covers_every_command(im: ImRun) -> None:
    run = im("completion", "zsh")
    assert run.code == 0 and run.out.startswith("#compdef im\n")
    for spec in REGISTRY.values():
        if spec.terminal:
            assert f"_im_{re.sub(r'[^A-Za-z0-9]', '_', spec.name)}() {{" in run.out, spec.name
    assert "'(--sev --severity)'{--sev,--severity}'[SEV-1 (worst) .. SEV-4]:SEV:'" in run.out
    assert "'--status[only this status]:STATUS:(open mitigated resolved closed)'" in run.out
    assert "'declare:declare a new incident'" in run.out
    assert "compdef _im im" in run.out
    if shutil.which("zsh"):
        check = subprocess.run(["zsh", "-n"], input=run.out, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr


def test_unknown_shell_is_bad_input_with_the_choices(im: ImRun) -> None:
    run = im("completion", "fish")
    assert run.code == 2 and run.out == ""
    assert run.err.splitlines()[0] == "im: argument SHELL: invalid choice: 'fish' (choose from 'bash', 'zsh')"
    assert run.err.splitlines()[1] == "usage: im completion [--json] [--utc] SHELL"
