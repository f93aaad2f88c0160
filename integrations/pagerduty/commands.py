"""`connector ...` and `metrics connector NAME`: manage and watch the PagerDuty connector.

Changing a connector is terminal-only; `list`, `status` and `health` also answer in Slack.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from bot.clock import format_duration, short, utcnow
from bot.connectors.models import Connector
from bot.connectors.secrets import SecretError, mask
from commands.context import Context
from commands.grammar import GLOBAL_DESTS, UsageError, argument, command
from commands.results import Done, Lines, Result, Table
from integrations.pagerduty import page_input
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.errors import PagerDutyError
from integrations.pagerduty.config import ConnectorConfigError, PagerDutyConfig
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.debug import KEYS as DEBUG_KEYS
from integrations.pagerduty.metrics import ago, connector_state, figures, percent
from integrations.pagerduty.oncall import on_call
from integrations.pagerduty.plugin import registry_for
from integrations.pagerduty.reconcile import Reconciler
from integrations.pagerduty.registry import ConnectorRegistry
from integrations.pagerduty.tables import ConnectorCall, WebhookDelivery

NAME = argument("name", metavar="NAME", help="connector name, e.g. prod-pagerduty")
WEBHOOK_EVENTS = [
    "incident.triggered",
    "incident.acknowledged",
    "incident.unacknowledged",
    "incident.escalated",
    "incident.reassigned",
    "incident.resolved",
    "incident.reopened",
    "incident.annotated",
]


def _registry(ctx: Context) -> ConnectorRegistry:
    return registry_for(ctx.im)


def _json_arg(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConnectorConfigError(f"{flag}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


PROMPTS = [  # (field path, label, default, secret) as the seed's interactive setup asks
    ("api_key", "API Key", None, True),
    ("base_url", "API Base URL", "https://api.pagerduty.com", False),
    ("custom.service_id", "Default Service ID (e.g. PXXXXXX)", None, False),
    ("custom.from_email", "From Email (a PagerDuty user)", None, False),
    ("custom.escalation_policy_id", "Escalation Policy ID (optional)", "", False),
    ("sync_direction", "Sync Direction (bidirectional, outbound, inbound)", "outbound", False),
]


def _prompted_config(ctx: Context) -> dict[str, Any]:
    if ctx.prompt is None:
        raise UsageError("--config is required when not on a terminal (no one to answer prompts)", ctx.usage)
    raw: dict[str, Any] = {}
    for path, label, default, secret in PROMPTS:
        answer = ctx.prompt(label, default, secret)
        if not answer:
            continue
        target = raw
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = answer
    return raw


@command(
    "connector add",
    summary="add a connector (prompts for each field without --config)",
    slack=False,
    examples=(
        'connector add pagerduty prod-pagerduty --config \'{"api_key": "env:PD_KEY", "custom": {"service_id": "PXXXXXX", "from_email": "ops@example.com"}}\'',
    ),
)
@argument("type", metavar="TYPE", help="pagerduty")
@NAME
@argument("--config", metavar="JSON", help="the whole configuration as JSON (api_key may be env:VAR_NAME)")
def connector_add(ctx: Context, args: argparse.Namespace) -> Result:
    raw = _json_arg(args.config, "--config") if args.config is not None else _prompted_config(ctx)
    row = _registry(ctx).add(args.name, args.type, raw)
    config = ConnectorRegistry.config(row)
    lines = [
        f"Connector {row.name} ({row.type}) added: {config.sync_direction}, every {format_duration(config.sync_interval)}",
        f"API key: {mask(row.api_key)}",
        f"Next: im connector test {row.name}",
    ]
    if config.enable_webhook and config.inbound:
        lines.append(f"Then:  im connector webhook {row.name} --enable")
    return Lines(lines=lines)


def _checks(ctx: Context, connector: Connector) -> list[tuple[bool, str]]:
    registry = _registry(ctx)
    config = registry.config(connector)
    results: list[tuple[bool, str]] = []
    try:
        client = client_for(registry, connector, max_attempts=2, max_wait=5)
    except (SecretError, PagerDutyError) as exc:
        return [(False, f"API key unusable: {exc}")]
    with client:
        started = time.monotonic()
        try:
            client.check_api_key()
            results.append((True, f"Connected to PagerDuty API ({(time.monotonic() - started) * 1000:.0f}ms)"))
        except PagerDutyError as exc:
            return [(False, f"Connected to PagerDuty API: {exc.user_message}")]
        services = config.covered_service_ids()
        if not services:
            results.append((False, "No service: set custom.service_id or map a service"))
        for service_id in services:
            try:
                service = client.get_service(service_id)
                results.append((True, f"Service {service_id} accessible ({service.name or service.summary})"))
            except PagerDutyError as exc:
                results.append((False, f"Service {service_id}: {exc.user_message}"))
        email = config.custom.from_email
        if not email:
            results.append((False, "From email not set: set custom.from_email to a PagerDuty user's email"))
        else:
            try:
                user = client.find_user_by_email(email)
                results.append((True, f"User {email} valid") if user else (False, f"User {email}: not a PagerDuty user"))
            except PagerDutyError as exc:
                results.append((False, f"User {email}: {exc.user_message}"))
        for policy_id in sorted(
            {p for p in [config.custom.escalation_policy_id, *config.custom.escalation_mappings.values()] if p}
        ):
            try:
                client.get_escalation_policy(policy_id)
                results.append((True, f"Escalation policy {policy_id} found"))
            except PagerDutyError as exc:
                results.append((False, f"Escalation policy {policy_id}: {exc.user_message}"))
    if connector.webhook_enabled and connector.webhook_secrets:
        results.append((True, "Webhook endpoint configured"))
    elif config.inbound:
        results.append((False, f"Webhook endpoint not configured: im connector webhook {connector.name} --enable"))
    return results


@command(
    "connector test",
    summary="check the API key, services, from-email, escalation policy and webhook",
    slack=False,
    examples=("connector test prod-pagerduty", "connector test prod-pagerduty --json"),
)
@NAME
def connector_test(ctx: Context, args: argparse.Namespace) -> Result:
    connector = _registry(ctx).get(args.name)
    checks = _checks(ctx, connector)
    return Lines(lines=[f"{'✓' if ok else '✗'} {text}" for ok, text in checks], ok=all(ok for ok, _ in checks))


@command(
    "connector list",
    summary="all connectors with their state and last sync",
    examples=("connector list", "connector list --json"),
)
def connector_list(ctx: Context, args: argparse.Namespace) -> Result:
    rows = []
    for connector in _registry(ctx).all():
        config = ConnectorRegistry.config(connector)
        fig = figures(ctx.im, connector.name)
        rows.append(
            [connector.name, connector.type, connector_state(connector, fig), config.sync_direction, ago(connector.last_sync_at)]
        )
    return Table(columns=["Name", "Type", "Status", "Direction", "Last Sync"], rows=rows)


@command("connector status", summary="a connector's state, last sync and figures", examples=("connector status prod-pagerduty",))
@NAME
def connector_status(ctx: Context, args: argparse.Namespace) -> Result:
    connector = _registry(ctx).get(args.name)
    config = ConnectorRegistry.config(connector)
    fig = figures(ctx.im, connector.name)
    lines = [
        f"Connector: {connector.name} ({connector.type})",
        f"Status: {connector_state(connector, fig).title()}",
        f"Direction: {config.sync_direction.title()} (every {format_duration(config.sync_interval)})",
        f"Last Sync: {short(connector.last_sync_at) if connector.last_sync_at else 'never'}",
        f"Incidents Synced: {fig.incidents_synced_24h} (last 24h)",
        f"Sync Errors: {fig.sync_errors_24h}" + (f" (last: {connector.last_sync_error})" if connector.last_sync_error else ""),
        f"Webhook: {'Enabled' if connector.webhook_enabled else 'Disabled'}",
        f"API Key: {mask(connector.api_key)}",
    ]
    if fig.pending_jobs or fig.dead_jobs:
        lines.append(
            f"Outbound queue: {fig.pending_jobs} pending, {fig.dead_jobs} dead-lettered"
            + (f" (retry: im connector sync {connector.name})" if fig.dead_jobs else "")
        )
    return Lines(lines=lines, data={"dead_jobs": fig.dead_jobs})


@command(
    "connector health",
    summary="is the connector healthy: API, key, services, webhook, sync",
    examples=("connector health prod-pagerduty",),
)
@NAME
def connector_health(ctx: Context, args: argparse.Namespace) -> Result:
    connector = _registry(ctx).get(args.name)
    config = ConnectorRegistry.config(connector)
    fig = figures(ctx.im, connector.name)
    # A terminal checks PagerDuty live. Slack must be answered after a local read only (never after a
    # call to PagerDuty), so there the connectivity lines come from the calls we recorded.
    checks = _checks(ctx, connector) if ctx.frontend == "cli" else _recorded_checks(ctx, connector)
    api_ok = checks[0][0] if checks else False
    lines = [
        f"API Connectivity: {'✓ ' + checks[0][1].replace('Connected to PagerDuty API', 'Connected') if api_ok else '✗ ' + checks[0][1]}"
    ]
    lines.append(f"Authentication: {'✓ Valid API key' if api_ok else '✗ ' + checks[0][1]}")
    for ok, text in checks[1:]:
        if text.startswith("Service"):
            lines.append(f"Service Access: {'✓' if ok else '✗'} {text.removeprefix('Service ')}")
    if config.inbound:
        hook_ok = connector.webhook_enabled
        lines.append(f"Webhook: {'✓ Receiving events' if hook_ok else '✗ Not configured'} (last: {ago(fig.last_webhook_at)})")
        sync_ok = connector.last_sync_error is None and connector.last_sync_at is not None
        lines.append(
            f"Sync Status: {'✓ Up to date' if sync_ok else '✗ ' + (connector.last_sync_error or 'never synced')} "
            f"(last sync: {ago(connector.last_sync_at)})"
        )
    else:
        hook_ok = sync_ok = True
    rate = 1 - (fig.success_rate if fig.success_rate is not None else 1)
    lines.append(f"Error Rate: {percent(rate)} ({fig.sync_errors_24h} errors in 24h)")
    if fig.dead_jobs:
        lines.append(f"Dead-lettered jobs: {fig.dead_jobs} (retry: im connector sync {connector.name})")
    healthy = all(ok for ok, _ in checks if not _.startswith("Webhook")) and hook_ok and sync_ok and not fig.dead_jobs
    degraded = api_ok and not healthy
    head = "Healthy" if healthy else "Degraded" if degraded else "Unhealthy"
    return Lines(lines=[f"Health: {head} ({connector.name})", *lines], ok=healthy)


def _recorded_checks(ctx: Context, connector: Connector) -> list[tuple[bool, str]]:
    with ctx.im.store.read() as session:
        last = session.exec(
            select(ConnectorCall).where(ConnectorCall.connector == connector.name).order_by(col(ConnectorCall.id).desc()).limit(1)
        ).first()
    if last is None:
        return [(False, "no call made yet (run: im connector test " + connector.name + ")")]
    when = ago(last.at)
    if 200 <= last.status < 300:
        return [(True, f"Connected to PagerDuty API (last call {when}, {last.duration_ms:.0f}ms)")]
    reason = "PagerDuty rejected the API key" if last.status == 401 else f"HTTP {last.status or 'no answer'}"
    return [(False, f"last call {when}: {reason}")]


@command(
    "connector update",
    summary="replace the API key",
    slack=False,
    examples=("connector update prod-pagerduty --api-key env:PD_KEY",),
)
@NAME
@argument("--api-key", required=True, metavar="KEY", help="the new key, or env:VAR_NAME")
def connector_update(ctx: Context, args: argparse.Namespace) -> Result:
    row = _registry(ctx).set_api_key(args.name, args.api_key)
    return Lines(lines=[f"API key of {row.name} replaced: {mask(row.api_key)}", f"Check it: im connector test {row.name}"])


@command(
    "connector config",
    summary="change the default service, escalation policy, SLA mapping, direction or interval",
    slack=False,
    examples=('connector config prod --sla-mapping \'{"SEV-1": {"ack": "15m", "resolve": "1h"}}\'',),
)
@NAME
@argument("--service-id", metavar="ID", help="default PagerDuty service")
@argument("--escalation-policy", metavar="ID", help="default escalation policy")
@argument("--sla-mapping", metavar="JSON", help='{"SEV-1": {"ack": "15m", "resolve": "1h"}, ...}')
@argument("--sync-direction", choices=["bidirectional", "outbound", "inbound"])
@argument("--sync-interval", metavar="DURATION", help="e.g. 2m, 5m")
@argument("--from-email", metavar="EMAIL", help="email of a PagerDuty user for changes made by non-PagerDuty users")
@argument("--debug", choices=["on", "off"], help="log each PagerDuty call (secrets masked)")
@argument("--log-requests", choices=["on", "off"], help="debug mode, with request bodies")
@argument("--log-responses", choices=["on", "off"], help="debug mode, with response bodies")
def connector_config(ctx: Context, args: argparse.Namespace) -> Result:
    changes = {k: v for k, v in vars(args).items() if k != "name" and k not in GLOBAL_DESTS and v is not None}
    if not changes:
        raise UsageError("nothing to change: give at least one option", ctx.usage)
    sla = _json_arg(args.sla_mapping, "--sla-mapping") if args.sla_mapping else None

    def apply(data: dict[str, Any]) -> None:
        custom = data.setdefault("custom", {})
        if args.service_id:
            custom["service_id"] = args.service_id
        if args.escalation_policy:
            custom["escalation_policy_id"] = args.escalation_policy
        if args.from_email:
            custom["from_email"] = args.from_email
        if sla is not None:
            custom["sla_mapping"] = sla
        if args.sync_direction:
            data["sync_direction"] = args.sync_direction
        if args.sync_interval:
            data["sync_interval"] = args.sync_interval
        data.update({key: getattr(args, key) == "on" for key in DEBUG_KEYS if getattr(args, key) is not None})

    row = _registry(ctx).configure(args.name, apply)
    return Lines(lines=[f"{row.name}: updated {', '.join(k.replace('_', '-') for k in changes)}"])


def _map(ctx: Context, name: str, mapping: str, service: str, pd_id: str) -> str:
    """Set custom.<mapping>[service] = pd_id; the whole config is validated again before it is stored."""
    service = service.strip().lower()
    _registry(ctx).configure(name, lambda d: d.setdefault("custom", {}).setdefault(mapping, {}).__setitem__(service, pd_id))
    return service


@command(
    "connector map-service",
    summary="route an im service to a PagerDuty service",
    slack=False,
    examples=("connector map-service prod-pagerduty --im-service db --pd-service PDB1234",),
)
@NAME
@argument("--im-service", required=True, metavar="SERVICE", help="im service name (or 'default')")
@argument("--pd-service", required=True, metavar="ID", help="PagerDuty service ID")
def connector_map_service(ctx: Context, args: argparse.Namespace) -> Result:
    service = _map(ctx, args.name, "service_mappings", args.im_service, args.pd_service)
    return Lines(lines=[f"{args.name}: im service {service} -> PagerDuty {args.pd_service}"])


@command(
    "connector list-mappings",
    summary="im services and the PagerDuty services they map to",
    examples=("connector list-mappings prod-pagerduty",),
)
@NAME
def connector_list_mappings(ctx: Context, args: argparse.Namespace) -> Result:
    connector = _registry(ctx).get(args.name)
    config = ConnectorRegistry.config(connector)
    mappings = dict(config.custom.service_mappings)
    if config.custom.service_id and "default" not in mappings:
        mappings["default"] = config.custom.service_id
    # PagerDuty's names only in a terminal: Slack is answered without waiting on PagerDuty
    names = _service_names(ctx, connector, set(mappings.values())) if ctx.frontend == "cli" else {}
    rows = [[s, pd, names.get(pd, "?")] for s, pd in sorted(mappings.items(), key=lambda kv: (kv[0] == "default", kv[0]))]
    return Table(columns=["IM Service", "PagerDuty Service", "Service Name"], rows=rows)


def _service_names(ctx: Context, connector: Connector, ids: set[str]) -> dict[str, str]:
    """Names from PagerDuty when it answers; the table still prints when it does not."""
    names: dict[str, str] = {}
    try:
        with client_for(_registry(ctx), connector, max_attempts=1, max_wait=2, timeout=5) as client:
            for service in client.list_services():
                if service.id in ids:
                    names[service.id] = service.name or service.summary or "?"
    except (PagerDutyError, SecretError):
        pass
    return names


@command(
    "connector map-escalation",
    summary="use an escalation policy for one im service",
    slack=False,
    examples=("connector map-escalation prod-pagerduty --service db --escalation-policy PEP1234",),
)
@NAME
@argument("--service", required=True, metavar="SERVICE", help="im service name")
@argument("--escalation-policy", required=True, metavar="ID", help="PagerDuty escalation policy ID")
def connector_map_escalation(ctx: Context, args: argparse.Namespace) -> Result:
    service = _map(ctx, args.name, "escalation_mappings", args.service, args.escalation_policy)
    return Lines(lines=[f"{args.name}: im service {service} escalates through {args.escalation_policy}"])


@command(
    "connector list-escalations",
    summary="escalation policies by im service",
    examples=("connector list-escalations prod-pagerduty",),
)
@NAME
def connector_list_escalations(ctx: Context, args: argparse.Namespace) -> Result:
    config = ConnectorRegistry.config(_registry(ctx).get(args.name))
    rows = [[s, p] for s, p in sorted(config.custom.escalation_mappings.items())]
    if config.custom.escalation_policy_id:
        rows.append(["default", config.custom.escalation_policy_id])
    return Table(columns=["IM Service", "Escalation Policy"], rows=rows)


@command(
    "connector sync",
    summary="sync now: read PagerDuty changes, retry dead-lettered jobs",
    slack=False,
    examples=("connector sync prod-pagerduty", "connector sync prod-pagerduty --incident INC-12"),
)
@NAME
@argument("--incident", "-i", metavar="ID", help="only this incident")
def connector_sync(ctx: Context, args: argparse.Namespace) -> Result:
    _registry(ctx).get(args.name)
    show = ctx.frontend == "cli" and sys.stderr.isatty()

    def progress(count: int, what: str) -> None:
        if show:
            bar = "#" * min(30, count // 10 + 1)
            print(f"\r  [{bar:<30}] {count} incidents ({what})", end="", file=sys.stderr, flush=True)

    result = Reconciler(ctx.im, _registry(ctx)).sync(args.name, incident=args.incident, progress=progress, requeue_dead=True)
    if show:
        print(file=sys.stderr)
    lines = [
        f"{args.name}: {result.seen} PagerDuty incidents read, {result.changed} changed here, "
        f"{result.errors} errors ({result.duration_ms / 1000:.1f}s)"
    ]
    if result.requeued:
        lines.append(f"{result.requeued} dead-lettered job(s) queued again")
    if result.error:
        lines.append(f"✗ {result.error}")
    return Lines(lines=lines, ok=result.errors == 0)


@command(
    "connector webhook",
    summary="create (--enable), delete (--disable) or ping (--test) the PagerDuty webhook",
    slack=False,
    examples=("connector webhook prod-pagerduty --enable", "connector webhook prod-pagerduty --test"),
)
@NAME
@argument("--enable", action="store_true", help="subscribe im to this connector's incidents")
@argument("--disable", action="store_true", help="delete the subscription")
@argument("--test", action="store_true", help="ping the subscription and wait for it to arrive")
def connector_webhook(ctx: Context, args: argparse.Namespace) -> Result:
    if [args.enable, args.disable, args.test].count(True) != 1:
        raise UsageError("give exactly one of --enable, --disable, --test", ctx.usage)
    registry = _registry(ctx)
    connector = registry.get(args.name)
    config = registry.config(connector)
    try:
        with client_for(registry, connector) as client:
            if args.enable:
                return _webhook_enable(ctx, registry, connector, config, client)
            if args.disable:
                for sub in (connector.webhook_subscription_id or "").split(","):
                    if sub:
                        client.delete_webhook_subscription(sub)
                registry.set_webhook(args.name, subscription_id=None, secret_list=None, enabled=False)
                return Lines(lines=[f"{args.name}: webhook subscription deleted; deliveries are now refused"])
            return _webhook_test(ctx, connector, client)
    except PagerDutyError as exc:
        return Lines(lines=[f"✗ {exc.user_message}"], ok=False)


def _webhook_enable(
    ctx: Context, registry: ConnectorRegistry, connector: Connector, config: PagerDutyConfig, client: PagerDutyClient
) -> Result:
    base = ctx.im.settings.public_url
    if not base:
        raise UsageError("IM_PUBLIC_URL is not set: PagerDuty needs the public address of im serve, e.g. https://im.example.com")
    url = f"{base.rstrip('/')}/connectors/{connector.name}/webhook"
    services = config.covered_service_ids()
    filters: list[tuple[str, str | None]] = [("service_reference", s) for s in services] or [("account_reference", None)]
    for old in (connector.webhook_subscription_id or "").split(","):
        if old:
            client.delete_webhook_subscription(old)
    ids, secret_list = [], []
    for filter_type, filter_id in filters:
        sub = client.create_webhook_subscription(
            url=url,
            filter_type=filter_type,
            filter_id=filter_id,
            events=WEBHOOK_EVENTS,
            description=f"im connector {connector.name}",
        )
        ids.append(sub.id)
        if sub.secret is not None:
            secret_list.append(sub.secret.get_secret_value())
    registry.set_webhook(connector.name, subscription_id=",".join(ids), secret_list=secret_list, enabled=True)
    scope = ", ".join(s for _, s in filters if s) or "the whole account"
    return Lines(
        lines=[
            f"Webhook URL: {url}",
            f"Subscribed for {scope}: {len(WEBHOOK_EVENTS)} incident event types",
            "Secret stored encrypted" if secret_list else "✗ PagerDuty returned no secret",
        ]
    )


def _webhook_test(ctx: Context, connector: Connector, client: PagerDutyClient) -> Result:
    subs = [s for s in (connector.webhook_subscription_id or "").split(",") if s]
    if not subs:
        raise UsageError(f"no webhook subscription: im connector webhook {connector.name} --enable")
    sent_at = utcnow()
    for sub in subs:
        client.ping_webhook_subscription(sub)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        arrived = _ping_since(ctx, connector.name, sent_at)
        if arrived is not None:
            return Lines(lines=[f"✓ ping arrived after {(arrived - sent_at).total_seconds():.1f}s"])
        time.sleep(0.2)  # waiting for another process (im serve) to store the delivery
    return Lines(lines=["✗ ping did not arrive within 15s: is im serve running and reachable at IM_PUBLIC_URL?"], ok=False)


def _ping_since(ctx: Context, name: str, since: datetime) -> datetime | None:
    with ctx.im.store.read() as session:
        row = session.exec(
            select(WebhookDelivery).where(
                WebhookDelivery.connector == name,
                WebhookDelivery.event_type == "pagey.ping",
                col(WebhookDelivery.received_at) >= since,
            )
        ).first()
    return row.received_at if row else None


@command(
    "connector remove",
    summary="remove a connector (its secrets go with it)",
    slack=False,
    examples=("connector remove old-pagerduty",),
)
@NAME
def connector_remove(ctx: Context, args: argparse.Namespace) -> Result:
    _registry(ctx).remove(args.name)
    return Lines(lines=[f"Connector {args.name} removed"])


@command("metrics connector", summary="a connector's sync figures", examples=("metrics connector prod-pagerduty --json",))
@NAME
def metrics_connector(ctx: Context, args: argparse.Namespace) -> Result:
    connector = _registry(ctx).get(args.name)
    fig = figures(ctx.im, connector.name)
    avg = "-" if fig.avg_sync_ms is None else f"{fig.avg_sync_ms / 1000:.1f}s"
    return Lines(
        lines=[
            f"Connector: {connector.name}",
            f"Total Incidents: {fig.total_incidents}",
            f"Sync Success Rate: {percent(fig.success_rate)}",
            f"Average Sync Time: {avg}",
            f"API Calls (24h): {fig.api_calls_24h:,}",
            f"Rate Limit Usage: {percent(fig.ratelimit_used)}",
            f"Webhook Events (24h): {fig.webhook_events_24h:,}",
        ]
    )


@command(
    "oncall",
    summary="who is on call now and next, per escalation level (asks PagerDuty)",
    remote=True,
    examples=("oncall --service api", "oncall", "oncall --service api --utc"),
)
@argument("--service", "-s", metavar="NAME", help="im service name (default: every mapped service)")
@argument("--connector", metavar="NAME", help="which PagerDuty connector (when there are several)")
@argument("--utc", action="store_true", help="times in UTC rather than local time (terminal)")
def oncall(ctx: Context, args: argparse.Namespace) -> Result:
    try:
        answer = on_call(registry_for(ctx.im), args.connector, args.service, utcnow())
    except PagerDutyError as exc:
        return Lines(lines=[f"PagerDuty did not answer: {exc.user_message}"], ok=False)
    return answer.model_copy(update={"utc": bool(args.utc)})


INCIDENT_REF = argument("ref", nargs="?", metavar="INCIDENT", help="incident ID, e.g. INC-3 (default: this war room or thread)")


def _level(value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 20:
        raise argparse.ArgumentTypeError(f"'{value}' is not an escalation level (1, 2, 3...)")
    return int(value)


@command(
    "escalate",
    summary="escalate the incident in PagerDuty: to the next level, or to --level N",
    examples=("escalate INC-3", "escalate INC-3 --level 2"),
)
@INCIDENT_REF
@argument("--level", "-l", type=_level, metavar="N", help="escalation level to set (default: the next one)")
def escalate(ctx: Context, args: argparse.Namespace) -> Result:
    incident = page_input.pageable(ctx.im, ctx.incident(args.ref))
    wanted = f"level {args.level}" if args.level else "the next level"
    change = ctx.im.incidents.record(
        incident.number,
        "escalate",
        f"Escalation to {wanted} requested in PagerDuty",
        actor=ctx.actor,
        context={**ctx.origin_context, "level": args.level, "notify_channel": True},
        once_key=ctx.once_key,
    )
    return Done(
        message=f"{incident.ref}: escalating to {wanted} in PagerDuty" if change.changed else "That request was already handled.",
        incident=ctx.im.describe(change.incident),
        changed=change.changed,
    )


@command(
    "page",
    summary="ask more responders to join through PagerDuty: a service's escalation policy or a person",
    examples=("page INC-3 --service payments", "page INC-3 --user alice@example.com", "page INC-3 --user @alice"),
)
@INCIDENT_REF
@argument("--service", "-s", action="append", default=[], metavar="NAME", help="page this service's escalation policy")
@argument("--user", "-u", action="append", default=[], metavar="@USER|EMAIL", help="page this person")
@argument("--message", "-m", metavar="TEXT", help="what responders are asked (default: the incident's title)")
def page(ctx: Context, args: argparse.Namespace) -> Result:
    if not args.service and not args.user:
        raise UsageError("say whom to page: --service NAME or --user @USER|EMAIL", ctx.usage)
    incident = page_input.pageable(ctx.im, ctx.incident(args.ref))
    services = page_input.known_services(ctx.im, args.service)
    people = page_input.people(ctx.im, args.user)
    message = (args.message or "").strip()[:500] or None
    names = [*services, *(p.get("name") or p.get("email") or "someone" for p in people)]
    change = ctx.im.incidents.record(
        incident.number,
        "page",
        f"Paging {', '.join(names)} through PagerDuty" + (f": {message}" if message else ""),
        actor=ctx.actor,
        context={**ctx.origin_context, "services": services, "people": people, "message": message, "notify_channel": True},
        once_key=ctx.once_key,
    )
    return Done(
        message=f"{incident.ref}: paging {', '.join(names)} through PagerDuty"
        if change.changed
        else "That request was already handled.",
        incident=ctx.im.describe(change.incident),
        changed=change.changed,
    )
