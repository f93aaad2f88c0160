"""What arrives at /slack/events, before Bolt sees it, and the fields listeners must not trust.

The signature is checked on the raw bytes (no decoding, no parsing first); only then is the body decoded
and parsed. Whatever was sent, :func:`bolt_request` returns a request whose body is a JSON object, or
raises :class:`Refused` with a status (401 unsigned, 400 unreadable) and a reason. Text the database
cannot take (NUL on PostgreSQL) fails inside a listener's transaction and is answered by Bolt's error
handler (bot/slack/app.py), so nothing is half-written there either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier


class Refused(Exception):
    """A request answered with a 4xx and a reason, before any listener runs."""

    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(reason)


class MalformedPayload(ValueError):
    """A signed payload lacks a field a listener needs, or has it in another type: answered 400."""


class RawBodyVerifier(SignatureVerifier):
    """slack_sdk's check (5-minute window, constant-time compare) over the bytes as received: the stock
    one decodes the body as UTF-8 first, which raises on bytes that are not."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str | None:
        raw = body if isinstance(body, bytes) else body.encode()
        base = b"v0:" + timestamp.encode() + b":" + raw
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    try:
        return verifier.is_valid_request(body, dict(headers))
    # a timestamp that is no number (or one too big for a float), a signature that is not ASCII
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return False


def bolt_request(verifier: SignatureVerifier, body: bytes, query: str, headers: Mapping[str, str]) -> BoltRequest:
    if not signed(verifier, body, headers):
        raise Refused(401, "invalid signature")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    try:
        # Bolt parses here (JSON, form, `payload=<JSON>`) and reads the team and user out of the result
        request = BoltRequest(body=text, query=query, headers=dict(headers))
    except RecursionError:
        raise Refused(400, "body is nested too deeply") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise Refused(400, f"body is not a Slack request ({exc.__class__.__name__})") from None
    if not isinstance(request.body, dict):
        raise Refused(400, "body is not a Slack request (not an object)")
    return request


def payload_user(body: Mapping[str, Any]) -> dict[str, str]:
    """The acting user of an interaction payload, with only the string fields we use (team_id: Slack Connect)."""
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not user["id"]:
        raise MalformedPayload("the payload names no user")
    return {k: v for k in ("id", "name", "username", "team_id") if isinstance(v := user.get(k), str)}


def dig(container: Any, *path: str) -> Any:
    """``container[path[0]][path[1]]...`` when every step is an object; else None."""
    value = container
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def text_field(container: Any, *path: str) -> str | None:
    """:func:`dig`, when what it finds is a string."""
    value = dig(container, *path)
    return value if isinstance(value, str) else None
