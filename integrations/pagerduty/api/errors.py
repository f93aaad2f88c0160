"""Typed PagerDuty errors, each carrying a message a user understands.

No error ever holds the API key: messages are built from PagerDuty's error body, the HTTP
status and the resource we asked for, never from request headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PagerDutyError(Exception):
    """Base class. ``user_message`` is safe to show to people in chat."""

    default_message = "PagerDuty request failed"
    default_retryable = False

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        pd_code: int | None = None,
        pd_errors: Sequence[str] = (),
    ) -> None:
        self.user_message: str = user_message or self.default_message
        self.status: int | None = status
        self.retry_after: float | None = retry_after
        self.retryable: bool = self.default_retryable if retryable is None else retryable
        self.pd_code: int | None = pd_code
        self.pd_errors: tuple[str, ...] = tuple(str(e) for e in pd_errors)
        super().__init__(self.user_message)

    def __str__(self) -> str:
        return self.user_message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.user_message!r}, status={self.status!r}, "
            f"retry_after={self.retry_after!r}, retryable={self.retryable!r})"
        )


class AuthenticationError(PagerDutyError):
    """401: the key is wrong, revoked or malformed."""

    default_message = "PagerDuty rejected the API key"


class NotFoundError(PagerDutyError):
    """404 for a resource the client named (``kind`` and ``resource_id``)."""

    default_message = "PagerDuty could not find what was asked for"

    def __init__(self, kind: str, resource_id: str, **kwargs: Any) -> None:
        self.kind = kind
        self.resource_id = resource_id
        super().__init__(f"PagerDuty {kind} {resource_id} not found", **kwargs)


class RateLimitedError(PagerDutyError):
    """429 after all attempts; ``retry_after`` (seconds) comes from ``ratelimit-reset``."""

    default_message = "PagerDuty is rate limiting us; the request will be retried later"
    default_retryable = True


class UnavailableError(PagerDutyError):
    """5xx, network failure or timeout."""

    default_message = "PagerDuty is unavailable right now; the request will be retried later"
    default_retryable = True


class RequestRejectedError(PagerDutyError):
    """Any other 4xx: PagerDuty's own ``error.message`` / ``errors`` are included."""

    default_message = "PagerDuty rejected the request"


class DuplicateIncidentKeyError(RequestRejectedError):
    """POST /incidents refused: an open incident with this incident_key exists on the service."""

    def __init__(self, incident_key: str, service_id: str, **kwargs: Any) -> None:
        self.incident_key = incident_key
        self.service_id = service_id
        super().__init__(
            f"PagerDuty already has an open incident with key {incident_key} on service {service_id}",
            **kwargs,
        )


class ConfigurationError(PagerDutyError):
    """The call cannot be made as configured (e.g. no From email for a write)."""

    default_message = "The PagerDuty connector is not configured for this action"


def rejected_message(status: int, pd_message: str | None, pd_errors: Sequence[str]) -> str:
    """Human text for a 4xx PagerDuty rejected, including PD's own explanation."""
    head = "PagerDuty refused the request" if status == 403 else "PagerDuty rejected the request"
    parts = [p for p in [pd_message, "; ".join(str(e) for e in pd_errors)] if p]
    return f"{head}: {' - '.join(parts)}" if parts else f"{head} (HTTP {status})"
