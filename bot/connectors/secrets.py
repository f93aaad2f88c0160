"""Secrets at rest: sealed with Fernet under IM_SECRET_KEY, or kept as a reference `env:VAR_NAME`.

Plain text is never stored, printed or logged; `mask` is what people see.

Sealed form: `fernet2:<salt>:<token>`. The Fernet key is derived from the passphrase with scrypt
(N=2**15, r=8, p=1) and a random 16-byte salt. The salt lives in the sealed value itself, not in a
table or a setting: a value then carries everything needed to open it with the passphrase, no
migration or shared state is needed, a copied row still opens, and `im secrets rotate` re-seals row
by row. A process draws one salt per passphrase for what it seals
(Fernet draws a fresh IV for every token, so sharing a salt leaks nothing) and derived keys are
cached per (passphrase, salt) in memory: scrypt is paid once per process and salt, never on the hot
path of every webhook delivery.

Rotation: values open under IM_SECRET_KEY or any of IM_SECRET_KEY_PREVIOUS, tried in that order as
MultiFernet would, but each key is derived only when the ones before it failed (MultiFernet wants every
key up front, which would pay scrypt for each previous key even when the current one opens the value).
Values are sealed under IM_SECRET_KEY only. The older form `fernet:<token>` (key = SHA-256 of
the passphrase) is still read, and `im secrets rotate` rewrites it in the new form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.config import Settings
from bot.domain.errors import DomainError

if TYPE_CHECKING:  # imported when a secret is sealed or opened: reading connectors needs no cryptography
    from cryptography.fernet import Fernet

ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
PREFIX = "fernet2:"
LEGACY_PREFIX = "fernet:"
SALT_BYTES = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # N=2**15, r=8 needs 32 MiB, just over hashlib's default limit

NO_KEY = (
    "IM_SECRET_KEY is not set: secrets are stored encrypted. Set it to a long random string "
    "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or give the secret as env:VAR_NAME"
)


class SecretError(DomainError):
    """A secret cannot be sealed or opened; the message says what to set."""


@dataclass(frozen=True)
class Keyring:
    """The passphrases: `current` seals and opens, `previous` (older ones, being rotated out) only open."""

    current: str | None
    previous: tuple[str, ...] = ()

    @classmethod
    def of(cls, current: SecretStr | str | None, previous: SecretStr | str | None = None) -> Keyring:
        """From the settings: `previous` may hold several passphrases, comma-separated."""
        now = _plain(current) or None
        older = tuple(p.strip() for p in _plain(previous).split(",") if p.strip())
        return cls(now, tuple(p for p in older if p != now))

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        return cls.of(settings.secret_key, settings.secret_key_previous)

    @property
    def all(self) -> tuple[str, ...]:
        return ((self.current,) if self.current else ()) + self.previous


def _plain(value: SecretStr | str | None) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return (value or "").strip()


@lru_cache(maxsize=256)
def _derived(passphrase: str, salt: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    key = hashlib.scrypt(passphrase.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return Fernet(base64.urlsafe_b64encode(key))


@lru_cache(maxsize=32)
def _legacy(passphrase: str) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest()))


@lru_cache(maxsize=32)
def _sealing_salt(passphrase: str) -> bytes:
    """This process's salt for what it seals under `passphrase` (see the module docstring)."""
    return os.urandom(SALT_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(value: str, keys: Keyring) -> str:
    """What to store for a secret the user gave: the env reference as is, else the ciphertext."""
    value = value.strip()
    if ENV_REF.match(value):
        return value
    if not keys.current:
        raise SecretError(NO_KEY)
    salt = _sealing_salt(keys.current)
    return f"{PREFIX}{_b64(salt)}:{_derived(keys.current, salt).encrypt(value.encode()).decode()}"


def is_sealed(stored: str) -> bool:
    """Ciphertext (as opposed to an env reference)."""
    return stored.startswith((PREFIX, LEGACY_PREFIX))


def reveal(stored: str, keys: Keyring) -> str:
    match = ENV_REF.match(stored)
    if match:
        value = os.environ.get(match.group(1))
        if not value:
            raise SecretError(f"the secret refers to ${match.group(1)}, which is not set in this environment")
        return value
    if not is_sealed(stored):
        raise SecretError("a stored secret is in an unknown format")
    if not keys.all:
        raise SecretError(NO_KEY)
    from cryptography.fernet import InvalidToken

    candidates, token = _openers(stored, keys.all)
    for fernet in candidates:  # lazily: a previous key is derived only when the keys before it failed
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            continue
    raise SecretError(
        "neither IM_SECRET_KEY nor IM_SECRET_KEY_PREVIOUS opens the stored secret "
        "(was the key changed? put the old one in IM_SECRET_KEY_PREVIOUS)"
    )


def reseal(stored: str, keys: Keyring) -> str:
    """The same secret sealed afresh under the current key; an env reference is returned as it is."""
    if not is_sealed(stored):
        return stored
    if not keys.current:
        raise SecretError(NO_KEY)
    return seal(reveal(stored, keys), keys)


def _openers(stored: str, passphrases: Sequence[str]) -> tuple[Iterator[Fernet], str]:
    if stored.startswith(LEGACY_PREFIX):
        return (_legacy(p) for p in passphrases), stored.removeprefix(LEGACY_PREFIX)
    salt_text, _, token = stored.removeprefix(PREFIX).partition(":")
    try:
        salt = _unb64(salt_text)
    except (binascii.Error, ValueError):
        salt = b""
    if len(salt) != SALT_BYTES or not token:
        raise SecretError("a stored secret is in an unknown format")
    return (_derived(p, salt) for p in passphrases), token


def mask(stored_or_plain: str | None) -> str:
    if not stored_or_plain:
        return "(none)"
    match = ENV_REF.match(stored_or_plain)
    if match:
        return f"from ${match.group(1)}"
    return "•••••••• (encrypted)"
