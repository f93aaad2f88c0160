"""The real app, served by uvicorn on a free local port, driven with signed Slack requests."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from bot.app import Im
from bot.config import Settings, load_settings
from bot.server import Runtime, create_app
from bot.wiring import build
from tests.fakes import slack_requests as sr
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token"


def make_settings(database_url: str, fake_slack: FakeSlack | None = None, **extra: Any) -> Settings:
    # the fakes enforce no rate limits unless a test asks them to, and then it sets IM_RATE_LIMITS too
    values: dict[str, Any] = {"IM_DATABASE_URL": database_url, "_env_file": None, "IM_RATE_LIMITS": "off"}
    if fake_slack is not None:
        values |= {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.base_url,
        }
    values |= extra
    return load_settings(**values)


def reserve_socket() -> socket.socket:
    """A bound socket on a free port, so its URL is known before the app (and its settings) exist."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def socket_url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


class ServedApp:
    """uvicorn in a thread, on a socket we bound ourselves (port 0: no clashes)."""

    def __init__(self, asgi_app: Any, sock: socket.socket | None = None) -> None:
        self.sock = sock or reserve_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            asgi_app,
            log_level="warning",
            lifespan="on",
            limit_concurrency=1000,
            backlog=2048,
            proxy_headers=False,  # as `im serve`
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("app did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class AppHarness:
    def __init__(
        self, settings: Settings, fake_slack: FakeSlack | None, *, background: bool = True, sock: socket.socket | None = None
    ) -> None:
        self.settings = settings
        self.fake = fake_slack
        self.im: Im = build(settings)
        self.runtime = Runtime(self.im, poll=0.05, scheduler=False)
        self.served = ServedApp(create_app(self.im, self.runtime, start_background=background), sock)
        self.url = self.served.url
        self.slack = sr.SlackClient(self.url, SIGNING_SECRET)

    # -- what Slack sends ----------------------------------------------------------------------
    def command(self, text: str, **kwargs: Any) -> httpx.Response:
        return self.slack.post(sr.slash_command(text, **kwargs))

    def click(self, action_id: str, value: str, **kwargs: Any) -> httpx.Response:
        return self.slack.post(sr.block_actions(action_id, value, **kwargs))

    def submit(self, callback_id: str, values: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.slack.post(sr.view_submission(callback_id, values, **kwargs))

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until the outbox has nothing pending (the workers run in their own threads)."""
        from bot.domain.outbox import waiting_count

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.im.store.read() as session:
                if waiting_count(session) == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("outbox still has pending jobs")

    def stop(self) -> None:
        self.slack.close()
        self.served.stop()
        self.im.store.dispose()
