"""Logging for `im serve` and the terminal: text or one JSON object a line on stderr.

Invariant: every line is formatted here, and every string in it passes the redactor first, so no
configured secret (Slack tokens and signing secret, `IM_SECRET_KEY`, the metrics token, the database
password), no credential-shaped header value (`Bearer ...`, `Token token=...`, `xox?-...`) and no email
address's local part (`***@example.com`) reaches a log line, whatever a library chose to log. Fields known from the surrounding work (incident, job,
connector, request) come from `log_context` or a record's `extra` and are added to each line.

Our own formatter rather than python-json-logger: the line is a dict of a dozen known keys and a
json.dumps; the redaction has to see each string before it is encoded; and a dependency for thirty
lines would be one more thing to keep current.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import SecretStr

from bot.config import Settings

FIELDS = ("incident", "job", "connector", "request", "destination", "kind", "method", "path")
QUIET_LOGGERS = ("apscheduler",)  # its start-up and per-run chatter says nothing an operator needs
_context: ContextVar[dict[str, Any] | None] = ContextVar("im_log_context", default=None)
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(token\s+token=)[^\s\"',;]+"),
    re.compile(r"()\bxox[a-z]-[A-Za-z0-9-]+"),
    re.compile(r"()\bxapp-[A-Za-z0-9-]+"),
)
MASK = "[redacted]"
# an email address's local part (a person's name, often): the domain is left, enough to tell accounts apart
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+\-]+(@|%40)(?=[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Fields every line logged inside this block carries (this thread or task, and what it starts)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret containing another is masked whole; short values would mask ordinary words
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return _EMAIL_LOCAL.sub(lambda m: "***" + m.group(1), text)


def secrets_of(settings: Settings) -> list[str]:
    """Every SecretStr setting (a new one is covered without a change here), and the database password."""
    values = [v.get_secret_value() for name in type(settings).model_fields if isinstance(v := getattr(settings, name), SecretStr)]
    password = re.match(r"^[^:]+://[^:/@]+:([^@]+)@", settings.database_url)
    return values + ([password.group(1)] if password else [])


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_context.get() or {})
    fields.update({key: getattr(record, key) for key in FIELDS if hasattr(record, key)})
    return fields


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if fields:
            line += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return self.redact(line)


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps({k: self.redact(v) if isinstance(v, str) else v for k, v in entry.items()}, default=str)


class _OurHandler(logging.StreamHandler):
    """Marks the handler we installed, so configuring again replaces it instead of doubling every line."""


def configure(settings: Settings, *, default_level: str, stream: IO[str] | None = None, force: bool = True) -> None:
    """Install the handler at IM_LOG_LEVEL (or `default_level`). Without `force`, a process whose
    logging someone else set up already (an embedding program, a test runner) is left as it is."""
    root = logging.getLogger()
    others = [h for h in root.handlers if not isinstance(h, _OurHandler)]
    if others and not force:
        return
    for handler in root.handlers[:]:
        if force or isinstance(handler, _OurHandler):
            root.removeHandler(handler)
    redact = Redactor(secrets_of(settings))
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if settings.log_format == "json" else TextFormatter(redact))
    root.addHandler(handler)
    root.setLevel(settings.log_level or default_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
