"""`POST /alerts/{source}`: authenticate, check, store, answer; the alert is applied after the commit.

Order, cheapest refusal first: the source must exist (404); its credential is checked before the body
is parsed when it travels in a header (Alertmanager's bearer token, or `X-Routing-Key`), and right
after the JSON is read when it is in the body (Events API v2's `routing_key`), with a constant-time
compare (401 for Alertmanager; for Events API v2 PagerDuty's 400 shape, since its API answers nothing
else for an event it will not take). Only then the source's rate cap (429 with Retry-After: a forger
cannot use up a real source's allowance), the 512 KB cap and the event's checks (400 with the reason).
A good request is stored (one outbox job per alert carrying the event, one INSERT statement that is its
own transaction: on PostgreSQL in autocommit, one round trip) and answered 202.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import insert
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Im
from bot.clock import utcnow
from bot.connectors import secrets
from bot.connectors.webhook_guard import RateLimiter
from bot.domain.alert_flow import APPLY, DESTINATION, received
from bot.domain.alerts import AlertEvent, SourceKind, SourceRules, service_for
from bot.domain.outbox import JOBS, JobSpec, job_values
from bot.store import note_enqueued
from integrations.alerts import alertmanager, events_v2
from integrations.alerts.sources import Known, Sources

log = logging.getLogger(__name__)
MAX_BODY = 512 * 1024  # PagerDuty's limit for an event
Answer = tuple[int, dict[str, Any], dict[str, str]]


class TooLarge(Exception):
    pass


async def capped_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to pass `limit` (never read whole into memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class AlertReceiver:
    def __init__(self, im: Im, sources: Sources) -> None:
        self.im = im
        self.sources = sources
        self.limiter = RateLimiter(im.settings.alerts_max_per_second)

    def route(self) -> Route:
        return Route("/alerts/{source}", self.endpoint, methods=["POST"])

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["source"]
        try:
            hit, known = self.sources.recent(name)
            if not hit:
                known = await run_in_threadpool(self.sources.known, name)
        except secrets.SecretError:
            log.error("alert source %s: its key cannot be opened (IM_SECRET_KEY?)", name)
            return JSONResponse({"status": "unavailable", "message": "the source's key cannot be opened"}, status_code=503)
        if known is None:
            return JSONResponse({"status": "not found", "message": f"no alert source named {name[:64]}"}, status_code=404)
        headers = request.headers
        if known.kind == SourceKind.ALERTMANAGER and not known.accepts(_bearer(headers.get("authorization"))):
            return _unauthorized()
        if known.kind == SourceKind.EVENTS_V2 and "x-routing-key" in headers and not known.accepts(headers["x-routing-key"]):
            return _answer(_bad_routing_key())
        try:
            body = await capped_body(request, MAX_BODY)
        except TooLarge:
            return _answer(_too_large(known.kind))
        except ClientDisconnect:
            return Response(status_code=400)
        status, answer, extra = await run_in_threadpool(self.receive, known, body)
        return JSONResponse(answer, status_code=status, headers=extra or None)

    def receive(self, known: Known, body: bytes) -> Answer:
        if known.kind == SourceKind.ALERTMANAGER:
            limited = self._limited(known)
            if limited is not None:
                return limited
            try:
                events = alertmanager.parse(body)
            except alertmanager.Invalid as exc:
                return 400, {"status": "invalid", "message": exc.reason}, {}
            self._store(known, events)
            return 200, {"status": "success", "alerts": len(events)}, {}
        try:
            data, key = events_v2.routing_key_of(body)
            if not known.accepts(key):
                return _bad_routing_key()
            limited = self._limited(known)
            if limited is not None:
                return limited
            event = events_v2.parse(data)
        except events_v2.Invalid as exc:
            return 400, exc.answer, {}
        self._store(known, [event])
        return 202, events_v2.accepted(event.dedup_key), {}

    def _limited(self, known: Known) -> Answer | None:
        wait = self.limiter.admit(known.name)
        if wait <= 0:
            return None
        seconds = str(max(1, math.ceil(wait)))
        message = f"more than {self.im.settings.alerts_max_per_second:g} events a second from this source: retry later"
        return 429, {"status": "throttle event", "message": message, "errors": [message]}, {"Retry-After": seconds}

    def _store(self, known: Known, events: list[AlertEvent]) -> None:
        """One insert: each event travels in its outbox job, whose worker writes the intake row."""
        rules = SourceRules(known.name, known.kind, known.service)
        now = utcnow()
        jobs = [
            # one alert's events in order; different alerts side by side (their races end on unique keys)
            job_values(
                JobSpec(DESTINATION, APPLY, {"received": received(known.name, service_for(rules, event), event, now)}),
                None,
                f"{DESTINATION}:{known.name}:{event.dedup_key}",
            )
            for event in events
        ]
        if not jobs:
            return
        # one INSERT statement, committed as it returns (an Alertmanager group: one multi-row INSERT, all or
        # nothing); nothing else happens before the answer: the worker applies each event after the commit
        with self.im.store.single_statement() as conn:
            if len(jobs) == 1:
                conn.execute(insert(JOBS), jobs[0])
            else:
                conn.execute(insert(JOBS).values(jobs))
            note_enqueued(conn)


def _bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _unauthorized() -> Response:
    return JSONResponse(
        {"status": "unauthorized", "message": "missing or wrong bearer token"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="im alerts"'},
    )


def _bad_routing_key() -> Answer:
    return 400, events_v2.Invalid(["Invalid routing key"]).answer, {}


def _too_large(kind: SourceKind) -> Answer:
    reason = f"the body is larger than {MAX_BODY // 1024} KB"
    if kind == SourceKind.EVENTS_V2:
        return 400, events_v2.Invalid([reason]).answer, {}
    return 400, {"status": "invalid", "message": reason}, {}


def _answer(answer: Answer) -> Response:
    status, body, headers = answer
    return JSONResponse(body, status_code=status, headers=headers or None)
