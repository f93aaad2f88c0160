"""The seed's debug mode: every PagerDuty request and response logged, with nothing secret in it.

On for every connector with PAGERDUTY_DEBUG=true, or for one with its config keys: `debug` (a line per
call: method, path, status, time, rate-limit headers), `log_requests` and `log_responses` (that line
plus the request or response body, truncated). Implemented as an httpx transport wrapper, so the API
client (integrations/pagerduty/api/) stays as it is and knows nothing of it.

What is masked before a line is logged: the API key and the connector's webhook secrets wherever they
appear, every `Authorization` value (never logged at all), any body field named like a secret (PagerDuty
answers a new webhook subscription with its signing secret), the local part of every email address
(the `From` header and bodies alike), and Slack tokens; then the logging handlers' own redaction runs.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.logging_setup import MASK, Redactor

log = logging.getLogger("integrations.pagerduty.debug")

BODY_LIMIT = 2000  # characters of a body kept in a line
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after")
_SECRET_FIELD = re.compile(r"(?i)(secret|token|password|api_key|apikey|authorization)")


@dataclass(frozen=True)
class Switches:
    requests: bool  # request bodies too
    responses: bool  # response bodies too


def switches(debug: bool, log_requests: bool, log_responses: bool, *, everything: bool) -> Switches | None:
    """None when debug mode is off for this connector (the transport is then not wrapped at all)."""
    if everything:
        return Switches(requests=True, responses=True)
    if not (debug or log_requests or log_responses):
        return None
    return Switches(requests=log_requests, responses=log_responses)


class Masker:
    def __init__(self, secrets: list[str]) -> None:
        self.redact = Redactor(secrets)

    def text(self, text: str) -> str:
        return self.redact(text)  # the configured secrets, credential-shaped values, emails' local parts

    def body(self, raw: bytes) -> str:
        if not raw:
            return ""
        try:
            shown = json.dumps(_masked(json.loads(raw)), separators=(",", ":"))
        except ValueError:
            shown = raw.decode("utf-8", "replace")
        shown = self.text(shown)
        return shown if len(shown) <= BODY_LIMIT else f"{shown[:BODY_LIMIT]}... ({len(shown)} characters)"


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if _SECRET_FIELD.search(str(k)) and v not in (None, "") else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


class DebugTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, *, connector: str, switches: Switches, secrets: list[str]) -> None:
        self.inner = inner
        self.connector = connector
        self.switches = switches
        self.mask = Masker(secrets)
        log.setLevel(logging.DEBUG)  # asked for explicitly: shown whatever IM_LOG_LEVEL says of other lines

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self.mask.text(request.url.raw_path.decode("ascii", "replace"))
        sender = request.headers.get("from")
        head = f"PagerDuty {request.method} {target}" + (f" (From: {self.mask.text(sender)})" if sender else "")
        extra = {"connector": self.connector}
        if self.switches.requests and request.content:
            log.debug("%s request body: %s", head, self.mask.body(request.content), extra=extra)
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
        except httpx.HTTPError as exc:
            log.debug("%s failed after %.0f ms: %s", head, _ms(started), type(exc).__name__, extra=extra)
            raise
        if self.switches.responses:
            response.read()
        limits = " ".join(f"{name}={response.headers[name]}" for name in RATE_HEADERS if name in response.headers)
        line = f"{head} -> {response.status_code} in {_ms(started):.0f} ms" + (f" [{limits}]" if limits else "")
        if self.switches.responses:
            line += f" response body: {self.mask.body(response.content)}"
        log.debug("%s", line, extra=extra)
        return response

    def close(self) -> None:
        self.inner.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
