"""What `connector test` and `connector health` check: PagerDuty's side (live, or as last recorded) and
im's own webhook endpoint. A check is fine, a warning (not set up yet: the seed's order is add, test,
then webhook) or broken; only what is broken fails the command."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx
from sqlmodel import col, select

from bot.app import Im
from bot.connectors.models import Connector
from bot.connectors.secrets import SecretError
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.errors import PagerDutyError
from integrations.pagerduty.config import PagerDutyConfig
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.metrics import Figures, ago, percent
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import ConnectorCall

State = Literal["ok", "warn", "fail", "na"]  # na: not available to this connector (the reason follows), not a failure
Topic = Literal["api", "service", "user", "policy", "endpoint", "webhook", "events"]
MARKS: dict[State, str] = {"ok": "✓", "warn": "⚠", "fail": "✗", "na": "– n/a:"}
ENDPOINT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    state: State
    topic: Topic
    text: str

    @property
    def line(self) -> str:
        return f"{MARKS[self.state]} {self.text}"

    @property
    def broken(self) -> bool:
        return self.state == "fail"


def _probe(topic: Topic, label: str, call: Callable[[], str | None], missing: str = "") -> Check:
    """One look-up: `call` answers the line to show, or None when what it looked for is not there."""
    try:
        said = call()
    except PagerDutyError as exc:
        return Check("fail", topic, f"{label}: {exc.user_message}")
    return Check("ok", topic, said) if said else Check("fail", topic, f"{label}{missing}")


def api_checks(registry: ConnectorRegistry, connector: Connector) -> list[Check]:
    """PagerDuty asked now: the key, every covered service, the from-email's user, every escalation policy."""
    config = registry.config(connector)
    try:
        client = client_for(registry, connector, max_attempts=2, max_wait=5)
    except (SecretError, PagerDutyError) as exc:
        return [Check("fail", "api", f"API key unusable: {exc}")]
    with client:
        started = time.monotonic()
        try:
            client.check_api_key()
        except PagerDutyError as exc:
            return [Check("fail", "api", f"Connected to PagerDuty API: {exc.user_message}")]
        checks = [Check("ok", "api", f"Connected to PagerDuty API ({(time.monotonic() - started) * 1000:.0f}ms)")]
        checks += _account_checks(client, config)
    return checks


def _account_checks(client: PagerDutyClient, config: PagerDutyConfig) -> list[Check]:
    checks = []
    services = config.covered_service_ids()
    if not services:
        checks.append(Check("fail", "service", "No service: set custom.service_id or map a service"))
    for service_id in services:

        def service(sid: str = service_id) -> str:
            found = client.get_service(sid)
            return f"Service {sid} accessible ({found.name or found.summary})"

        checks.append(_probe("service", f"Service {service_id}", service))
    email = config.custom.from_email
    if not email:
        checks.append(Check("fail", "user", "From email not set: set custom.from_email to a PagerDuty user's email"))
    else:

        def user(address: str = email) -> str | None:
            return f"User {address} valid" if client.find_user_by_email(address) else None

        checks.append(_probe("user", f"User {email}", user, ": not a PagerDuty user"))
    policies = {p for p in [config.custom.escalation_policy_id, *config.custom.escalation_mappings.values()] if p}
    for policy_id in sorted(policies):

        def policy(pid: str = policy_id) -> str:
            client.get_escalation_policy(pid)
            return f"Escalation policy {pid} found"

        checks.append(_probe("policy", f"Escalation policy {policy_id}", policy))
    return checks


def recorded_api_check(im: Im, connector: Connector) -> Check:
    """PagerDuty as the last recorded call found it: Slack is answered after a local read only."""
    with im.store.read() as session:
        last = session.exec(
            select(ConnectorCall).where(ConnectorCall.connector == connector.name).order_by(col(ConnectorCall.id).desc()).limit(1)
        ).first()
    if last is None:
        return Check("fail", "api", f"no call made yet (run: im connector test {connector.name})")
    when = ago(last.at)
    if 200 <= last.status < 300:
        return Check("ok", "api", f"Connected to PagerDuty API (last call {when}, {last.duration_ms:.0f}ms)")
    reason = "PagerDuty rejected the API key" if last.status == 401 else f"HTTP {last.status or 'no answer'}"
    return Check("fail", "api", f"last call {when}: {reason}")


def webhook_checks(connector: Connector, config: PagerDutyConfig, public_url: str | None) -> list[Check]:
    """im's own endpoint (does IM_PUBLIC_URL answer?) and the subscription. Before `connector webhook`
    has been run both are only warnings; once deliveries are expected an unreachable endpoint is broken."""
    if not config.inbound:
        return []  # outbound only: PagerDuty never calls us
    expected = connector.webhook_enabled
    hook = f"im connector webhook {connector.name}"
    if not public_url:
        checks = [
            Check(
                "fail" if expected else "warn",
                "endpoint",
                "Webhook endpoint: IM_PUBLIC_URL is not set (the public address PagerDuty delivers to)",
            )
        ]
    else:
        checks = [_endpoint_check(connector.name, public_url, expected)]
    if expected and connector.webhook_secrets:
        checks.append(Check("ok", "webhook", "Webhook endpoint configured"))
    else:
        checks.append(
            Check("warn", "webhook", f"Webhook not set up yet: {hook} --enable (or --secret for one made in PagerDuty's UI)")
        )
    return checks


def _endpoint_check(name: str, public_url: str, expected: bool) -> Check:
    base = public_url.rstrip("/")
    url = f"{base}/connectors/{name}/webhook"
    try:
        answer = httpx.get(f"{base}/healthz", timeout=ENDPOINT_TIMEOUT, follow_redirects=False)
        ours = "version" in answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        reason = f"{type(exc).__name__}" if not str(exc) else str(exc).splitlines()[0][:120]
        return Check("fail" if expected else "warn", "endpoint", f"Webhook endpoint not reachable: {base}/healthz: {reason}")
    except AttributeError:  # JSON, but not an object
        ours = False
    if not ours:
        return Check(
            "fail" if expected else "warn",
            "endpoint",
            f"Webhook endpoint: {base}/healthz answered HTTP {answer.status_code}, but not as im serve does",
        )
    return Check("ok", "endpoint", f"Webhook endpoint reachable ({url})")


def health_lines(connector: Connector, config: PagerDutyConfig, fig: Figures, checks: list[Check]) -> tuple[str, list[str]]:
    """-> (Healthy / Degraded / Unhealthy, the seed's lines)."""
    api = next((c for c in checks if c.topic == "api"), Check("fail", "api", "not checked"))
    lines = [
        f"API Connectivity: {MARKS[api.state]} {api.text.replace('Connected to PagerDuty API', 'Connected')}",
        f"Authentication: {'✓ Valid API key' if not api.broken else '✗ ' + api.text}",
    ]
    lines += [f"Service Access: {c.line.replace('Service ', '', 1)}" for c in checks if c.topic == "service"]
    broken = [c for c in checks if c.broken]
    if config.inbound:
        lines.append(f"Webhook: {_receiving(connector, fig)}")
        if not connector.webhook_enabled:
            broken.append(Check("fail", "webhook", "no webhook"))
        sync_ok = connector.last_sync_error is None and connector.last_sync_at is not None
        state = "✓ Up to date" if sync_ok else "✗ " + (connector.last_sync_error or "never synced")
        lines.append(f"Sync Status: {state} (last sync: {ago(connector.last_sync_at)})")
        if not sync_ok:
            broken.append(Check("fail", "api", "sync"))
    rate = fig.failed_calls_24h / fig.api_calls_24h if fig.api_calls_24h else 0.0
    lines.append(f"Error Rate: {percent(rate)} ({fig.failed_calls_24h} errors in 24h)")
    if fig.dead_jobs:
        lines.append(f"Dead-lettered jobs: {fig.dead_jobs} (retry: im connector sync {connector.name})")
        broken.append(Check("fail", "api", "dead jobs"))
    head = "Healthy" if not broken else "Degraded" if not api.broken else "Unhealthy"
    return head, lines


def _receiving(connector: Connector, fig: Figures) -> str:
    """What deliveries were actually seen, not only whether a subscription exists."""
    if not connector.webhook_enabled:
        return f"✗ Not configured (im connector webhook {connector.name} --enable)"
    if fig.last_webhook_at is None:
        return "⚠ Subscribed, no event received yet (try: im connector webhook " + connector.name + " --test)"
    return f"✓ Receiving events (last: {ago(fig.last_webhook_at)}, {fig.webhook_events_24h} in 24h)"
