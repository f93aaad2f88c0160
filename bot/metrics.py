"""`GET /metrics`: Prometheus exposition of what `im serve` does and what the database holds.

Two kinds of figure, told apart in each help text:
- seen by this process (counters of outbox deliveries and webhooks, the Slack ack-latency histogram):
  each replica reports its own; sum them across replicas.
- read from the database at scrape time by `DatabaseCollector` (outbox backlog, open incidents, SLA
  breaches, PagerDuty calls and rate-limit headroom, time to acknowledge and resolve): every replica
  reports the same truth; take max() across replicas, never sum().

Time to acknowledge and resolve are built at scrape time, as gauge histograms over the incidents
acknowledged / resolved in the last 24 hours, rather than observed when the transition happens: a
transition is made by whichever replica, worker or terminal `im` handled it (a terminal has no
/metrics, a restart loses what a process observed), and only the database sees them all. Read them with
histogram_quantile() on the buckets directly, no rate(). A reopened incident's clock restarts at the
reopen, as the SLA clocks do.

A scrape that cannot read the database still answers 200: `im_database_up` is 0 and the database
figures are left out, so the process's own figures are not lost with it.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import and_, func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot import __version__
from bot.app import Im
from bot.clock import as_utc, utcnow
from bot.domain.models import SEVERITIES, Incident, JobStatus, OutboxJob, Status, TimelineEvent
from integrations.pagerduty.tables import ConnectorCall

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)  # Slack gives up at 3 s
RESPONSE_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)  # 1 min .. 3 days
RESPONSE_WINDOW = timedelta(hours=24)
CALLS_WINDOW = timedelta(hours=1)
OPEN_STATUSES = (Status.OPEN.value, Status.MITIGATED.value)
WEBHOOK_OUTCOMES = {202: "accepted", 200: "duplicate"}  # the receiver's answers (integrations/pagerduty/inbound.py)


class Metrics:
    """One registry per app (several apps in one test process never share counters)."""

    def __init__(self, im: Im) -> None:
        self.im = im
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "im_outbox_deliveries",
            "Outbox delivery attempts recorded by this process's workers, by destination and outcome "
            "(delivered, retry, dead, released, lapsed). Per process: sum across replicas.",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "im_webhooks",
            "Connector webhook deliveries answered by this process, by outcome (accepted, duplicate, rejected) "
            "and HTTP status. Per process: sum across replicas.",
            ["connector", "outcome", "status"],
            registry=self.registry,
        )
        self.slack_ack = Histogram(
            "im_slack_ack_seconds",
            "Time from a Slack request's arrival at /slack/events to its acknowledgement. Per process.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(im))
        ProcessCollector(registry=self.registry)

    # -- hooks the wiring sets ---------------------------------------------------------------------
    def delivery_outcome(self, job: OutboxJob, outcome: str) -> None:
        self.deliveries.labels(job.destination, outcome).inc()

    def timed_slack(self, endpoint: Endpoint) -> Endpoint:
        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await endpoint(request)
            finally:
                self.slack_ack.observe(time.perf_counter() - started)

        return timed

    def counted_webhooks(self, endpoint: Endpoint) -> Endpoint:
        async def counted(request: Request) -> Response:
            response = await endpoint(request)
            status = response.status_code
            # an unknown name would be a label an outsider could mint at will
            connector = "unknown" if status == 404 else str(request.path_params.get("name", "unknown"))
            self.webhooks.labels(connector, WEBHOOK_OUTCOMES.get(status, "rejected"), str(status)).inc()
            return response

        return counted

    # -- the endpoint ------------------------------------------------------------------------------
    async def endpoint(self, request: Request) -> Response:
        token = self.im.settings.metrics_token
        if token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                reason = "missing" if not given else "wrong"
                return JSONResponse(
                    {"error": f"metrics need 'Authorization: Bearer <IM_METRICS_TOKEN>' (token {reason})"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="im metrics"'},
                )
        # Prometheus asks for OpenMetrics or the classic text format in Accept; anything else gets the classic one
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        body = await run_in_threadpool(encode, self.registry)
        return Response(body, headers={"Content-Type": content_type})


class DatabaseCollector(Collector):
    """The figures every replica reads alike from the database, at each scrape."""

    def __init__(self, im: Im) -> None:
        self.im = im

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("im_database_up", "1 when this scrape could read the database figures, else 0.")
        info = GaugeMetricFamily("im_build_info", "The running im version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        try:
            with self.im.store.read() as session:
                families = list(self._families(session, utcnow()))
        except Exception:  # a scrape during a database outage still answers, with im_database_up 0
            log.warning("metrics: cannot read the database", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session, now: datetime) -> Iterator[Metric]:
        yield from _outbox(session, now)
        yield _open_incidents(session)
        yield _sla_breaches(session)
        yield from _response_times(session, now)
        yield from _pagerduty_calls(session, now)


def _outbox(session: Session, now: datetime) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "im_outbox_jobs",
        "Outbox jobs waiting (pending, running) or dead, by destination. From the database.",
        labels=["destination", "status"],
    )
    rows = session.exec(
        select(OutboxJob.destination, OutboxJob.status, func.count())
        .where(col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING, JobStatus.DEAD]))
        .group_by(OutboxJob.destination, OutboxJob.status)
    ).all()
    for destination, status, count in rows:
        jobs.add_metric([destination, status], count)
    yield jobs
    oldest = GaugeMetricFamily(
        "im_outbox_oldest_pending_age_seconds",
        "Age of the oldest job not yet delivered (pending or running), by destination. From the database.",
        labels=["destination"],
    )
    for destination, created in session.exec(
        select(OutboxJob.destination, func.min(OutboxJob.created_at))
        .where(col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING]))
        .group_by(OutboxJob.destination)
    ).all():
        oldest.add_metric([destination], max(0.0, (now - as_utc(created)).total_seconds()))
    yield oldest


def _open_incidents(session: Session) -> Metric:
    family = GaugeMetricFamily(
        "im_incidents_open",
        "Incidents not yet resolved, by severity and status. From the database.",
        labels=["severity", "status"],
    )
    counts = {(sev, status): 0 for sev in SEVERITIES for status in OPEN_STATUSES}
    for severity, status, count in session.exec(
        select(Incident.severity, Incident.status, func.count())
        .where(col(Incident.status).in_(OPEN_STATUSES))
        .group_by(Incident.severity, Incident.status)
    ).all():
        counts[(severity, status)] = count
    for (severity, status), count in counts.items():
        family.add_metric([severity, status], count)
    return family


def _sla_breaches(session: Session) -> Metric:
    family = CounterMetricFamily(
        "im_sla_breaches",
        "SLA breaches recorded on incident timelines, by kind (ack, resolve). From the database.",
        labels=["kind"],
    )
    kind = TimelineEvent.__table__.c.data["sla"].as_string()  # type: ignore[attr-defined]  # SQLModel hides the Table
    counts = {"ack": 0, "resolve": 0}
    for name, count in session.exec(select(kind, func.count()).where(TimelineEvent.kind == "sla").group_by(kind)).all():
        counts[name or "unknown"] = count
    for name, count in counts.items():
        family.add_metric([name], count)
    return family


def _response_times(session: Session, now: datetime) -> Iterator[Metric]:
    since = now - RESPONSE_WINDOW
    for name, what, done_column in (
        ("im_incident_time_to_acknowledge_seconds", "acknowledged", Incident.acknowledged_at),
        ("im_incident_time_to_resolve_seconds", "resolved", Incident.resolved_at),
    ):
        rows = session.exec(
            select(Incident.severity, Incident.declared_at, Incident.reopened_at, done_column).where(col(done_column) >= since)
        ).all()
        by_severity: dict[str, list[float]] = {sev: [] for sev in SEVERITIES}
        for severity, declared, reopened, done in rows:
            if done is None:  # not possible given the filter; says so to the type checker
                continue
            start = reopened if reopened is not None and as_utc(reopened) <= as_utc(done) else declared
            by_severity.setdefault(severity, []).append(max(0.0, (as_utc(done) - as_utc(start)).total_seconds()))
        family = GaugeHistogramMetricFamily(
            name,
            f"Seconds from declaration (or reopening) to {what}, over incidents {what} in the last 24 hours, "
            "by severity. From the database: a gauge histogram, use histogram_quantile() without rate().",
            labels=["severity"],
        )
        for severity, values in by_severity.items():
            family.add_metric([severity], _buckets(values, RESPONSE_BUCKETS), gsum_value=sum(values))
        yield family


def _buckets(values: Sequence[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative bucket counts, as Prometheus wants them (the last one, +Inf, counts everything)."""
    return [(str(float(b)), float(sum(1 for v in values if v <= b))) for b in bounds] + [("+Inf", float(len(values)))]


def _pagerduty_calls(session: Session, now: datetime) -> Iterator[Metric]:
    calls = GaugeMetricFamily(
        "im_pagerduty_api_calls_last_hour",
        "PagerDuty API calls made in the last hour by every im process, by connector and HTTP status (0: no answer). "
        "From the database.",
        labels=["connector", "status"],
    )
    limited = GaugeMetricFamily(
        "im_pagerduty_rate_limited_last_hour",
        "PagerDuty API calls answered 429 (rate limited) in the last hour, by connector. From the database.",
        labels=["connector"],
    )
    per_connector: dict[str, int] = {}
    for connector, status, count in session.exec(
        select(ConnectorCall.connector, ConnectorCall.status, func.count())
        .where(col(ConnectorCall.at) >= now - CALLS_WINDOW)
        .group_by(col(ConnectorCall.connector), col(ConnectorCall.status))
    ).all():
        calls.add_metric([connector, str(status)], count)
        per_connector[connector] = per_connector.get(connector, 0) + (count if status == 429 else 0)
    for connector, count in per_connector.items():
        limited.add_metric([connector], count)
    yield calls
    yield limited
    headroom = GaugeMetricFamily(
        "im_pagerduty_ratelimit_remaining_ratio",
        "Share of PagerDuty's per-minute request budget left (0..1), from the latest answer carrying rate-limit "
        "headers, by connector. From the database.",
        labels=["connector"],
    )
    remaining = GaugeMetricFamily(
        "im_pagerduty_ratelimit_remaining",
        "Requests left in PagerDuty's per-minute budget, from the latest answer carrying rate-limit headers.",
        labels=["connector"],
    )
    latest = (
        select(func.max(ConnectorCall.id).label("id"))
        .where(col(ConnectorCall.ratelimit_limit).is_not(None), col(ConnectorCall.ratelimit_remaining).is_not(None))
        .group_by(ConnectorCall.connector)
        .subquery()
    )
    for call in session.exec(select(ConnectorCall).join(latest, and_(col(ConnectorCall.id) == latest.c.id))).all():
        if call.ratelimit_limit and call.ratelimit_remaining is not None:
            headroom.add_metric([call.connector], call.ratelimit_remaining / call.ratelimit_limit)
            remaining.add_metric([call.connector], call.ratelimit_remaining)
    yield headroom
    yield remaining


def install(runtime: Any) -> Metrics:
    """Metrics for this runtime: the dispatcher's outcomes feed the delivery counter."""
    metrics = Metrics(runtime.im)
    runtime.dispatcher.on_outcome.append(metrics.delivery_outcome)
    return metrics
