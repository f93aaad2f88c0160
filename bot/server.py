"""`im serve`: the HTTP app (Slack endpoint, health, connector webhooks), workers and scheduler."""

from __future__ import annotations

import gc
import itertools
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import __version__
from bot.app import Im
from bot.domain.models import OutboxJob
from bot.log_shipper import LogShipper
from bot.logging_setup import Redactor, log_context, secrets_of
from bot.logging_setup import configure as configure_logging
from bot.metrics import Endpoint, Metrics
from bot.metrics import install as install_metrics
from bot.pacing import in_job
from bot.probes import Probes
from bot.scheduler import Clocks, Periodic, Scheduler
from bot.slack import inbound as slack_inbound
from bot.store import Checkpointer
from bot.workers import Delivery, Dispatcher, Handler, WorkerPool, kind_table

log = logging.getLogger("im")


class Runtime:
    """Everything `im serve` runs besides HTTP: the outbox workers and the scheduler (the core's clocks,
    and the periodic tasks adapters add to `periodic`)."""

    def __init__(self, im: Im, *, worker_threads: int | None = None, poll: float = 1.0, scheduler: bool = True) -> None:
        self.im = im
        self.scheduler_enabled = scheduler  # tests drive the scheduler's ticks themselves
        self.deliveries: dict[str, Any] = {}
        self.slack_client = None
        self.slack_workspace = None
        self.bolt = None
        if im.settings.slack_bot_token is not None:
            from bot.slack.delivery import SlackDelivery, make_client
            from bot.slack.workspace import Workspace

            self.slack_client = make_client(im.settings)
            self.slack_workspace = Workspace(im.store, im.settings, self.slack_client)
            self.deliveries["slack"] = SlackDelivery(im, self.slack_client)
            if im.settings.slack_configured:
                from bot.slack.app import build_bolt_app

                self.bolt = build_bolt_app(im, self.slack_client, self.slack_workspace)
        self.extra_routes: list[Route] = []
        self.background: list[Any] = []
        self.periodic: list[Periodic] = [Clocks(im).task()]
        for hook in im.runtime_hooks:
            hook(self)
        if self.scheduler_enabled:
            self.background.append(Scheduler(self.periodic))
        if im.store.is_sqlite:
            self.background.append(Checkpointer(im.store))
        self.dispatcher = Dispatcher(im.store, {key: JobLogContext(d) for key, d in self.deliveries.items()})
        self.workers = WorkerPool(self.dispatcher, im.outbox_ready, threads=worker_threads or im.settings.workers, poll=poll)
        self.metrics: Metrics = install_metrics(self)
        self.log_shipper = _log_shipper(im)

    def start(self) -> None:
        if self.log_shipper is not None:
            self.log_shipper.start()
        self.workers.start()
        for item in self.background:
            item.start()

    def stop(self) -> None:
        for item in self.background:
            item.stop()
        self.workers.stop()
        if self.log_shipper is not None:
            self.log_shipper.stop()


def _log_shipper(im: Im) -> LogShipper | None:
    """What this replica logs, kept for `im logs` (unless IM_LOG_MAX_RECORDS=0)."""
    settings = im.settings
    if not settings.log_max_records:
        return None
    redact = Redactor(secrets_of(settings))
    return LogShipper(im.store, redact, keep=settings.log_max_records, max_age=timedelta(seconds=settings.log_retention))


class JobLogContext:
    """A destination's job kinds, each handler run so every line it logs carries its job, incident,
    destination and connector, and known to the pacer (a call whose turn has not come defers its job)."""

    def __init__(self, delivery: Delivery) -> None:
        self.kinds = kind_table(
            *(replace(kind, handler=_in_job_context(in_job(kind.handler))) for kind in delivery.kinds.values())
        )


def _in_job_context(handler: Handler) -> Handler:
    def run(job: OutboxJob) -> None:
        connector = job.destination.partition(":")[2]
        with log_context(job=job.id, incident=job.incident_id, destination=job.destination, connector=connector or None):
            handler(job)

    return run


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# a replica's random prefix and a counter: unique across replicas without a urandom syscall per request
# on the event loop (uuid4 there was 8% of its busy time under webhook load)
_REQUEST_PREFIX = os.urandom(4).hex()
_request_numbers = itertools.count(1)


def _new_request_id() -> str:
    return f"{_REQUEST_PREFIX}-{next(_request_numbers):x}"


class RequestLogContext:
    """Every line logged while a request is handled carries its id (the caller's X-Request-Id when sane)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else _new_request_id()
        with log_context(request=request_id, method=scope.get("method"), path=scope.get("path")):
            await self.app(scope, receive, send)


def _observed(route: Route, metrics: Metrics) -> Route:
    """A connector's webhook route, counted by outcome and logging under its connector's name."""
    if not (route.path.startswith("/connectors/") and route.path.endswith("/webhook")):
        return route
    endpoint: Endpoint = route.endpoint

    async def with_connector(request: Request) -> Response:
        with log_context(connector=request.path_params.get("name")):
            response = await endpoint(request)
            log.info("webhook answered %s", response.status_code)
            return response

    return Route(route.path, metrics.counted_webhooks(with_connector), methods=list(route.methods or ["POST"]))


def create_app(im: Im, runtime: Runtime | None = None, *, start_background: bool = True) -> Starlette:
    runtime = runtime or Runtime(im)
    secret = im.settings.slack_signing_secret.get_secret_value() if im.settings.slack_signing_secret else ""
    slack_verifier = slack_inbound.RawBodyVerifier(secret) if secret.strip() else None

    async def slack_events(request: Request) -> Response:
        if runtime.bolt is None:
            return JSONResponse({"error": "Slack is not configured on this server"}, status_code=503)
        if slack_verifier is None:
            # Socket Mode without a signing secret: nothing could check a request here, so none is taken
            return JSONResponse({"error": "Slack events arrive over Socket Mode on this server"}, status_code=404)
        try:
            # the signature on the raw bytes first; only a signed body is decoded and parsed
            bolt_request = await run_in_threadpool(
                slack_inbound.bolt_request, slack_verifier, await request.body(), request.url.query, request.headers
            )
        except slack_inbound.Refused as exc:
            log.warning("Slack request refused (%s): %s", exc.status, exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        bolt_response = await run_in_threadpool(runtime.bolt.dispatch, bolt_request)
        return Response(
            content=bolt_response.body,
            status_code=bolt_response.status,
            headers={k: v[0] for k, v in bolt_response.headers.items() if v and k.lower() != "content-length"},
        )

    async def healthz(request: Request) -> Response:
        database = await run_in_threadpool(im.store.ping)
        body = {
            "status": "ok" if database == "ok" else "degraded",
            "version": __version__,
            "database": {"status": database, "backend": "sqlite" if im.store.is_sqlite else "postgresql"},
            "slack": {
                "configured": im.settings.slack_configured,
                "mode": "socket" if im.settings.slack_app_token else "http",
                "missing": im.settings.slack_missing(),
            },
        }
        return JSONResponse(body, status_code=200 if database == "ok" else 503)

    probes = Probes(runtime)
    routes = [
        Route("/slack/events", runtime.metrics.timed_slack(slack_events), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", probes.livez, methods=["GET"]),
        Route("/readyz", probes.readyz, methods=["GET"]),
        Route("/metrics", runtime.metrics.endpoint, methods=["GET"]),
        *[_observed(route, runtime.metrics) for route in runtime.extra_routes],
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if start_background:
            runtime.start()
        try:
            yield
        finally:
            if start_background:
                runtime.stop()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(RequestLogContext)])
    app.state.runtime = runtime
    return app


def settle_heap() -> None:
    """Start-up builds ~140k objects that live as long as the process (modules, ORM mappings, Bolt's
    listeners, pydantic schemas). Frozen, the cyclic collector's full passes no longer walk them: one
    such pass held every ack in flight for ~100 ms (`bench/slack_ack_latency.py`, 8 concurrent)."""
    gc.collect()
    gc.freeze()


def run(im: Im) -> None:
    import uvicorn

    settings = im.settings
    configure_logging(settings, default_level="INFO")
    if not settings.slack_configured:
        log.warning(
            "Slack is not configured (missing %s): terminal commands and /healthz work; /slack/events answers 503",
            ", ".join(settings.slack_missing()),
        )
    runtime = Runtime(im)
    app = create_app(im, runtime)
    socket_handler = None
    if settings.slack_app_token is not None and runtime.bolt is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_handler = SocketModeHandler(runtime.bolt, settings.slack_app_token.get_secret_value())
        socket_handler.connect()
        log.info("Slack: Socket Mode")
    log.info(
        "im %s listening on %s:%s (database: %s)",
        __version__,
        settings.host,
        settings.port,
        "sqlite" if im.store.is_sqlite else "postgresql",
    )
    settle_heap()
    try:
        # X-Forwarded-For is ours to honour (IM_TRUST_FORWARDED_FOR), not uvicorn's: it trusts 127.0.0.1 by default.
        # log_config=None: uvicorn's own lines go through our handler (JSON when asked, secrets masked).
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False, log_config=None)
    finally:
        if socket_handler is not None:
            socket_handler.close()
