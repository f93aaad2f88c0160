"""The grammar on its own: chat text to argv, argv to a command, and help drawn from the registry."""

from __future__ import annotations

import pytest

from bot.wiring import register_commands
from commands.grammar import REGISTRY, CommandSpec, UsageError, groups, help_text, parse, resolve, split_chat_text, top_usage

register_commands()

SLACK, CLI = ("/im", "slack"), ("im", "cli")


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("declare --sev SEV-2", ["declare", "--sev", "SEV-2"]),
        ("declare \u2014sev SEV-2", ["declare", "--sev", "SEV-2"]),  # em dash
        ("declare \u2013sev SEV-2", ["declare", "--sev", "SEV-2"]),  # en dash
        ("declare \u2212sev SEV-2", ["declare", "--sev", "SEV-2"]),  # minus sign
        ("declare -\u2014sev SEV-2", ["declare", "--sev", "SEV-2"]),
        ("declare \u2014-sev SEV-2", ["declare", "--sev", "SEV-2"]),
        ("\u2014help", ["--help"]),  # at the very start too
        ("note went up \u2014 then down", ["note", "went", "up", "\u2014", "then", "down"]),  # a dash between words stays
        ("note east\u2014west", ["note", "east\u2014west"]),  # inside a word it stays
        ("declare --title \u201cDB slow\u201d", ["declare", "--title", "DB slow"]),
        ("declare --title \u201eDB slow\u201d", ["declare", "--title", "DB slow"]),
        ("declare --title \u2018DB slow\u2019", ["declare", "--title", "DB slow"]),
        ("declare --title \u2033DB slow\u2033", ["declare", "--title", "DB slow"]),
        ("declare\u00a0--sev\u00a0SEV-1", ["declare", "--sev", "SEV-1"]),  # no-break spaces split like spaces
        ("note \u201cit\u2019s back\u201d", ["note", "it's back"]),
        ("note a &amp; b", ["note", "a", "&", "b"]),
        ("note &lt;!channel&gt;", ["note", "<!channel>"]),  # Slack's escaping undone into plain characters
        ('note "x &gt; y"', ["note", "x > y"]),
        ("note &amp;lt;", ["note", "&lt;"]),  # one pass: what was typed comes back, decoded once
        ("note &quot;hi&quot;", ["note", "&quot;hi&quot;"]),  # Slack escapes only & < >; other entities are text
        ("", []),
    ],
)
def test_split_chat_text(text: str, argv: list[str]) -> None:
    assert split_chat_text(text) == argv


@pytest.mark.parametrize(
    "text", ['declare --title "DB slow', "declare --title 'DB slow", "declare --title \u201cDB slow", "note it\u2019s back"]
)
def test_unbalanced_quotes_are_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match=r"^could not read the command: .* \(check your quotes\)$"):
        split_chat_text(text)


@pytest.mark.parametrize(
    ("argv", "path", "rest"),
    [
        (["ack", "-i", "1"], ("ack",), ["-i", "1"]),
        (["acknowledge", "-i", "1"], ("ack",), ["-i", "1"]),  # alias
        (["ls"], ("list",), []),
        (["sev", "--sev", "1"], ("severity",), ["--sev", "1"]),
        (["DECLARE"], ("declare",), []),  # command words are not case-sensitive
        (["connector", "list"], ("connector", "list"), []),
        (["Connector", "STATUS", "prod"], ("connector", "status"), ["prod"]),
        (["metrics", "connector", "prod"], ("metrics", "connector"), ["prod"]),
    ],
)
def test_resolve(argv: list[str], path: tuple[str, ...], rest: list[str]) -> None:
    spec, left = resolve(argv, "im")
    assert spec.path == path and left == rest


@pytest.mark.parametrize(
    ("argv", "message", "usage"),
    [
        ([], "no command given", "usage: im <"),
        (["bogus"], "unknown command 'bogus'", "usage: im <"),
        (["connector"], "'connector' needs a subcommand: add, config, ", "usage: im connector <add|config|"),
        (["connector", "bogus"], "unknown subcommand 'connector bogus' (expected one of: add, ", "usage: im help connector"),
    ],
)
def test_resolve_refuses(argv: list[str], message: str, usage: str) -> None:
    with pytest.raises(UsageError) as refused:
        resolve(argv, "im")
    assert refused.value.message.startswith(message) and refused.value.usage.startswith(usage)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["ack", "--help"], ["ack"]),
        (["acknowledge", "-h"], ["ack"]),
        (["resolve", "-i", "1", "--help"], ["resolve"]),  # asking for help wins over missing options
        (["connector", "list", "-h"], ["connector", "list"]),
    ],
)
def test_help_flag_becomes_the_help_command(argv: list[str], command: list[str]) -> None:
    parsed = parse(argv, prog_prefix="im")
    assert parsed.spec.path == ("help",) and parsed.args.command == command


def test_parse_reads_options() -> None:
    parsed = parse(["declare", "--sev", "2", "-t", "DB slow", "-s", "db", "--service", "api,web"], prog_prefix="im")
    assert parsed.spec.path == ("declare",)
    assert (parsed.args.sev, parsed.args.title, parsed.args.service) == ("SEV-2", "DB slow", ["db", "api,web"])


@pytest.mark.parametrize(
    ("argv", "message", "usage"),
    [
        (["resolve", "-i", "1"], "missing required option(s): --note/-n", "usage: im resolve "),
        (["ack", "--bogus"], "unknown option(s): --bogus", "usage: im ack "),
        (["declare", "--sev", "9"], "argument --sev/--severity: '9' is not a severity", "usage: im declare "),
        (["list", "--status", "lost"], "argument --status: invalid choice: 'lost'", "usage: im list "),
    ],
)
def test_parse_refuses_with_the_command_usage(argv: list[str], message: str, usage: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(argv, prog_prefix="im")
    assert refused.value.message.startswith(message) and refused.value.usage.startswith(usage)


@pytest.mark.parametrize(("prog", "frontend"), [SLACK, CLI])
def test_top_help_lists_every_command_the_front_end_may_run(prog: str, frontend: str) -> None:
    text = help_text([], prog, frontend=frontend)
    for path, spec in REGISTRY.items():
        usable = spec.slack if frontend == "slack" else spec.terminal
        if len(path) == 1:
            assert (f"  {spec.name:<12} {spec.summary}" in text.splitlines()) is usable, spec.name
    for group, subs in groups().items():
        line = next((line for line in text.splitlines() if line.startswith(f"  {group} ")), None)
        listed = line.split()[-1].split("|") if line else []  # a group with nothing usable has no line
        for sub in subs:
            usable = sub.slack if frontend == "slack" else sub.terminal
            assert (sub.path[1] in listed) is usable, sub.name


def test_slack_help_leaves_out_terminal_only_commands() -> None:
    slack, cli = help_text([], "/im", frontend="slack"), help_text([], "im", frontend="cli")
    assert "  serve " not in slack and "  serve " in cli
    assert "  db " not in slack and "  db " in cli
    assert "serve" not in top_usage("/im", "slack") and "serve" in top_usage("im", "cli")


SPECS = sorted(REGISTRY.values(), key=lambda s: s.path)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_command_has_help_of_its_own(spec: CommandSpec) -> None:
    text = help_text(list(spec.path), "im", frontend="cli")
    assert text.startswith(f"usage: im {spec.name}") and (spec.description or spec.summary) in text
    for alias in spec.aliases:
        assert help_text([alias], "im", frontend="cli") == text


def test_command_help_names_aliases_and_where_it_runs() -> None:
    assert help_text(["ack"], "/im", frontend="slack").endswith("aliases: acknowledge")
    assert help_text(["serve"], "/im", frontend="slack").endswith("(not available from slack)")
    assert "(not available" not in help_text(["serve"], "im", frontend="cli")


def test_group_help_lists_each_subcommand_with_its_summary() -> None:
    lines = help_text(["connector"], "im", frontend="cli").splitlines()
    assert lines[0] == "im connector <subcommand>:"
    subs = sorted(groups()["connector"], key=lambda s: s.path)
    assert lines[1:] == [f"  {s.path[1]:<16} {s.summary}" for s in subs]


def test_help_for_an_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no help for 'bogus': unknown command"):
        help_text(["bogus"], "im", frontend="cli")
