"""PagerDuty Events API v2 client (`POST /v2/enqueue`): trigger, acknowledge and resolve an alert by its
dedup_key, with nothing but a routing (integration) key.

One attempt per call: the caller (a durable outbox) retries. Retrying is safe because every event names
its dedup_key, which PagerDuty uses to keep one alert per key: a trigger for a key whose alert is open is
deduplicated into it, and acknowledge/resolve are idempotent, so an event sent twice (its answer lost,
then retried) has the effect of one.

Answers (from PagerDuty's description): 202 accepted; 400 an invalid event (not retried, PagerDuty's
`errors` are kept); 429 too many events; 5xx and network failures retry. The routing key is part of the
body only: never logged, never in an exception message or a repr.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from integrations.pagerduty.api.client import CallStats
from integrations.pagerduty.api.errors import (
    PagerDutyError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
    rejected_message,
)

log = logging.getLogger(__name__)

EVENTS_URL = "https://events.pagerduty.com"
ENQUEUE = "/v2/enqueue"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
# An Events API v2 integration key: 32 letters and digits (event orchestration keys start with R0).
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")

Action = Literal["trigger", "acknowledge", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]


def is_routing_key(text: str) -> bool:
    return bool(ROUTING_KEY.match(text))


class Link(BaseModel):
    href: str
    text: str | None = None


class Payload(BaseModel):
    """What a trigger says about the problem; acknowledge and resolve carry none."""

    model_config = ConfigDict(populate_by_name=True)

    summary: str = Field(max_length=MAX_SUMMARY)
    source: str
    severity: Severity
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: dict[str, Any] = Field(default_factory=dict)


class Event(BaseModel):
    routing_key: str
    event_action: Action
    dedup_key: str = Field(max_length=MAX_DEDUP_KEY)
    payload: Payload | None = None
    client: str | None = None
    client_url: str | None = None
    links: list[Link] = Field(default_factory=list)

    def __repr__(self) -> str:  # the routing key stays out of every log line and traceback
        return f"Event(event_action={self.event_action!r}, dedup_key={self.dedup_key!r})"

    __str__ = __repr__

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Accepted(BaseModel):
    """PagerDuty's 202: `status` "success", `message`, and the dedup_key it files the event under."""

    status: str
    message: str | None = None
    dedup_key: str | None = None


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _errors(resp: httpx.Response) -> tuple[str | None, list[str]]:
    """PagerDuty's Events error shape: {status, message, errors}."""
    try:
        doc = resp.json()
    except ValueError:
        return None, []
    if not isinstance(doc, dict):
        return None, []
    errors = doc.get("errors")
    message = doc.get("message")
    return (message if isinstance(message, str) else None), [str(e) for e in errors] if isinstance(errors, list) else []


class EventsClient:
    def __init__(
        self,
        routing_key: str,
        *,
        url: str = EVENTS_URL,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        on_response: Callable[[CallStats], None] | None = None,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        self._routing_key = routing_key
        self.url = url.rstrip("/")
        self._on_response = on_response
        self._before_request = before_request  # pacing: returns when the event may leave (or raises)
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"EventsClient(url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self, action: Action, dedup_key: str, *, payload: Payload | None = None, links: list[Link] | None = None
    ) -> Accepted:
        try:
            event = Event(
                routing_key=self._routing_key, event_action=action, dedup_key=dedup_key, payload=payload, links=links or []
            )
        except ValidationError as exc:
            raise RequestRejectedError(f"not a valid Events API v2 event: {exc.errors()[0]['msg']}") from None
        if self._before_request is not None:
            self._before_request()
        started = time.monotonic()
        try:
            resp = self._http.post(ENQUEUE, json=event.body())
        except httpx.TimeoutException:
            self._emit(None, started)
            raise UnavailableError("PagerDuty's Events API did not answer in time; the event will be sent again") from None
        except httpx.TransportError as exc:
            self._emit(None, started)
            log.info("PagerDuty Events API %s failed: %s", action, type(exc).__name__)
            raise UnavailableError("Could not reach PagerDuty's Events API; the event will be sent again") from None
        self._emit(resp.status_code, started, _retry_after(resp) if resp.status_code == 429 else None)
        if resp.status_code == 202 or resp.is_success:
            try:
                return Accepted.model_validate(resp.json())
            except (ValueError, ValidationError):
                return Accepted(status="success", dedup_key=dedup_key)
        raise self._error(resp)

    @staticmethod
    def _error(resp: httpx.Response) -> PagerDutyError:
        status = resp.status_code
        message, errors = _errors(resp)
        if status == 429:
            return RateLimitedError(
                "PagerDuty's Events API is throttling this routing key; the event will be sent again",
                status=status,
                retry_after=_retry_after(resp),
            )
        if status >= 500:
            return UnavailableError(
                f"PagerDuty's Events API is unavailable (HTTP {status}); the event will be sent again", status=status
            )
        return RequestRejectedError(rejected_message(status, message, errors), status=status, pd_errors=errors)

    def _emit(self, status: int | None, started: float, retry_after: float | None = None) -> None:
        duration = time.monotonic() - started
        log.debug("PagerDuty POST %s -> %s in %.3fs", ENQUEUE, status, duration)
        if self._on_response is None:
            return
        stats = CallStats(
            method="POST", path=ENQUEUE, endpoint=ENQUEUE, status=status, duration_s=duration, attempt=1, retry_after=retry_after
        )
        try:
            self._on_response(stats)
        except Exception:  # metrics must never break a PagerDuty call
            log.exception("on_response callback failed")
