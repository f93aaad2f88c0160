"""One notion of "now" for the whole app: aware UTC datetimes (the store keeps them in UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def short(value: datetime | None) -> str:
    return "-" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def with_seconds(value: datetime | None) -> str:
    return "-" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: int) -> str:
    """A setting's duration as it would be written: 15m, 1h, 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def human_duration(seconds: float) -> str:
    """An elapsed time for people, its two largest units: 45s, 4m 30s, 1h 2m, 3d 4h."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


def parse_duration(value: str | int) -> int:
    """`30s`, `5m`, `1h`, `2d` or a number of seconds -> seconds (more than zero)."""
    match = _DURATION.match(str(value).strip().lower())
    if not match:
        raise ValueError("expected a duration such as 30s, 5m, 1h")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be more than zero")
    return seconds


def seconds_between(start: datetime, end: datetime | None) -> int | None:
    """Whole seconds from `start` to `end` (never negative); None while `end` is unset."""
    return None if end is None else max(0, int((as_utc(end) - as_utc(start)).total_seconds()))
