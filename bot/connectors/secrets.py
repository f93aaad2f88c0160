"""Secrets at rest: sealed with Fernet under IM_SECRET_KEY, or kept as a reference `env:VAR_NAME`.

Plain text is never stored, printed or logged; `mask` is what people see.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from cryptography.fernet import Fernet, InvalidToken

from bot.domain.errors import DomainError

ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


class SecretError(DomainError):
    """A secret cannot be sealed or opened; the message says what to set."""


def _fernet(key: str | None) -> Fernet:
    if not key:
        raise SecretError(
            "IM_SECRET_KEY is not set: secrets are stored encrypted. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or give the secret as env:VAR_NAME"
        )
    # Any passphrase works: it is stretched to a Fernet key (SHA-256, URL-safe base64).
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def seal(value: str, key: str | None) -> str:
    """What to store for a secret the user gave: the env reference as is, else the ciphertext."""
    value = value.strip()
    if ENV_REF.match(value):
        return value
    return "fernet:" + _fernet(key).encrypt(value.encode()).decode()


def reveal(stored: str, key: str | None) -> str:
    match = ENV_REF.match(stored)
    if match:
        value = os.environ.get(match.group(1))
        if not value:
            raise SecretError(f"the secret refers to ${match.group(1)}, which is not set in this environment")
        return value
    if not stored.startswith("fernet:"):
        raise SecretError("a stored secret is in an unknown format")
    try:
        return _fernet(key).decrypt(stored.removeprefix("fernet:").encode()).decode()
    except InvalidToken:
        raise SecretError("IM_SECRET_KEY does not open the stored secret (was the key changed?)") from None


def mask(stored_or_plain: str | None) -> str:
    if not stored_or_plain:
        return "(none)"
    match = ENV_REF.match(stored_or_plain)
    if match:
        return f"from ${match.group(1)}"
    return "•••••••• (encrypted)"
