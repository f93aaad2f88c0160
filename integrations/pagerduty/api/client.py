"""Synchronous PagerDuty REST API v2 client (httpx), with bounded retries and typed errors.

Retry policy (per call, bounded by ``max_attempts`` and by ``max_wait`` seconds of sleeping in
total; when the next wait would pass ``max_wait`` the typed error is raised at once so a caller,
such as a durable outbox, can schedule the next try itself):

* 429: wait ``ratelimit-reset`` seconds (1 s when absent) plus a little jitter;
* 5xx, timeouts, connection errors: exponential backoff with full jitter;
* other 4xx: no retry.

Calls that are not idempotent (notes, webhook subscriptions) are only retried when PagerDuty
certainly did not act: 429, 503 and failures to connect. ``create_incident`` is made idempotent
by its ``incident_key``: a retry that meets "open incident with this key already exists" returns
the existing incident.

The API key lives only in the httpx client's default headers: it is never logged, never part of
an exception message and never in a repr.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from integrations.pagerduty.api.errors import (
    AuthenticationError,
    ConfigurationError,
    DuplicateIncidentKeyError,
    NotFoundError,
    PagerDutyError,
    RateLimitedError,
    RequestRejectedError,
    UnavailableError,
    rejected_message,
)
from integrations.pagerduty.api.models import (
    EscalationPolicy,
    Incident,
    LogEntry,
    Note,
    OnCall,
    ResponderRequest,
    Service,
    User,
    WebhookSubscription,
)

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_LIMIT = 100
OFFSET_CAP = 10_000  # PagerDuty refuses offset + limit > 10000
USER_AGENT = "im-pagerduty/0.1"


class CallStats(BaseModel):
    """One HTTP attempt, for metrics (API calls, rate-limit usage, average time)."""

    model_config = ConfigDict(frozen=True)

    method: str
    path: str  # as sent, e.g. /incidents/PABC123
    endpoint: str  # template, e.g. /incidents/{id} (low cardinality, for metric labels)
    status: int | None  # None: no HTTP answer (timeout, connection error)
    duration_s: float
    attempt: int
    ratelimit_limit: int | None = None
    ratelimit_remaining: int | None = None
    retry_after: float | None = None  # a 429's ratelimit-reset (or Retry-After), seconds


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    endpoint: str
    params: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None
    from_email: str | None = None
    idempotent: bool = True
    resource: tuple[str, str] | None = None  # (kind, id) named in a 404 message


@dataclass
class _PageState:
    capped: bool = False  # stopped at the 10000-result window with more to come


def _int_header(resp: httpx.Response, name: str) -> int | None:
    try:
        return int(float(resp.headers[name]))
    except (KeyError, ValueError):
        return None


def _reset_seconds(resp: httpx.Response, default: float = 1.0) -> float:
    for name in ("ratelimit-reset", "retry-after"):
        raw = resp.headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw))
        except ValueError:
            continue
    return default


def _pd_error(resp: httpx.Response) -> tuple[str | None, int | None, list[str]]:
    try:
        doc = resp.json()
    except ValueError:
        return None, None, []
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return None, None, []
    message = err.get("message") if isinstance(err.get("message"), str) else None
    code = err.get("code") if isinstance(err.get("code"), int) else None
    errors = err.get("errors")
    return message, code, [str(e) for e in errors] if isinstance(errors, list) else []


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def is_duplicate_incident_key(err: PagerDutyError) -> bool:
    """PagerDuty's 400 for POST /incidents when an open incident already has the key.

    Observed answer: ``{"error": {"message": "Arguments Caused Error", "code": 2002, "errors":
    ["Open incident with matching dedup key already exists on this service"]}}``; we match the
    text, not the code, which other validation failures share.
    """
    if err.status != 400:
        return False
    text = " ".join([err.user_message, *err.pd_errors]).lower()
    return "already exists" in text and ("dedup key" in text or "incident key" in text or "incident_key" in text)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process, as httpx would build it: building one loads the CA bundle
    (tens of ms of CPU, over 100 ms on a busy host), and a client is made for every outbox job."""
    return httpx.create_ssl_context()


class PagerDutyClient:
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    rate_limit_jitter: float = 0.5

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        from_email: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        on_response: Callable[[CallStats], None] | None = None,
        before_request: Callable[[], None] | None = None,
        on_ready: Callable[[bool], None] | None = None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("No PagerDuty API key is configured")
        self.base_url = base_url.rstrip("/")
        self.from_email = from_email
        self.max_attempts = max(1, max_attempts)
        self.max_wait = max(0.0, max_wait)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._on_response = on_response
        self._before_request = before_request  # pacing: returns when the request may leave (or raises)
        self._on_ready = on_ready  # pacing: the turn of the calls that follow, taken now (or raises)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=_tls(),
            headers={
                "Authorization": f"Token token={api_key}",
                "Accept": ACCEPT,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def ready(self, *, again: bool = False) -> None:
        """A call follows: its turn is taken now (pacing may raise here, as before a request). For a caller
        about to write down that a call is under way, so that a wait for the turn comes before the note.
        `again`: a turn of its own even after an earlier call, for a call the caller may still put off (its
        work so far is done and would not be repeated)."""
        if self._on_ready is not None:
            self._on_ready(again)

    def __repr__(self) -> str:
        return f"PagerDutyClient(base_url={self.base_url!r}, from_email={self.from_email!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PagerDutyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ account, users, services

    def check_api_key(self) -> None:
        """Raise AuthenticationError (or another PagerDutyError) unless the key works."""
        self._request(_Call("GET", "/abilities", "/abilities"))

    def get_service(self, service_id: str) -> Service:
        resp = self._request(_Call("GET", f"/services/{_seg(service_id)}", "/services/{id}", resource=("service", service_id)))
        return Service.model_validate(resp.json()["service"])

    def list_services(self) -> list[Service]:
        return [Service.model_validate(s) for s in self._paginate("/services", "services", {})]

    def find_user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        for raw in self._paginate("/users", "users", {"query": email.strip()}):
            if str(raw.get("email", "")).lower() == wanted:
                return User.model_validate(raw)
        return None

    def get_user(self, user_id: str) -> User:
        resp = self._request(_Call("GET", f"/users/{_seg(user_id)}", "/users/{id}", resource=("user", user_id)))
        return User.model_validate(resp.json()["user"])

    def get_escalation_policy(self, policy_id: str) -> EscalationPolicy:
        resp = self._request(
            _Call(
                "GET",
                f"/escalation_policies/{_seg(policy_id)}",
                "/escalation_policies/{id}",
                resource=("escalation policy", policy_id),
            )
        )
        return EscalationPolicy.model_validate(resp.json()["escalation_policy"])

    def list_oncalls(
        self,
        *,
        escalation_policy_ids: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[OnCall]:
        params: dict[str, Any] = {}
        if escalation_policy_ids:
            params["escalation_policy_ids[]"] = list(escalation_policy_ids)
        if since is not None:
            params["since"] = _iso(since)
        if until is not None:
            params["until"] = _iso(until)
        return [OnCall.model_validate(o) for o in self._paginate("/oncalls", "oncalls", params)]

    # ------------------------------------------------------------------ incidents

    def create_incident(
        self,
        *,
        title: str,
        service_id: str,
        urgency: str,
        incident_key: str,
        details: str | None,
        escalation_policy_id: str | None = None,
        from_email: str | None = None,
    ) -> Incident:
        """Create an incident; if one with ``incident_key`` is already open on the service
        (e.g. this is a retry of a call whose answer was lost) return that one instead."""
        incident: dict[str, Any] = {
            "type": "incident",
            "title": title,
            "service": {"id": service_id, "type": "service_reference"},
            "urgency": urgency,
            "incident_key": incident_key,
        }
        if details:
            incident["body"] = {"type": "incident_body", "details": details}
        if escalation_policy_id:
            incident["escalation_policy"] = {"id": escalation_policy_id, "type": "escalation_policy_reference"}
        call = _Call(
            "POST",
            "/incidents",
            "/incidents",
            body={"incident": incident},
            from_email=self._from(from_email),
            resource=("service", service_id),
        )
        try:
            resp = self._request(call)
        except RequestRejectedError as err:
            if not is_duplicate_incident_key(err):
                raise
            existing = self.find_incident_by_key(incident_key, service_id=service_id)
            if existing is not None and existing.is_open:
                log.info("PagerDuty incident %s already open for this incident_key; reusing it", existing.id)
                return existing
            raise DuplicateIncidentKeyError(
                incident_key, service_id, status=err.status, pd_code=err.pd_code, pd_errors=err.pd_errors
            ) from None
        return Incident.model_validate(resp.json()["incident"])

    def get_incident(self, incident_id: str) -> Incident:
        resp = self._request(
            _Call("GET", f"/incidents/{_seg(incident_id)}", "/incidents/{id}", resource=("incident", incident_id))
        )
        return Incident.model_validate(resp.json()["incident"])

    def find_incident_by_key(self, incident_key: str, *, service_id: str | None = None) -> Incident | None:
        """The incident with this key: the open one if any, else the most recently created."""
        params: dict[str, Any] = {"incident_key": incident_key, "date_range": "all"}
        if service_id:
            params["service_ids[]"] = [service_id]
        found = [Incident.model_validate(i) for i in self._paginate("/incidents", "incidents", params)]
        found = [i for i in found if i.incident_key in (None, incident_key)]
        if not found:
            return None
        found.sort(key=lambda i: (i.is_open, i.created_at))
        return found[-1]

    def update_incident(
        self,
        incident_id: str,
        *,
        status: str | None = None,
        urgency: str | None = None,
        resolution: str | None = None,
        escalation_level: int | None = None,
        assignee_ids: list[str] | None = None,
        from_email: str | None = None,
    ) -> Incident:
        """PUT /incidents/{id}. ``resolution`` is only used by PagerDuty with status=resolved;
        ``assignee_ids`` replaces the incident's assignments with these users."""
        assignments = [{"assignee": {"id": a, "type": "user_reference"}} for a in assignee_ids] if assignee_ids else None
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "status": status,
                "urgency": urgency,
                "resolution": resolution,
                "escalation_level": escalation_level,
                "assignments": assignments,
            }.items()
            if v is not None
        }
        if not changes:
            raise ValueError("update_incident needs at least one change")
        resp = self._request(
            _Call(
                "PUT",
                f"/incidents/{_seg(incident_id)}",
                "/incidents/{id}",
                body={"incident": {"type": "incident_reference", **changes}},
                from_email=self._from(from_email),
                resource=("incident", incident_id),
            )
        )
        return Incident.model_validate(resp.json()["incident"])

    def add_note(self, incident_id: str, content: str, *, from_email: str | None = None) -> Note:
        resp = self._request(
            _Call(
                "POST",
                f"/incidents/{_seg(incident_id)}/notes",
                "/incidents/{id}/notes",
                body={"note": {"content": content}},
                from_email=self._from(from_email),
                idempotent=False,
                resource=("incident", incident_id),
            )
        )
        return Note.model_validate(resp.json()["note"])

    def list_notes(self, incident_id: str) -> list[Note]:
        """GET /incidents/{id}/notes: every note on the incident (PagerDuty does not paginate them)."""
        resp = self._request(
            _Call("GET", f"/incidents/{_seg(incident_id)}/notes", "/incidents/{id}/notes", resource=("incident", incident_id))
        )
        return [Note.model_validate(n) for n in resp.json().get("notes") or []]

    def create_responder_request(
        self, incident_id: str, *, requester_id: str, message: str, targets: list[tuple[str, str]]
    ) -> ResponderRequest:
        """POST /incidents/{id}/responder_requests: ask more responders to join. ``targets`` are
        (type, id) pairs, type ``user_reference`` or ``escalation_policy_reference``. Not idempotent:
        retried only when PagerDuty certainly did not act."""
        body = {
            "requester_id": requester_id,
            "message": message,
            "responder_request_targets": [{"responder_request_target": {"id": i, "type": t}} for t, i in targets],
        }
        resp = self._request(
            _Call(
                "POST",
                f"/incidents/{_seg(incident_id)}/responder_requests",
                "/incidents/{id}/responder_requests",
                body=body,
                idempotent=False,
                resource=("incident", incident_id),
            )
        )
        return ResponderRequest.model_validate(resp.json()["responder_request"])

    def iter_incidents(
        self,
        *,
        since: datetime,
        until: datetime,
        service_ids: list[str] | None = None,
        date_range: str | None = None,
        statuses: list[str] | None = None,
    ) -> Iterator[Incident]:
        """Incidents created in [since, until), oldest first (``sort_by=created_at:asc``).

        PagerDuty cannot sort by ``updated_at``; created-ascending keeps offset pagination
        stable while new incidents arrive. Past PagerDuty's 10000-result window the walk
        restarts with ``since`` = the last created_at seen, skipping incidents already yielded.
        """
        base: dict[str, Any] = {"sort_by": "created_at:asc"}
        if service_ids:
            base["service_ids[]"] = list(service_ids)
        if statuses:
            base["statuses[]"] = list(statuses)
        if date_range:
            base["date_range"] = date_range
        window_since = since
        skip: set[str] = set()
        while True:
            params = {**base, "since": _iso(window_since), "until": _iso(until)}
            last: Incident | None = None
            boundary: set[str] = set()
            state = _PageState()
            for raw in self._paginate("/incidents", "incidents", params, state):
                inc = Incident.model_validate(raw)
                if last is None or inc.created_at != last.created_at:
                    boundary = set()
                boundary.add(inc.id)
                last = inc
                if inc.id in skip:
                    continue
                yield inc
            capped = state.capped
            if not capped or last is None or date_range == "all":
                if capped:
                    log.warning("PagerDuty incident listing stopped at the %d-result window", OFFSET_CAP)
                return
            if last.created_at == window_since:
                log.warning("More than %d PagerDuty incidents share one created_at; stopping", OFFSET_CAP)
                return
            window_since, skip = last.created_at, boundary

    def iter_log_entries(
        self,
        *,
        since: datetime,
        until: datetime,
        is_overview: bool = True,
        include_incidents: bool = True,
    ) -> Iterator[LogEntry]:
        """Account-wide incident log entries created in [since, until), newest first.

        ``GET /log_entries`` has no ``sort_by``: PagerDuty lists the log newest first. With a fixed
        ``until`` that order is also the safe one for offset paging: an entry written during the
        walk can only push older entries to later offsets (seen twice), never hide one.
        Past PagerDuty's 10000-result window the walk restarts with ``until`` = the end of the
        oldest second seen, skipping the entries of that second already yielded.
        """
        base: dict[str, Any] = {"is_overview": "true" if is_overview else "false"}
        if include_incidents:
            base["include[]"] = ["incidents"]
        window_until = until
        skip: set[str] = set()
        while True:
            params = {**base, "since": _iso(since), "until": _iso(window_until)}
            state = _PageState()
            oldest: datetime | None = None  # second of the oldest entry seen in this window
            boundary: set[str] = set()
            for raw in self._paginate("/log_entries", "log_entries", params, state):
                entry = LogEntry.model_validate(raw)
                second = entry.created_at.replace(microsecond=0)
                if second != oldest:
                    boundary = set()
                    oldest = second
                boundary.add(entry.id)
                if entry.id in skip:
                    continue
                yield entry
            if not state.capped or oldest is None:
                return
            next_until = oldest + timedelta(seconds=1)
            if next_until >= window_until:
                log.warning("More than %d PagerDuty log entries in one second; stopping", OFFSET_CAP)
                return
            window_until, skip = next_until, boundary

    def iter_incident_log_entries(self, incident_id: str, *, since: datetime | None = None) -> Iterator[LogEntry]:
        """Every log entry of one incident (``GET /incidents/{id}/log_entries``, notifications included),
        paged and retried on 429 like every call. ``since`` defaults to PagerDuty's own (the last 30 days)."""
        params: dict[str, Any] = {"is_overview": "false"}
        if since is not None:
            params["since"] = _iso(since)
        path = f"/incidents/{_seg(incident_id)}/log_entries"
        for raw in self._paginate(path, "log_entries", params, endpoint="/incidents/{id}/log_entries"):
            yield LogEntry.model_validate(raw)

    def iter_changed_incidents(self, *, since: datetime, until: datetime) -> Iterator[Incident]:
        """Each incident with a significant change (an overview log entry) in [since, until), once.

        PagerDuty's ``since``/``until`` on ``GET /incidents`` filter by creation date, so this reads
        the change log instead: ``GET /log_entries?is_overview=true&include[]=incidents``, 100 a
        page, one request per page and nothing else. ``include[]=incidents`` expands each entry's
        incident to its state when the page is served; the log is newest first, so the first entry
        met for an incident is its latest change and later ones are skipped. An incident changed
        again while the walk runs is yielded with the state of the page that first named it; a
        change after ``until`` belongs to the next window (next run: ``since`` = this ``until``).
        """
        seen: set[str] = set()
        for entry in self.iter_log_entries(since=since, until=until, is_overview=True, include_incidents=True):
            ref = entry.incident
            if ref is None or ref.id in seen:
                continue
            seen.add(ref.id)
            if isinstance(ref, Incident):
                yield ref
                continue
            # PagerDuty did not expand the reference (should not happen with include[]=incidents).
            try:
                yield self.get_incident(ref.id)
            except NotFoundError:
                log.info("PagerDuty incident %s from the log no longer exists; skipping", ref.id)

    # ------------------------------------------------------------------ webhook subscriptions

    def create_webhook_subscription(
        self,
        *,
        url: str,
        filter_type: str,
        filter_id: str | None,
        events: list[str],
        description: str,
    ) -> WebhookSubscription:
        """Create a v3 subscription; the answer carries the signing secret, once."""
        flt: dict[str, Any] = {"type": filter_type}
        if filter_id:
            flt["id"] = filter_id
        body = {
            "webhook_subscription": {
                "type": "webhook_subscription",
                "delivery_method": {"type": "http_delivery_method", "url": url},
                "description": description,
                "events": list(events),
                "filter": flt,
            }
        }
        resp = self._request(_Call("POST", "/webhook_subscriptions", "/webhook_subscriptions", body=body, idempotent=False))
        return WebhookSubscription.model_validate(resp.json()["webhook_subscription"])

    def delete_webhook_subscription(self, subscription_id: str) -> None:
        self._request(
            _Call(
                "DELETE",
                f"/webhook_subscriptions/{_seg(subscription_id)}",
                "/webhook_subscriptions/{id}",
                resource=("webhook subscription", subscription_id),
            )
        )

    def ping_webhook_subscription(self, subscription_id: str) -> None:
        self._request(
            _Call(
                "POST",
                f"/webhook_subscriptions/{_seg(subscription_id)}/ping",
                "/webhook_subscriptions/{id}/ping",
                idempotent=False,
                resource=("webhook subscription", subscription_id),
            )
        )

    # ------------------------------------------------------------------ plumbing

    def _from(self, from_email: str | None) -> str:
        email = from_email or self.from_email
        if not email:
            raise ConfigurationError(
                "PagerDuty needs the email of a PagerDuty user (From) to change incidents; set from_email on the connector"
            )
        return email

    def _paginate(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any],
        state: _PageState | None = None,
        endpoint: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Offset pagination: limit 100, follow ``more``, stop at PagerDuty's 10000 window."""
        offset = 0
        while True:
            resp = self._request(_Call("GET", path, endpoint or path, params={**params, "limit": PAGE_LIMIT, "offset": offset}))
            doc = resp.json()
            items = doc.get(key) or []
            yield from items
            if not doc.get("more") or not items:
                return
            offset += len(items)
            if offset + PAGE_LIMIT > OFFSET_CAP:
                if state is not None:
                    state.capped = True
                else:
                    log.warning("PagerDuty %s listing stopped at the %d-result window", path, OFFSET_CAP)
                return

    def _request(self, call: _Call) -> httpx.Response:
        headers = {"From": call.from_email} if call.from_email else None
        slept = 0.0
        rate_limited = False
        for attempt in range(1, self.max_attempts + 1):
            if rate_limited:
                self.ready(again=True)  # a retry after a 429 waits for a turn of its own, never goes unpaced
            if self._before_request is not None:
                self._before_request()
            started = time.monotonic()
            failure: PagerDutyError
            try:
                resp = self._http.request(call.method, call.path, params=call.params, json=call.body, headers=headers)
            except httpx.TimeoutException as exc:
                self._emit(call, None, started, attempt, None)
                failure = UnavailableError("PagerDuty did not answer in time; the request will be retried later")
                # A connect timeout means nothing was sent; a read timeout is ambiguous.
                may_retry = call.idempotent or isinstance(exc, httpx.ConnectTimeout)
                wait = self._backoff(attempt)
                log.info("PagerDuty %s %s timed out (attempt %d)", call.method, call.endpoint, attempt)
            except httpx.TransportError as exc:
                self._emit(call, None, started, attempt, None)
                failure = UnavailableError("Could not reach PagerDuty; the request will be retried later")
                may_retry = call.idempotent or isinstance(exc, httpx.ConnectError)
                wait = self._backoff(attempt)
                log.info(
                    "PagerDuty %s %s failed: %s (attempt %d)",
                    call.method,
                    call.endpoint,
                    type(exc).__name__,
                    attempt,
                )
            else:
                self._emit(call, resp.status_code, started, attempt, resp)
                if resp.is_success:
                    return resp
                failure = self._error_for(call, resp)
                rate_limited = resp.status_code == 429
                if rate_limited:
                    may_retry = True
                    wait = (failure.retry_after or 0.0) + self._rng.uniform(0.0, self.rate_limit_jitter)
                elif resp.status_code >= 500:
                    may_retry = call.idempotent or resp.status_code == 503
                    wait = self._backoff(attempt)
                else:
                    raise failure
            if attempt >= self.max_attempts or not may_retry or slept + wait > self.max_wait:
                raise failure
            self._sleep(wait)
            slept += wait
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    def _error_for(self, call: _Call, resp: httpx.Response) -> PagerDutyError:
        status = resp.status_code
        message, code, errors = _pd_error(resp)
        kw: dict[str, Any] = {"status": status, "pd_code": code, "pd_errors": errors}
        if status == 401:
            return AuthenticationError(**kw)
        if status == 404:
            kind, rid = call.resource or ("resource", call.path)
            return NotFoundError(kind, rid, **kw)
        if status == 429:
            return RateLimitedError(retry_after=_reset_seconds(resp), **kw)
        if status >= 500:
            return UnavailableError(
                f"PagerDuty is unavailable right now (HTTP {status}); the request will be retried later",
                **kw,
            )
        return RequestRejectedError(rejected_message(status, message, errors), **kw)

    def _emit(self, call: _Call, status: int | None, started: float, attempt: int, resp: httpx.Response | None) -> None:
        duration = time.monotonic() - started
        log.debug("PagerDuty %s %s -> %s in %.3fs", call.method, call.endpoint, status, duration)
        if self._on_response is None:
            return
        stats = CallStats(
            method=call.method,
            path=call.path,
            endpoint=call.endpoint,
            status=status,
            duration_s=duration,
            attempt=attempt,
            ratelimit_limit=_int_header(resp, "ratelimit-limit") if resp is not None else None,
            ratelimit_remaining=_int_header(resp, "ratelimit-remaining") if resp is not None else None,
            retry_after=_reset_seconds(resp) if resp is not None and status == 429 else None,
        )
        try:
            self._on_response(stats)
        except Exception:  # metrics must never break a PagerDuty call
            log.exception("on_response callback failed")
