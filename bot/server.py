"""`im serve`: the HTTP app (Slack endpoint, health, connector webhooks), workers and scheduler."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import __version__
from bot.app import Im
from bot.scheduler import Clocks, Periodic, Scheduler
from bot.slack import inbound as slack_inbound
from bot.workers import Dispatcher, WorkerPool

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
        self.dispatcher = Dispatcher(im.store, self.deliveries)
        self.workers = WorkerPool(self.dispatcher, im.outbox_ready, threads=worker_threads or im.settings.workers, poll=poll)

    def start(self) -> None:
        self.workers.start()
        for item in self.background:
            item.start()

    def stop(self) -> None:
        for item in self.background:
            item.stop()
        self.workers.stop()


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

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *runtime.extra_routes,
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

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app


def run(im: Im) -> None:
    import uvicorn

    settings = im.settings
    level = os.environ.get("IM_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
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
    try:
        # X-Forwarded-For is ours to honour (IM_TRUST_FORWARDED_FOR), not uvicorn's: it trusts 127.0.0.1 by default
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False)
    finally:
        if socket_handler is not None:
            socket_handler.close()
