"""Command registry and parser: definitions carry their arguments and help, so usage can never drift.

Chat text goes through `split_chat_text` (smart punctuation undone, Slack's three escapes decoded, then
`shlex.split`), the terminal hands argv over as it is; both meet the same argparse parsers. What comes
out is the user's own characters, kept as data: Slack markup is made only when rendering.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

Handler = Callable[..., Any]


class UsageError(Exception):
    """Bad input: one clear message plus the usage of the command it concerns."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def __str__(self) -> str:
        return f"{self.message}\n{self.usage}".strip()


@dataclass
class Argument:
    flags: tuple[str, ...]
    options: dict[str, Any]


@dataclass
class CommandSpec:
    path: tuple[str, ...]  # ("declare",) or ("connector", "add")
    summary: str
    handler: Handler
    arguments: list[Argument] = field(default_factory=list)
    aliases: tuple[str, ...] = ()
    description: str | None = None
    slack: bool = True  # may run from Slack
    terminal: bool = True  # may run from a terminal
    remote: bool = False  # asks another system (PagerDuty): Slack answers it after the ack, not in it
    examples: tuple[str, ...] = ()
    _parsers: dict[str, argparse.ArgumentParser] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def parser(self, prog_prefix: str) -> argparse.ArgumentParser:
        """Built once per front end: parse_args does not change a parser, so it is safe to share."""
        if prog_prefix not in self._parsers:
            self._parsers[prog_prefix] = self._build(prog_prefix)
        return self._parsers[prog_prefix]

    def _build(self, prog_prefix: str) -> argparse.ArgumentParser:
        parser = _Parser(
            prog=f"{prog_prefix} {self.name}",
            description=self.description or self.summary,
            epilog=("examples:\n  " + "\n  ".join(f"{prog_prefix} {e}" for e in self.examples)) if self.examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=False,
        )
        for argument in self.arguments:
            parser.add_argument(*argument.flags, **argument.options)
        return parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(_friendlier(message), self.format_usage().strip())


REGISTRY: dict[tuple[str, ...], CommandSpec] = {}
ALIASES: dict[str, str] = {}


def argument(*flags: str, **options: Any) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        fn.__dict__.setdefault("_im_arguments", []).insert(0, Argument(flags, options))
        return fn

    return decorate


def command(
    name: str,
    *,
    summary: str,
    aliases: Sequence[str] = (),
    description: str | None = None,
    slack: bool = True,
    terminal: bool = True,
    remote: bool = False,
    examples: Sequence[str] = (),
) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        spec = CommandSpec(
            path=tuple(name.split()),
            summary=summary,
            handler=fn,
            arguments=list(fn.__dict__.get("_im_arguments", [])),
            aliases=tuple(aliases),
            description=description,
            slack=slack,
            terminal=terminal,
            remote=remote,
            examples=tuple(examples),
        )
        REGISTRY[spec.path] = spec
        for alias in aliases:
            ALIASES[alias] = spec.path[0]
        return fn

    return decorate


def groups() -> dict[str, list[CommandSpec]]:
    """Top-level words that only lead to subcommands (e.g. `connector`)."""
    found: dict[str, list[CommandSpec]] = {}
    for path, spec in REGISTRY.items():
        if len(path) > 1:
            found.setdefault(path[0], []).append(spec)
    return found


@dataclass
class Parsed:
    spec: CommandSpec
    args: argparse.Namespace


_DASHES = re.compile(r"(^|\s)(?:[\u2014\u2013]|\u2212|-[\u2014\u2013]|[\u2014\u2013]-)(?=[A-Za-z])")
_SLACK_ENTITIES = re.compile(r"&(amp|lt|gt);")
_SLACK_DECODED = {"amp": "&", "lt": "<", "gt": ">"}
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "})


def split_chat_text(text: str) -> list[str]:
    """What a chat client sent -> argv. Undoes smart punctuation (— for --, curly quotes) and Slack's
    escaping of &, < and > (only those: `&quot;` typed by a user stays `&quot;`), in one pass so
    `&amp;lt;` gives back the `&lt;` that was typed."""
    text = _SLACK_ENTITIES.sub(lambda m: _SLACK_DECODED[m.group(1)], text).translate(_QUOTES)
    text = _DASHES.sub(lambda m: f"{m.group(1)}--", text)
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"could not read the command: {exc} (check your quotes)") from None


def resolve(argv: Sequence[str], prog_prefix: str, frontend: str = "cli") -> tuple[CommandSpec, list[str]]:
    if not argv:
        raise UsageError("no command given", top_usage(prog_prefix, frontend))
    word = argv[0].lower()
    word = ALIASES.get(word, word)
    if (word,) in REGISTRY:
        return REGISTRY[(word,)], list(argv[1:])
    subcommands = groups().get(word)
    if subcommands:
        names = ", ".join(sorted(s.path[1] for s in subcommands))
        if len(argv) < 2:
            raise UsageError(
                f"'{word}' needs a subcommand: {names}",
                f"usage: {prog_prefix} {word} <{'|'.join(sorted(s.path[1] for s in subcommands))}> ...",
            )
        path = (word, argv[1].lower())
        if path not in REGISTRY:
            raise UsageError(
                f"unknown subcommand '{word} {argv[1]}' (expected one of: {names})", f"usage: {prog_prefix} help {word}"
            )
        return REGISTRY[path], list(argv[2:])
    raise UsageError(f"unknown command '{argv[0]}'", top_usage(prog_prefix, frontend))


def parse(argv: Sequence[str], *, prog_prefix: str, frontend: str = "cli") -> Parsed:
    spec, rest = resolve(argv, prog_prefix, frontend)
    if any(a in ("-h", "--help") for a in rest):
        return Parsed(REGISTRY[("help",)], argparse.Namespace(command=list(spec.path)))
    args = spec.parser(prog_prefix).parse_args(rest)
    return Parsed(spec, args)


def top_usage(prog_prefix: str, frontend: str = "cli") -> str:
    words = sorted({p[0] for p, spec in REGISTRY.items() if _available(spec, frontend)})
    return f"usage: {prog_prefix} <{'|'.join(words)}> ...  (try: {prog_prefix} help)"


def help_text(words: Sequence[str], prog_prefix: str, *, frontend: str) -> str:
    if words:
        path = tuple(w.lower() for w in words)
        path = (ALIASES.get(path[0], path[0]), *path[1:])
        if path in REGISTRY:
            spec = REGISTRY[path]
            text = spec.parser(prog_prefix).format_help().rstrip()
            if spec.aliases:
                text += f"\n\naliases: {', '.join(spec.aliases)}"
            if not _available(spec, frontend):
                text += f"\n\n(not available from {frontend})"
            return text
        subs = groups().get(path[0])
        if subs and len(path) == 1:
            lines = [f"{prog_prefix} {path[0]} <subcommand>:"]
            lines += [f"  {s.path[1]:<16} {s.summary}" for s in sorted(subs, key=lambda s: s.path)]
            return "\n".join(lines)
        raise UsageError(f"no help for '{' '.join(words)}': unknown command", top_usage(prog_prefix, frontend))
    lines = [f"{prog_prefix} <command> [options]   ({prog_prefix} help <command> for details)", ""]
    for path, spec in sorted(REGISTRY.items()):
        if len(path) == 1 and _available(spec, frontend):
            lines.append(f"  {spec.name:<12} {spec.summary}")
    for group, subs in sorted(groups().items()):
        usable = [s.path[1] for s in sorted(subs, key=lambda s: s.path) if _available(s, frontend)]
        if usable:
            lines.append(f"  {group:<12} {'|'.join(usable)}")
    return "\n".join(lines)


def _available(spec: CommandSpec, frontend: str) -> bool:
    return spec.slack if frontend == "slack" else spec.terminal


def _friendlier(message: str) -> str:
    message = message.replace("the following arguments are required", "missing required option(s)")
    message = message.replace("unrecognized arguments", "unknown option(s)")
    return message
