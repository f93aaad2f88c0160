"""`connector ...` and `metrics connector NAME`: manage and watch the PagerDuty connector.

Changing a connector is terminal-only; `list`, `status` and `health` also answer in Slack.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import col, select

from bot.clock import format_duration, short, utcnow
from bot.connectors.models import Connector
from bot.connectors.secrets import SecretError, mask
from commands.context import Context
from commands.grammar import UsageError, argument, command
from commands.results import Done, Lines, Result, Table
from integrations.pagerduty import events_health, health, page_input
from integrations.pagerduty.api.client import PagerDutyClient
from integrations.pagerduty.api.errors import PagerDutyError
from integrations.pagerduty.config import ConnectorConfigError, PagerDutyConfig, check_routing_key
from integrations.pagerduty.connection import client_for
from integrations.pagerduty.metrics import ago, connector_state, figures, percent
from integrations.pagerduty.oncall import on_call
from integrations.pagerduty.plugin import registry_for
from integrations.pagerduty.reconcile import Reconciler
from integrations.pagerduty.registry import ConnectorRegistry, pages_by_routing_key
from integrations.pagerduty.tables import WebhookDelivery

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


def _prompted_config(ctx: Context, *, routing_key: bool = False) -> dict[str, Any]:
    if ctx.prompt is None:
        raise UsageError("--config is required when not on a terminal (no one to answer prompts)", ctx.usage)
    raw: dict[str, Any] = {}
    for path, label, default, secret in PROMPTS:
        if routing_key and path == "api_key":
            label += " (blank: page by the routing key only)"
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
@argument("--config", metavar="JSON", help="the whole configuration as JSON (api_key, routing_key may be env:VAR_NAME)")
@argument(
    "--routing-key",
    action="store_true",
    help="also ask for an Events API v2 routing key (never shown); with no API key, declare, ack and resolve go out as events",
)
def connector_add(ctx: Context, args: argparse.Namespace) -> Result:
    # asked first, so a refused key stops before anything else is asked or stored
    routing_key = _ask_routing_key(ctx) if args.routing_key else None
    raw = _json_arg(args.config, "--config") if args.config is not None else _prompted_config(ctx, routing_key=args.routing_key)
    row = _registry(ctx).add(args.name, args.type, raw, routing_key=routing_key)
    config = ConnectorRegistry.config(row)
    lines = [
        f"Connector {row.name} ({row.type}) added: {config.sync_direction}, every {format_duration(config.sync_interval)}",
        f"API key: {mask(row.api_key)}",
        *([f"Routing key: {mask(row.routing_key)}", f"Mode: {events_health.mode(row)}"] if row.routing_key else []),
        f"Next: im connector test {row.name}",
    ]
    if config.enable_webhook and config.inbound:
        lines.append(f"Then:  im connector webhook {row.name} --enable")
    return Lines(lines=lines)


def _ask_routing_key(ctx: Context) -> str:
    """On a terminal, asked without echo; otherwise one line of standard input. Never an argument: it
    would stay in the shell's history."""
    label = "Routing Key (the Integration Key of an Events API v2 integration)"
    key = (ctx.prompt(label, None, True) if ctx.prompt else sys.stdin.readline()).strip()
    if not key:
        raise UsageError("no routing key given (paste it when asked, or pipe it in)", ctx.usage)
    return check_routing_key(key, "--routing-key")


@command(
    "connector test",
    summary="check the API key, services, from-email, escalation policy and webhook endpoint",
    description="Checks PagerDuty and im's own webhook endpoint (IM_PUBLIC_URL). Exit code 1 only for what is "
    "broken; what is not set up yet (the webhook, before `connector webhook`) is a warning.",
    slack=False,
    examples=("connector test prod-pagerduty", "connector test prod-pagerduty --json"),
)
@NAME
def connector_test(ctx: Context, args: argparse.Namespace) -> Result:
    registry = _registry(ctx)
    connector = registry.get(args.name)
    if pages_by_routing_key(connector):
        checks = events_health.test_checks(registry, connector, registry.config(connector))
    else:
        checks = health.api_checks(registry, connector)
    checks += health.webhook_checks(connector, registry.config(connector), ctx.im.settings.public_url)
    return Lines(
        lines=[c.line for c in checks],
        ok=not any(c.broken for c in checks),
        data={"checks": [{"state": c.state, "topic": c.topic, "text": c.text} for c in checks]},
    )


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
        f"Webhook: {'Enabled' if connector.webhook_enabled else 'Disabled'}"
        + (f" (signing secrets: {mask(connector.webhook_secrets)})" if connector.webhook_secrets else ""),
        f"API Key: {mask(connector.api_key)}",
        *([f"Routing Key: {mask(connector.routing_key)}"] if connector.routing_key else []),
        f"Mode: {events_health.mode(connector)}",
    ]
    if fig.pending_jobs or fig.dead_jobs:
        lines.append(
            f"Outbound queue: {fig.pending_jobs} pending, {fig.dead_jobs} dead-lettered"
            + (f" (retry: im connector sync {connector.name})" if fig.dead_jobs else "")
        )
    return Lines(lines=lines, data={"dead_jobs": fig.dead_jobs})


@command(
    "connector health",
    summary="is the connector healthy: API, key, services, webhook deliveries, sync, error rate",
    examples=("connector health prod-pagerduty",),
)
@NAME
def connector_health(ctx: Context, args: argparse.Namespace) -> Result:
    registry = _registry(ctx)
    connector = registry.get(args.name)
    config = registry.config(connector)
    if pages_by_routing_key(connector):  # nothing live to ask without a REST key: the key and the events recorded
        head, lines = events_health.health_lines(ctx.im, registry, connector, figures(ctx.im, connector.name))
        return Lines(lines=[f"Health: {head} ({connector.name})", *lines], ok=head == "Healthy")
    # A terminal checks PagerDuty live. Slack must be answered after a local read only (never after a
    # call to PagerDuty), so there the connectivity line comes from the calls we recorded.
    live = ctx.frontend == "cli"
    checks = health.api_checks(registry, connector) if live else [health.recorded_api_check(ctx.im, connector)]
    fig = figures(ctx.im, connector.name)  # after the live checks: their calls count in the error rate
    head, lines = health.health_lines(connector, config, fig, checks)
    return Lines(lines=[f"Health: {head} ({connector.name})", *lines], ok=head == "Healthy")


@command(
    "connector update",
    summary="replace the API key or the routing key",
    slack=False,
    examples=("connector update prod-pagerduty --api-key env:PD_KEY", "connector update prod-pagerduty --routing-key"),
)
@NAME
@argument("--api-key", metavar="KEY", help="the new key, or env:VAR_NAME")
@argument("--routing-key", action="store_true", help="ask for a new Events API v2 routing key (never shown)")
def connector_update(ctx: Context, args: argparse.Namespace) -> Result:
    if args.api_key is None and not args.routing_key:
        raise UsageError("nothing to change: give --api-key KEY or --routing-key", ctx.usage)
    routing_key = _ask_routing_key(ctx) if args.routing_key else None
    row = _registry(ctx).set_keys(args.name, api_key=args.api_key, routing_key=routing_key)
    lines = [f"API key of {row.name} replaced: {mask(row.api_key)}"] if args.api_key is not None else []
    lines += [f"Routing key of {row.name} replaced: {mask(row.routing_key)}"] if routing_key else []
    return Lines(lines=[*lines, f"Mode: {events_health.mode(row)}", f"Check it: im connector test {row.name}"])


@dataclass(frozen=True)
class ConfigOption:
    """One field `connector config` changes: its flag, where it lives in the JSON config, and how it is read."""

    flag: str
    path: str
    read: Literal["text", "json", "bool"]
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


CONFIG_OPTIONS = (
    ConfigOption("--service-id", "custom.service_id", "text", "default PagerDuty service"),
    ConfigOption("--escalation-policy", "custom.escalation_policy_id", "text", "default escalation policy"),
    ConfigOption(
        "--from-email", "custom.from_email", "text", "email of a PagerDuty user, for changes by people PagerDuty does not know"
    ),
    ConfigOption("--sla-mapping", "custom.sla_mapping", "json", '{"SEV-1": {"ack": "15m", "resolve": "1h"}, ...}'),
    ConfigOption(
        "--urgency-mapping", "custom.urgency_mapping", "json", '{"SEV-3": "high", ...} (defaults: SEV-1/2 high, SEV-3/4 low)'
    ),
    ConfigOption("--service-mappings", "custom.service_mappings", "json", '{"api": "PAPI001", ...} (replaces them all)'),
    ConfigOption("--escalation-mappings", "custom.escalation_mappings", "json", '{"api": "PESC001", ...} (replaces them all)'),
    ConfigOption("--auto-resolve", "custom.auto_resolve", "bool", "resolve in PagerDuty when resolved in im (true/false)"),
    ConfigOption("--sync-notes", "custom.sync_notes", "bool", "send notes to PagerDuty (true/false)"),
    ConfigOption(
        "--custom-field-mappings",
        "custom_field_mappings",
        "json",
        '{"environment": "custom_details.environment", ...} (replaces them all; {} for none)',
    ),
    ConfigOption(
        "--severity-mapping",
        "custom.severity_mapping",
        "json",
        '{"SEV-3": "error", ...} for events by routing key (defaults: critical, error, warning, info)',
    ),
    ConfigOption("--base-url", "base_url", "text", "PagerDuty API URL"),
    ConfigOption("--events-url", "events_url", "text", "PagerDuty Events API URL (routing key)"),
    ConfigOption("--sync-direction", "sync_direction", "text", "", ("bidirectional", "outbound", "inbound")),
    ConfigOption("--sync-interval", "sync_interval", "text", "e.g. 2m, 5m"),
    ConfigOption("--request-timeout", "request_timeout", "text", "how long to wait for PagerDuty, e.g. 10s"),
    ConfigOption("--enable-webhook", "enable_webhook", "bool", "real-time updates wanted (true/false)"),
    ConfigOption("--debug", "debug", "bool", "debug logging of this connector (true/false)"),
    ConfigOption("--log-requests", "log_requests", "bool", "log PagerDuty requests, secrets redacted (true/false)"),
    ConfigOption("--log-responses", "log_responses", "bool", "log PagerDuty responses, secrets redacted (true/false)"),
)
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in TRUE + FALSE:
        raise argparse.ArgumentTypeError(f"'{text}' is not true or false")
    return value in TRUE


def _config_options(fn: Any) -> Any:
    for option in reversed(CONFIG_OPTIONS):
        kind: dict[str, Any] = {"metavar": option.read.upper()}
        if option.read == "bool":
            kind = {"type": _bool, "metavar": "true|false"}
        if option.choices:
            kind = {"choices": list(option.choices)}
        fn = argument(option.flag, dest=option.dest, help=option.help or None, **kind)(fn)
    return fn


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """`--config`: given fields replace stored ones; nested objects (custom) are merged key by key."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key == "custom":
            _merge(base[key], value)
        else:
            base[key] = value


@command(
    "connector config",
    summary="change any field of a connector's configuration (its webhook secrets are kept)",
    slack=False,
    examples=(
        'connector config prod --sla-mapping \'{"SEV-1": {"ack": "15m", "resolve": "1h"}}\'',
        'connector config prod --urgency-mapping \'{"SEV-3": "high"}\' --auto-resolve false',
        'connector config prod --custom-field-mappings \'{"environment": "custom_details.environment"}\'',
        'connector config prod --config \'{"custom": {"sync_notes": false}, "log_requests": true}\'',
    ),
)
@NAME
@argument("--config", metavar="JSON", help="fields to change as JSON, shaped like `connector add --config`")
@_config_options
def connector_config(ctx: Context, args: argparse.Namespace) -> Result:
    given = {o.dest: getattr(args, o.dest) for o in CONFIG_OPTIONS if getattr(args, o.dest) is not None}
    if not given and args.config is None:
        raise UsageError("nothing to change: give at least one option", ctx.usage)
    extra = _json_arg(args.config, "--config") if args.config is not None else {}
    if not isinstance(extra, dict):
        raise ConnectorConfigError("--config must be a JSON object")
    values = {
        o.path: _json_arg(given[o.dest], o.flag) if o.read == "json" else given[o.dest] for o in CONFIG_OPTIONS if o.dest in given
    }

    def apply(data: dict[str, Any]) -> None:
        _merge(data, extra)
        for path, value in values.items():
            _set_path(data, path, value)

    row = _registry(ctx).configure(args.name, apply)  # validated whole before it is stored: all or nothing
    changed = [o.flag.lstrip("-") for o in CONFIG_OPTIONS if o.dest in given] + sorted(extra)
    return Lines(lines=[f"{row.name}: updated {', '.join(changed)}"])


def _map(ctx: Context, args: argparse.Namespace, mapping: str, service: str, pd_id: str, said: str) -> Result:
    """Set custom.<mapping>[service] = pd_id; the whole config is validated again before it is stored."""
    service = service.strip().lower()
    _registry(ctx).configure(args.name, lambda d: d.setdefault("custom", {}).setdefault(mapping, {}).__setitem__(service, pd_id))
    return Lines(lines=[f"{args.name}: im service {service} {said} {pd_id}"])


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
    return _map(ctx, args, "service_mappings", args.im_service, args.pd_service, "-> PagerDuty")


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
    return _map(ctx, args, "escalation_mappings", args.service, args.escalation_policy, "escalates through")


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
    summary="create (--enable), delete (--disable) or ping (--test) the PagerDuty webhook, or store "
    "the signing secret of one made in PagerDuty's UI (--secret)",
    slack=False,
    examples=(
        "connector webhook prod-pagerduty --enable",
        "connector webhook prod-pagerduty --test",
        "connector webhook prod-pagerduty --secret",
    ),
)
@NAME
@argument("--enable", action="store_true", help="subscribe im to this connector's incidents")
@argument("--disable", action="store_true", help="delete the subscription and forget every signing secret")
@argument("--test", action="store_true", help="ping the subscription and wait for it to arrive")
@argument("--secret", action="store_true", help="store a subscription's signing secret (asked for, never shown)")
def connector_webhook(ctx: Context, args: argparse.Namespace) -> Result:
    if [args.enable, args.disable, args.test, args.secret].count(True) != 1:
        raise UsageError("give exactly one of --enable, --disable, --test, --secret", ctx.usage)
    registry = _registry(ctx)
    connector = registry.get(args.name)
    if args.secret:
        return _webhook_secret(ctx, registry, connector)
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


def _webhook_secret(ctx: Context, registry: ConnectorRegistry, connector: Connector) -> Result:
    """A subscription made by hand in PagerDuty (Integrations, Generic Webhooks v3) signs with a secret
    PagerDuty shows once: kept sealed beside the others, so its deliveries are accepted."""
    label = "Signing secret of the PagerDuty webhook subscription"
    secret = (ctx.prompt(label, None, True) if ctx.prompt else sys.stdin.readline()).strip()
    if not secret:
        raise UsageError("no secret given (paste the subscription's signing secret when asked, or pipe it in)", ctx.usage)
    if len(secret) < 16 or any(c.isspace() for c in secret):
        raise UsageError("that is not a webhook signing secret (PagerDuty's are long, without spaces)", ctx.usage)
    row, count = registry.add_webhook_secret(connector.name, secret)
    base = (ctx.im.settings.public_url or "https://<IM_PUBLIC_URL>").rstrip("/")
    return Lines(
        lines=[
            f"{row.name}: signing secret stored {mask(row.webhook_secrets)} ({count} kept); deliveries signed with it are accepted",
            f"Webhook URL to give PagerDuty: {base}/connectors/{row.name}/webhook",
        ]
    )


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
