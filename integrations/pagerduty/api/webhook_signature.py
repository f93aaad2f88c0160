"""Webhooks v3 ``X-PagerDuty-Signature``: ``v1=<hex HMAC-SHA256 of the raw body>``.

During secret rotation PagerDuty sends several comma-separated ``v1=`` values; a delivery is
genuine when any of them matches any of our secrets.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SCHEME = "v1"


def _digest(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str) -> str:
    """The header value PagerDuty would send for ``body`` signed with ``secret``."""
    return f"{SCHEME}={_digest(body, secret)}"


def _v1_signatures(header: str) -> list[str]:
    found: list[str] = []
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme.strip().lower() == SCHEME and value.strip():
            found.append(value.strip().lower())
    return found


def verify(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True when a ``v1=`` signature in ``header`` matches the body under one of ``secrets``.

    Every (signature, secret) pair is compared with ``hmac.compare_digest``; non-v1 schemes are
    ignored; a missing, empty or garbled header gives False.
    """
    if not header or not isinstance(header, str):
        return False
    candidates = _v1_signatures(header)
    expected = [_digest(body, s) for s in secrets if s]
    if not candidates or not expected:
        return False
    matched = False
    for got in candidates:
        for want in expected:
            # compare_digest on ASCII str; non-ASCII input would raise TypeError.
            if got.isascii() and hmac.compare_digest(got, want):
                matched = True
    return matched
