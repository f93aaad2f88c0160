"""Who may change what (design rule 13): checked in the domain, so Slack and the terminal get the same
answer. A refusal is a PermissionDenied with the reason for the person; it changes nothing and is logged.

- People from another workspace in a shared channel (Slack Connect) may read, never change.
- Closing or reopening an incident of a protected severity (default SEV-1 and SEV-2), or lowering its
  severity, needs its owner, its commander or an admin.
- A terminal is an admin: whoever runs `im` there holds the database credentials already.
- PagerDuty and the scheduler are the systems themselves: their reports are applied as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.domain.errors import DomainError
from bot.domain.models import Origin, Severity

if TYPE_CHECKING:
    from bot.domain.incidents import Actor
    from bot.domain.people import Person

log = logging.getLogger(__name__)

DEFAULT_ROLES = ("commander", "communications")
DEFAULT_PROTECTED = frozenset({"SEV-1", "SEV-2"})
GROUP_PREFIX = "group:"  # an admin entry naming a user group (e.g. a Slack user group S0123)


class PermissionDenied(DomainError):
    pass


@dataclass(frozen=True)
class Policy:
    roles: tuple[str, ...] = DEFAULT_ROLES
    admins: frozenset[str] = frozenset()  # actor keys ("slack:U0123") and groups ("group:S0123")
    protected_severities: frozenset[str] = DEFAULT_PROTECTED
    # members of a user group, as the adapter that knows groups last read them (never a network call here)
    group_members: Callable[[str], frozenset[str]] = field(default=lambda _group: frozenset())

    def is_admin(self, actor: Actor) -> bool:
        if actor.origin == Origin.CLI:
            return True
        if actor.key in self.admins:
            return True
        groups = [a.removeprefix(GROUP_PREFIX) for a in self.admins if a.startswith(GROUP_PREFIX)]
        return any(actor.id in self.group_members(group) for group in groups)

    def check_may_change(self, actor: Actor, what: str) -> None:
        if actor.external:
            self._refuse(actor, f"you are in another workspace: you can read incidents here, but not {what}")

    def check_protected(self, actor: Actor, *, severity: str, what: str, owner: Person | None, commander: Person | None) -> None:
        """Closing, reopening or lowering the severity of a protected incident."""
        self.check_may_change(actor, what)
        if severity not in self.protected_severities or actor.origin in (Origin.PAGERDUTY, Origin.SCHEDULER):
            return
        if self.is_admin(actor) or any(_is(actor, p) for p in (owner, commander)):
            return
        self._refuse(actor, f"{what} a {severity} incident needs its owner, its commander or an admin")

    def check_role(self, role: str) -> str:
        name = role.strip().lower()
        if name not in self.roles:
            raise DomainError(f"'{role}' is not a role here (roles: {', '.join(self.roles)})")
        return name

    @staticmethod
    def lowers(old: str, new: str) -> bool:
        return Severity(new).rank > Severity(old).rank

    @staticmethod
    def _refuse(actor: Actor, reason: str) -> None:
        log.warning("refused %s: %s", actor.key, reason)
        raise PermissionDenied(f"Not allowed: {reason}.")


def _is(actor: Actor, person: Person | None) -> bool:
    if person is None:
        return False
    return actor.origin == Origin.SLACK and person.slack_user_id == actor.id
