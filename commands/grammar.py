"""Command registry and parser: definitions carry their arguments and help, so usage can never drift.

Chat text goes through `split_chat_text` (smart punctuation undone, Slack's three escapes decoded, then
`shlex.split`), the terminal hands argv over as it is; both meet the same argparse parsers. What comes
out is the user's own characters, kept as data: Slack markup is made only when rendering. Each front
end gets its own parser per command (an option can be required in a terminal and optional in Slack,
where a bare command opens a form), and every parser takes the global options (`--json`, `--utc`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

Handler = Callable[..., Any]

# Help groups, in the order `im help` shows them. A command's group defaults by its first word.
GROUP_ORDER = ("incidents", "people", "connectors", "reports", "operations")
DEFAULT_GROUPS = {
    **dict.fromkeys(
        ("declare", "ack", "resolve", "close", "reopen", "note", "severity", "status", "list", "timeline", "field"), "incidents"
    ),
    **dict.fromkeys(
        ("oncall", "owner", "role", "roles", "people", "person", "assign", "unassign", "page", "escalate", "snooze"), "people"
    ),
    **dict.fromkeys(("connector",), "connectors"),
    **dict.fromkeys(("metrics", "report", "reports", "postmortem", "stats"), "reports"),
    **dict.fromkeys(("serve", "db", "help", "completion", "logs", "outbox", "secrets"), "operations"),
}

EXIT_CODES = (
    (0, "ok"),
    (1, "a check failed, or a remote system (PagerDuty, the database) answered with an error"),
    (2, "bad input: unknown command or option, invalid value, invalid setting"),
    (130, "interrupted (Ctrl-C)"),
    (141, "output pipe closed early (`im list | head`)"),
)


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
    """argparse's flags and options, plus `required_in_terminal=True`: required where no form can ask
    for it (a terminal), optional in Slack (where the handler opens a form when nothing is given)."""

    flags: tuple[str, ...]
    options: dict[str, Any]

    def argparse_options(self, frontend: str) -> dict[str, Any]:
        options = dict(self.options)
        if options.pop("required_in_terminal", False) and frontend == "cli":
            options["required"] = True
        options.pop("frontends", None)
        return options

    def offered_to(self, frontend: str) -> bool:
        return frontend in self.options.get("frontends", ("cli", "slack"))


# Accepted by every command, before or after its name (`im --json list` = `im list --json`).
GLOBAL_OPTIONS = (
    Argument(("--json",), {"action": "store_true", "help": "machine-readable output (JSON)"}),
    Argument(("--utc",), {"action": "store_true", "help": "times in UTC instead of local time", "frontends": ("cli",)}),
)
GLOBAL_FLAGS = frozenset(flag for a in GLOBAL_OPTIONS for flag in a.flags)
GLOBAL_DESTS = frozenset(flag.lstrip("-").replace("-", "_") for flag in GLOBAL_FLAGS)  # their names in parsed args


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
    group: str = ""  # where `help` lists it; defaults by the first word (DEFAULT_GROUPS)
    module: str | None = None  # set on a stub from the index: the module to import for the real spec
    _parsers: dict[tuple[str, str], argparse.ArgumentParser] = field(default_factory=dict, repr=False)
    _usages: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def parser(self, prog_prefix: str, frontend: str = "cli") -> argparse.ArgumentParser:
        """Built once per front end: parse_args does not change a parser, so it is safe to share."""
        key = (prog_prefix, frontend)
        if key not in self._parsers:
            self._parsers[key] = self._build(prog_prefix, frontend)
        return self._parsers[key]

    def usage(self, prog_prefix: str, frontend: str = "cli") -> str:
        """The one-line usage, formatted once per front end (every command run carries it)."""
        key = (prog_prefix, frontend)
        if key not in self._usages:
            self._usages[key] = self.parser(prog_prefix, frontend).format_usage().strip()
        return self._usages[key]

    def _build(self, prog_prefix: str, frontend: str) -> argparse.ArgumentParser:
        parser = _Parser(
            prog=f"{prog_prefix} {self.name}",
            description=self.description or self.summary,
            epilog=("examples:\n  " + "\n  ".join(f"{prog_prefix} {e}" for e in self.examples)) if self.examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=False,
        )
        for argument in self.arguments:
            parser.add_argument(*argument.flags, **argument.argparse_options(frontend))
        declared = {flag for argument in self.arguments for flag in argument.flags}
        extra = [a for a in GLOBAL_OPTIONS if a.offered_to(frontend) and not declared & set(a.flags)]
        if extra:
            shared = parser.add_argument_group("global options")
            for argument in extra:
                shared.add_argument(*argument.flags, **argument.argparse_options(frontend))
        return parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        message = _friendlier(message)
        unknown = re.match(r"unknown option\(s\): (\S+)", message)
        if unknown:
            flags = [flag for action in self._actions for flag in action.option_strings]
            message += _suggestion(unknown.group(1).split("=")[0], flags)
        raise UsageError(message, self.format_usage().strip())


def _suggestion(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    """git's "did you mean": the closest known word, when one is close enough."""
    close = difflib.get_close_matches(word.lower(), sorted(set(candidates)), n=1, cutoff=0.6)
    return f": did you mean `{prefix}{close[0]}`?" if close else ""


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
    group: str | None = None,
) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        first = name.split()[0]
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
            group=group or DEFAULT_GROUPS.get(first, "other"),
        )
        REGISTRY[spec.path] = spec
        for alias in aliases:
            ALIASES[alias] = spec.path[0]
        return fn

    return decorate


class IndexEntry(NamedTuple):
    """What help and the parser need of a command before its module is imported (see `register_index`)."""

    path: tuple[str, ...]
    module: str
    summary: str
    group: str
    aliases: tuple[str, ...]
    slack: bool
    terminal: bool
    remote: bool


_load_all: Callable[[], None] | None = None  # imports every command module (set with an index)
_environment: list[str] | None = None  # `environment_lines()` as recorded with the index


def register_index(entries: Iterable[IndexEntry], environment: Sequence[str], load_all: Callable[[], None]) -> None:
    """Stubs for commands whose modules are not imported yet, so a terminal start imports only the
    module of the command it runs. A stub becomes the real spec when its module is imported (`loaded`);
    a word the index does not know (an index older than the code) loads every module before it is refused."""
    global _load_all, _environment
    _load_all, _environment = load_all, list(environment)
    for e in entries:
        if e.path in REGISTRY:
            continue
        REGISTRY[e.path] = CommandSpec(
            path=e.path,
            summary=e.summary,
            handler=_unloaded,
            aliases=e.aliases,
            slack=e.slack,
            terminal=e.terminal,
            remote=e.remote,
            group=e.group,
            module=e.module,
        )
        for alias in e.aliases:
            ALIASES[alias] = e.path[0]


def _unloaded(*_: Any) -> Any:
    raise RuntimeError("a command stub was run: call grammar.loaded(spec) first")


def loaded(spec: CommandSpec) -> CommandSpec:
    """The real spec of a stub from the index (its module imported), or the spec itself."""
    if spec.module is None:
        return spec
    with contextlib.suppress(ImportError):  # an index older than the code: every module is loaded below
        importlib.import_module(spec.module)
    if REGISTRY.get(spec.path, spec).module is not None:
        load_all()
    real = REGISTRY.get(spec.path)
    if real is None or real.module is not None:
        REGISTRY.pop(spec.path, None)
        raise UsageError(f"unknown command '{spec.name}'", top_usage("im"))
    return real


def load_all() -> None:
    """Every command module imported (completion scripts and a stale index need them all)."""
    global _load_all
    loader, _load_all = _load_all, None
    if loader is not None:
        loader()
        for path in [p for p, spec in REGISTRY.items() if spec.module is not None]:
            del REGISTRY[path]  # in the index, gone from the code


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


def leading_globals(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Global options written before the command (`im --json list`): (those options, the rest)."""
    argv = list(argv)
    count = 0
    while count < len(argv) and argv[count] in GLOBAL_FLAGS:
        count += 1
    return argv[:count], argv[count:]


def resolve(argv: Sequence[str], prog_prefix: str, frontend: str = "cli") -> tuple[CommandSpec, list[str]]:
    """The command an argv names, and its remaining arguments (leading global options moved after it)."""
    globals_, argv = leading_globals(argv)
    if not argv:
        raise UsageError("no command given", top_usage(prog_prefix, frontend))
    word = argv[0].lower()
    if _load_all is not None and word not in ALIASES and (word,) not in REGISTRY and word not in groups():
        load_all()  # a command newer than the index
    word = ALIASES.get(word, word)
    if (word,) in REGISTRY:
        return loaded(REGISTRY[(word,)]), [*argv[1:], *globals_]
    subcommands = groups().get(word)
    if subcommands:
        names = sorted(s.path[1] for s in subcommands if _available(s, frontend)) or sorted(s.path[1] for s in subcommands)
        if len(argv) < 2 or argv[1].startswith("-"):
            raise UsageError(
                f"'{word}' needs a subcommand: {', '.join(names)}", f"usage: {prog_prefix} {word} <{'|'.join(names)}> ..."
            )
        path = (word, argv[1].lower())
        if path not in REGISTRY:
            hint = _suggestion(argv[1], names, f"{word} ") or f" (expected one of: {', '.join(names)})"
            raise UsageError(f"unknown subcommand '{word} {argv[1]}'{hint}", f"usage: {prog_prefix} help {word}")
        return loaded(REGISTRY[path]), [*argv[2:], *globals_]
    raise UsageError(f"unknown command '{argv[0]}'{_command_suggestion(word, frontend)}", top_usage(prog_prefix, frontend))


def _command_suggestion(word: str, frontend: str) -> str:
    top = _top_words(frontend)
    return _suggestion(word, top + [alias for alias, target in ALIASES.items() if target in top])


def parse(argv: Sequence[str], *, prog_prefix: str, frontend: str = "cli") -> Parsed:
    _, words = leading_globals(argv)
    if len(words) == 2 and words[0].lower() in groups() and words[1] in ("-h", "--help"):  # `im connector --help`
        return Parsed(REGISTRY[("help",)], argparse.Namespace(command=[words[0].lower()], json=False, utc=False))
    spec, rest = resolve(argv, prog_prefix, frontend)
    if any(a in ("-h", "--help") for a in rest):
        return Parsed(REGISTRY[("help",)], argparse.Namespace(command=list(spec.path), json="--json" in rest, utc=False))
    args = spec.parser(prog_prefix, frontend).parse_args(rest)
    return Parsed(spec, args)


def _top_words(frontend: str) -> list[str]:
    return sorted({p[0] for p, spec in REGISTRY.items() if _available(spec, frontend)})


def top_usage(prog_prefix: str, frontend: str = "cli") -> str:
    return f"usage: {prog_prefix} <{'|'.join(_top_words(frontend))}> ...  (try: {prog_prefix} help)"


def help_text(words: Sequence[str], prog_prefix: str, *, frontend: str) -> str:
    if words:
        return _command_help(words, prog_prefix, frontend)
    terminal = frontend == "cli"
    head = f"{prog_prefix} [--json] [--utc] [--version] <command> [options]" if terminal else f"{prog_prefix} <command> [options]"
    lines = [f"usage: {head}   ({prog_prefix} help <command> for details)"]
    for group, entries in _grouped(frontend):
        lines += ["", f"{group}:"]
        lines += [f"  {name:<12} {text}" for name, text in entries]
    if terminal:
        lines += ["", "global options:"]
        lines += [f"  {' '.join(a.flags):<12} {a.options['help']}" for a in GLOBAL_OPTIONS]
        lines += [f"  {'--version':<12} print im's version", f"  {'-h, --help':<12} this help, or a command's"]
        lines += [
            "",
            'environment (read at start-up, also from ./.env; README "Settings" says what each does):',
            *(_environment if _environment is not None else environment_lines()),
        ]
        lines += ["", "exit codes:", *(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)]
    return "\n".join(lines)


def _command_help(words: Sequence[str], prog_prefix: str, frontend: str) -> str:
    path = tuple(w.lower() for w in words)
    path = (ALIASES.get(path[0], path[0]), *path[1:])
    if path not in REGISTRY and path[0] not in groups() and _load_all is not None:
        load_all()  # a command newer than the index
    if path in REGISTRY:
        spec = loaded(REGISTRY[path])
        text = spec.parser(prog_prefix, frontend).format_help().rstrip()
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
    if subs:
        hint = _suggestion(path[1], [s.path[1] for s in subs], f"{path[0]} ")
    else:
        hint = _command_suggestion(path[0], frontend)
    raise UsageError(f"no help for '{' '.join(words)}': unknown command{hint}", top_usage(prog_prefix, frontend))


def _grouped(frontend: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(word, summary)]) from the registry, groups in GROUP_ORDER, then any other."""
    by_group: dict[str, dict[str, str]] = {}
    for path, spec in sorted(REGISTRY.items()):
        if not _available(spec, frontend):
            continue
        entries = by_group.setdefault(spec.group, {})
        if len(path) == 1:
            entries[path[0]] = spec.summary
        else:
            entries[path[0]] = f"{entries[path[0]]}|{path[1]}" if path[0] in entries else path[1]
    order = [*GROUP_ORDER, *sorted(set(by_group) - set(GROUP_ORDER))]
    return [(group, sorted(by_group[group].items())) for group in order if group in by_group]


def environment_lines() -> list[str]:
    """Every setting's variable, from Settings itself (so this list cannot drift from what is read)."""
    from pydantic import SecretStr

    from bot.clock import format_duration
    from bot.config import Settings

    lines = []
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else name.upper()
        default = info.get_default(call_default_factory=True)
        secret = info.annotation is not None and "SecretStr" in str(info.annotation)
        if isinstance(default, SecretStr) or secret:
            shown = "(secret)"
        elif default is None or default == ():
            shown = ""
        elif isinstance(default, tuple):
            shown = f"default {','.join(map(str, default))}"
        elif isinstance(default, dict):  # per severity, written as the variable takes it: SEV-1=5m,SEV-2=15m
            shown = "default " + ",".join(f"{k}={format_duration(v) if isinstance(v, int) else v}" for k, v in default.items())
        elif isinstance(default, bool):
            shown = f"default {str(default).lower()}"
        else:
            shown = f"default {default}"
        text = " ".join(part for part in (info.description or "", shown) if part)
        lines.append(f"  {alias:<26} {text}".rstrip())
    return lines


def _available(spec: CommandSpec, frontend: str) -> bool:
    return spec.slack if frontend == "slack" else spec.terminal


def _friendlier(message: str) -> str:
    message = message.replace("the following arguments are required", "missing required option(s)")
    message = message.replace("unrecognized arguments", "unknown option(s)")
    if message.startswith("missing required option(s): "):
        head, _, names = message.partition(": ")
        message = f"{head}: " + ", ".join(name.split("/")[0] for name in names.split(", "))
    return message
