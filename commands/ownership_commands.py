"""Ownership commands: assign, take, unassign, role. One grammar for Slack and the terminal.

A person is named by a Slack mention (`<@U123|alice>`, what Slack sends for `@alice`), a Slack user ID
(`U123`) or an email (`alice@example.com`, `--user` in a terminal). The incident is `INC-3` as the first
word, `--incident`, or (in Slack) the thread or war room the command is typed in. Nothing here calls
another system: the person is recorded as given, and adapters match them up after the ack.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from bot.domain.incidents import Change
from bot.domain.models import Origin
from bot.domain.people import PersonRef
from commands.context import Context
from commands.grammar import UsageError, argument, command
from commands.results import Done, Result

_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|([^>]*))?>")
_USER_ID = re.compile(r"@?([UW][A-Z0-9]{2,30})")
_MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")


def person(ctx: Context, text: str) -> PersonRef:
    """A person as typed: a Slack mention or user ID, or an email."""
    value = text.strip()
    if found := _MENTION.fullmatch(value):
        ref = PersonRef(slack_user_id=found.group(1), name=(found.group(2) or None))
    elif found := _USER_ID.fullmatch(value):
        ref = PersonRef(slack_user_id=found.group(1))
    elif found := _MAILTO.fullmatch(value):
        ref = PersonRef(email=found.group(1))
    elif "@" in value[1:]:
        ref = PersonRef(email=value)
    elif value.startswith("@"):
        raise UsageError(
            f"'{value}' is not a Slack user I can see: pick them from Slack's @ list, or give a user ID or an email", ctx.usage
        )
    else:
        raise UsageError(f"'{value}' is not a person (expected @someone, a Slack user ID such as U0123 or an email)", ctx.usage)
    for check in ctx.im.person_checks:  # e.g. the Slack adapter knows who left the workspace
        check(ref)
    return ref


def me(ctx: Context) -> PersonRef:
    if ctx.actor.origin != Origin.SLACK:
        raise UsageError("from a terminal, say who: im assign INC-3 --user you@example.com", ctx.usage)
    return PersonRef(slack_user_id=ctx.actor.id, name=ctx.actor.name)


def _one_person(ctx: Context, words: list[str], user: str | None) -> PersonRef | None:
    if user and words:
        raise UsageError("give the person once: either @someone or --user", ctx.usage)
    if len(words) > 1:
        raise UsageError(f"one person at a time (got {' '.join(words)})", ctx.usage)
    given = user or (words[0] if words else None)
    return person(ctx, given) if given else None


def _owner_done(ctx: Context, change: Change, who: str) -> Done:
    ref = change.incident.ref
    view = ctx.im.describe(change.incident)
    if change.event is None:
        return Done(message=f"{ref}: {who} already owns it, nothing changed", incident=view, changed=False)
    return Done(message=f"{ref} is now owned by {who}", incident=view)


def _label(ref: PersonRef) -> str:
    return ref.name or ref.email or ref.slack_user_id or "them"


def _assign(ctx: Context, ref: str | int, who: PersonRef | None) -> Change:
    return ctx.im.incidents.assign(ref, who, actor=ctx.actor, context=ctx.origin_context, once_key=ctx.once_key)


def _incident_only(ctx: Context, args: argparse.Namespace, refusal: Callable[[str], str]) -> str | int:
    """The incident of a command that takes no other words; `refusal` says what to do with extra ones."""
    words = ctx.split_incident(args.incident, args.words)
    if words.rest:
        raise UsageError(refusal(" ".join(words.rest)), ctx.usage)
    return ctx.incident(words.incident)


INCIDENT = argument("--incident", "-i", metavar="ID", help="incident ID, e.g. INC-12")
USER = argument("--user", "-u", metavar="PERSON", help="Slack user ID (U0123...) or email")


@command(
    "assign",
    summary="make someone the incident's owner",
    examples=("assign INC-3 @alice", "assign --incident INC-3 --user alice@example.com"),
)
@INCIDENT
@USER
@argument("words", nargs="*", metavar="[INC-N] PERSON", help="the incident (optional in its thread) and @someone")
def assign(ctx: Context, args: argparse.Namespace) -> Result:
    words = ctx.split_incident(args.incident, args.words)
    who = _one_person(ctx, words.rest, args.user)
    if who is None:
        raise UsageError("whom? add @someone (or --user EMAIL)", ctx.usage)
    return _owner_done(ctx, _assign(ctx, ctx.incident(words.incident), who), _label(who))


@command("take", summary="take the incident: make yourself its owner", terminal=False, examples=("take", "take INC-3"))
@INCIDENT
@argument("words", nargs="*", metavar="[INC-N]", help="the incident (optional in its thread or war room)")
def take(ctx: Context, args: argparse.Namespace) -> Result:
    ref = _incident_only(ctx, args, lambda rest: f"take is for yourself (to give it to someone: assign ... {rest})")
    return _owner_done(ctx, _assign(ctx, ref, me(ctx)), "you")


@command("unassign", summary="leave the incident without an owner", examples=("unassign INC-3",))
@INCIDENT
@argument("words", nargs="*", metavar="[INC-N]", help="the incident (optional in its thread or war room)")
def unassign(ctx: Context, args: argparse.Namespace) -> Result:
    change = _assign(ctx, _incident_only(ctx, args, lambda rest: f"unknown words: {rest}"), None)
    ref = change.incident.ref
    view = ctx.im.describe(change.incident)
    if change.event is None:
        return Done(message=f"{ref} has no owner: nothing changed", incident=view, changed=False)
    return Done(message=f"{ref} has no owner now", incident=view)


@command(
    "role",
    summary="put someone in a role on the incident (commander, ...), or clear it",
    examples=("role INC-3 commander @bob", "role INC-3 commander --clear", "role commander --user bob@example.com"),
)
@INCIDENT
@USER
@argument("--clear", action="store_true", help="nobody in this role")
@argument("words", nargs="*", metavar="[INC-N] ROLE [PERSON]", help="the incident (optional in its thread), the role, @someone")
def role(ctx: Context, args: argparse.Namespace) -> Result:
    words = ctx.split_incident(args.incident, args.words)
    if not words.rest:
        raise UsageError(f"which role? ({', '.join(ctx.im.incidents.policy.roles)})", ctx.usage)
    name, rest = ctx.im.incidents.policy.check_role(words.rest[0]), words.rest[1:]
    who = _one_person(ctx, rest, args.user)
    if who is None and not args.clear:
        raise UsageError(f"whom? add @someone, or --clear to leave {name} empty", ctx.usage)
    if who is not None and args.clear:
        raise UsageError("either a person or --clear, not both", ctx.usage)
    change = ctx.im.incidents.set_role(
        ctx.incident(words.incident), name, who, actor=ctx.actor, context=ctx.origin_context, once_key=ctx.once_key
    )
    ref = change.incident.ref
    view = ctx.im.describe(change.incident)
    if change.event is None:
        return Done(message=f"{ref}: nothing changed ({name} is already so)", incident=view, changed=False)
    said = f"{_label(who)} is {name}" if who else f"{name} cleared"
    return Done(message=f"{ref}: {said}", incident=view)
