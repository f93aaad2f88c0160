"""Every command's name, module and help line, and the settings' help lines, recorded so that a terminal
start imports only the module of the command it runs (`im --help` imports none).

The data below is generated: `python -m bot.command_index` rewrites it from the modules
`bot.wiring.register_commands` imports (tests/unit/test_command_index.py fails when it is out of date).
An out-of-date index only costs time: a command it does not know loads every module first."""

from __future__ import annotations

import sys
from pathlib import Path

from commands.grammar import IndexEntry

# -- generated: do not edit by hand
ENTRIES: tuple[IndexEntry, ...] = (
    IndexEntry(
        path=("ack",),
        module="commands.incident_commands",
        summary="acknowledge: someone is working on it (status mitigated)",
        group="incidents",
        aliases=("acknowledge",),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("assign",),
        module="commands.ownership_commands",
        summary="make someone the incident's owner",
        group="people",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("close",),
        module="commands.incident_commands",
        summary="close an incident (final)",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("completion",),
        module="commands.completion",
        summary="print a shell completion script (bash or zsh)",
        group="operations",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "add"),
        module="integrations.pagerduty.commands",
        summary="add a connector (prompts for each field without --config)",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "config"),
        module="integrations.pagerduty.commands",
        summary="change the default service, escalation policy, SLA mapping, direction or interval",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "health"),
        module="integrations.pagerduty.commands",
        summary="is the connector healthy: API, key, services, webhook, sync",
        group="connectors",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "list"),
        module="integrations.pagerduty.commands",
        summary="all connectors with their state and last sync",
        group="connectors",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "list-escalations"),
        module="integrations.pagerduty.commands",
        summary="escalation policies by im service",
        group="connectors",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "list-mappings"),
        module="integrations.pagerduty.commands",
        summary="im services and the PagerDuty services they map to",
        group="connectors",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "map-escalation"),
        module="integrations.pagerduty.commands",
        summary="use an escalation policy for one im service",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "map-service"),
        module="integrations.pagerduty.commands",
        summary="route an im service to a PagerDuty service",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "remove"),
        module="integrations.pagerduty.commands",
        summary="remove a connector (its secrets go with it)",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "status"),
        module="integrations.pagerduty.commands",
        summary="a connector's state, last sync and figures",
        group="connectors",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "sync"),
        module="integrations.pagerduty.commands",
        summary="sync now: read PagerDuty changes, retry dead-lettered jobs",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "test"),
        module="integrations.pagerduty.commands",
        summary="check the API key, services, from-email, escalation policy and webhook",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "update"),
        module="integrations.pagerduty.commands",
        summary="replace the API key",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("connector", "webhook"),
        module="integrations.pagerduty.commands",
        summary="create (--enable), delete (--disable) or ping (--test) the PagerDuty webhook",
        group="connectors",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("db", "upgrade"),
        module="bot.serve_commands",
        summary="apply database migrations (a release step: run once before starting new replicas)",
        group="operations",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("declare",),
        module="commands.incident_commands",
        summary="declare a new incident",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("escalate",),
        module="integrations.pagerduty.commands",
        summary="escalate the incident in PagerDuty: to the next level, or to --level N",
        group="people",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("help",),
        module="commands.help_command",
        summary="show commands, or one command's options",
        group="operations",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("list",),
        module="commands.incident_commands",
        summary="list incidents, newest first",
        group="incidents",
        aliases=("ls",),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("metrics", "connector"),
        module="integrations.pagerduty.commands",
        summary="a connector's sync figures",
        group="reports",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("note",),
        module="commands.incident_commands",
        summary="add a note to the incident's timeline",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("oncall",),
        module="integrations.pagerduty.commands",
        summary="who is on call now and next, per escalation level (asks PagerDuty)",
        group="people",
        aliases=(),
        slack=True,
        terminal=True,
        remote=True,
    ),
    IndexEntry(
        path=("page",),
        module="integrations.pagerduty.commands",
        summary="ask more responders to join through PagerDuty: a service's escalation policy or a person",
        group="people",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("postmortem",),
        module="commands.report_commands",
        summary="a postmortem draft for one incident from its timeline (Markdown, HTML or PDF)",
        group="reports",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("reopen",),
        module="commands.incident_commands",
        summary="reopen a resolved or closed incident",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("report",),
        module="commands.report_commands",
        summary="MTTA, MTTR, SLA compliance and trends over a range, as text, JSON, CSV, Markdown, HTML or PDF",
        group="reports",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("resolve",),
        module="commands.incident_commands",
        summary="resolve an incident, with a resolution note",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("role",),
        module="commands.ownership_commands",
        summary="put someone in a role on the incident (commander, ...), or clear it",
        group="people",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("secrets", "rotate"),
        module="commands.secret_commands",
        summary="re-seal every stored secret under the current IM_SECRET_KEY",
        group="operations",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("serve",),
        module="bot.serve_commands",
        summary="run the app: Slack endpoint, webhooks, workers and scheduler",
        group="operations",
        aliases=(),
        slack=False,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("severity",),
        module="commands.incident_commands",
        summary="change an incident's severity",
        group="incidents",
        aliases=("sev",),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("status",),
        module="commands.incident_commands",
        summary="one incident in full, or every incident that is not closed",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("take",),
        module="commands.ownership_commands",
        summary="take the incident: make yourself its owner",
        group="other",
        aliases=(),
        slack=True,
        terminal=False,
        remote=False,
    ),
    IndexEntry(
        path=("timeline",),
        module="commands.incident_commands",
        summary="every step of an incident, oldest first",
        group="incidents",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
    IndexEntry(
        path=("unassign",),
        module="commands.ownership_commands",
        summary="leave the incident without an owner",
        group="people",
        aliases=(),
        slack=True,
        terminal=True,
        remote=False,
    ),
)
ENVIRONMENT: tuple[str, ...] = (
    "  IM_DATABASE_URL            default sqlite:///./im.db",
    "  SLACK_BOT_TOKEN            (secret)",
    "  SLACK_SIGNING_SECRET       (secret)",
    "  SLACK_APP_TOKEN            (secret)",
    "  SLACK_API_URL              default https://slack.com/api/",
    "  IM_SLACK_CHANNEL",
    "  SLACK_TEAM_ID",
    "  IM_SLACK_TIMEOUT_SECONDS   default 10.0",
    "  IM_PUBLIC_URL",
    "  IM_HOST                    default 0.0.0.0",
    "  IM_PORT                    default 3000",
    "  IM_WAR_ROOM_MIN_SEV        default SEV-1",
    "  IM_SECRET_KEY              (secret)",
    "  IM_SECRET_KEY_PREVIOUS     (secret)",
    "  IM_WORKERS                 default 2",
    "  IM_WEBHOOK_ALLOWED_NETWORKS",
    "  IM_TRUST_FORWARDED_FOR     default false",
    "  IM_WEBHOOK_MAX_PER_SECOND  default 50.0",
    "  IM_ADMINS",
    "  IM_ROLES                   default commander,communications",
    "  IM_PROTECTED_SEVERITIES    default SEV-1,SEV-2",
    "  IM_SLA_ACK                 default SEV-1=5m,SEV-2=15m,SEV-3=1h,SEV-4=4h",
    "  IM_SLA_RESOLVE             default SEV-1=4h,SEV-2=8h,SEV-3=1d,SEV-4=3d",
    "  IM_SLA_WARN_FRACTION       default 0.8",
    "  IM_REMINDERS               default SEV-1=15m,SEV-2=30m",
    "  IM_LOG_LEVEL",
    "  IM_LOG_FORMAT              default text",
    "  IM_METRICS_TOKEN           (secret)",
)
# -- end of generated

_BEGIN = "# -- generated: do not edit by hand"
_END = "# -- end of generated"


def current() -> tuple[tuple[IndexEntry, ...], tuple[str, ...]]:
    """The index as the code stands (every command module imported)."""
    from bot.wiring import register_commands
    from commands.grammar import REGISTRY, environment_lines, load_all

    load_all()
    register_commands()
    entries = tuple(
        IndexEntry(
            spec.path,
            spec.handler.__module__,
            spec.summary,
            spec.group,
            spec.aliases,
            spec.slack,
            spec.terminal,
            spec.remote,
        )
        for _, spec in sorted(REGISTRY.items())
    )
    return entries, tuple(environment_lines())


def source() -> str:
    """This file with its generated part made current."""
    entries, environment = current()
    text = Path(__file__).read_text()
    head, rest = text.split(_BEGIN, 1)
    _, tail = rest.split(_END, 1)
    lines = [_BEGIN, "ENTRIES: tuple[IndexEntry, ...] = ("]
    lines += [f"    {entry!r}," for entry in entries]
    lines += [")", "ENVIRONMENT: tuple[str, ...] = ("]
    lines += [f"    {line!r}," for line in environment]
    lines += [")", _END]
    return head + "\n".join(lines) + tail


if __name__ == "__main__":
    import subprocess

    Path(__file__).write_text(source())
    subprocess.run([str(Path(sys.executable).with_name("ruff")), "format", "--quiet", __file__], check=False)
