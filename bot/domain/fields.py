"""Custom fields of an incident (`environment=production`, `customer_impact=high`, ...).

The names an incident may carry are a setting (IM_INCIDENT_FIELDS), so a typo is refused when it is
typed instead of becoming a field nobody maps; connectors map these names, or the built-in ones below,
into their own systems.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from bot.domain.errors import InvalidInput

DEFAULT_FIELDS = ("environment", "customer_impact", "root_cause")
# what every incident has, also usable as a mapping source by connectors
BUILTIN_SOURCES = ("id", "title", "severity", "status", "services", "description", "declared_by")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_VALUE = 500


class InvalidField(InvalidInput):
    """A custom field that cannot be set (a form shows it beside the fields input)."""


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """The setting's names, lowercased; a name that is not one, or that hides a built-in one, is refused."""
    found: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not NAME.match(name):
            raise ValueError(f"'{raw}' is not a field name (lowercase letters, digits and _, starting with a letter)")
        if name in BUILTIN_SOURCES:
            raise ValueError(f"'{name}' is a built-in field of every incident")
        if name not in found:
            found.append(name)
    return tuple(found)


def parse_assignments(items: Sequence[str], allowed: Sequence[str], *, clearing: bool = False) -> dict[str, str | None]:
    """`key=value` items -> {key: value}; with `clearing`, `key=` clears the field (None)."""
    found: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key:
            raise InvalidField(f"'{item[:60]}' is not a field (expected key=value, e.g. environment=production)")
        if key not in allowed:
            known = ", ".join(allowed) or "none (set IM_INCIDENT_FIELDS)"
            raise InvalidField(f"'{key[:40]}' is not an incident field (known: {known})")
        if len(value) > MAX_VALUE:
            raise InvalidField(f"the value of {key} is {len(value)} characters long; at most {MAX_VALUE} are allowed")
        if not value and not clearing:
            raise InvalidField(f"{key}: a value is needed (key=value)")
        if key in found and found[key] != (value or None):
            raise InvalidField(f"{key} is given twice with different values")
        found[key] = value or None
    return found


def merged(current: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """The fields after `changes` (None removes), in the order they were first set."""
    result = dict(current)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def describe_changes(current: Mapping[str, str], changes: Mapping[str, str | None]) -> str:
    """`environment: production (was staging); root_cause cleared`: one timeline line for a change."""
    parts = []
    for key, value in changes.items():
        old = current.get(key)
        if value is None:
            parts.append(f"{key} cleared (was {old})")
        else:
            parts.append(f"{key}: {value}" + (f" (was {old})" if old else ""))
    return "; ".join(parts)


def summary(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in values.items())
