"""Configuration is refused with the name of what is wrong: the environment variable, or the field of
a connector's JSON. Durations read and print the same way."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.clock import format_duration
from bot.config import ConfigError, load_settings
from integrations.pagerduty.config import ConnectorConfigError, parse_duration, validate_pagerduty


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("45", 45), (45, 45), (" 5M ", 300), ("10 m", 600)],
)
def test_parse_duration(value: str | int, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be more than zero"),
        ("0s", "must be more than zero"),
        (0, "must be more than zero"),
        ("-5m", "expected a duration such as 30s, 5m, 1h"),
        ("5x", "expected a duration such as 30s, 5m, 1h"),
        ("1.5h", "expected a duration such as 30s, 5m, 1h"),
        ("m", "expected a duration such as 30s, 5m, 1h"),
        ("", "expected a duration such as 30s, 5m, 1h"),
        ("5m30s", "expected a duration such as 30s, 5m, 1h"),
    ],
)
def test_parse_duration_refuses(value: str | int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "30s"),
        (61, "61s"),
        (90, "90s"),
        (60, "1m"),
        (5400, "90m"),
        (3600, "1h"),
        (90000, "25h"),
        (86400, "1d"),
        (172800, "2d"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_reads_back() -> None:
    for seconds in [*range(1, 400), 3599, 3600, 7200, 86399, 86400, 90061, 604800]:
        assert parse_duration(format_duration(seconds)) == seconds


def test_a_valid_connector_config() -> None:
    config, api_key, routing_key = validate_pagerduty(
        {
            "api_key": "env:PD_KEY",
            "routing_key": "env:PD_ROUTING_KEY",
            "base_url": "https://api.pagerduty.com/",
            "sync_direction": "bidirectional",
            "sync_interval": "5m",
            "custom": {
                "service_id": "PSVC001",
                "from_email": "ops@example.com",
                "urgency_mapping": {"SEV-3": "high"},
                "service_mappings": {"DB": "PDAT001"},
                "sla_mapping": {"SEV-1": {"ack": "5m", "resolve": "4h"}},
            },
        }
    )
    assert api_key == "env:PD_KEY" and routing_key == "env:PD_ROUTING_KEY"
    assert config.base_url == "https://api.pagerduty.com" and config.sync_interval == 300
    assert config.outbound and config.inbound
    assert config.custom.service_mappings == {"db": "PDAT001"}
    assert config.custom.sla_mapping["SEV-1"].ack == 300 and config.custom.sla_mapping["SEV-1"].resolve == 14400


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "--config must be a JSON object"),
        ({"api_key": ""}, "api_key: expected a non-empty string (or env:VAR_NAME)"),
        ({"api_key": "  "}, "api_key: expected a non-empty string (or env:VAR_NAME)"),
        ({"api_key": 5}, "api_key: expected a non-empty string (or env:VAR_NAME)"),
        ({"base_url": "ftp://example.com"}, "base_url: expected an http(s) URL such as https://api.pagerduty.com"),
        ({"sync_direction": "sideways"}, "sync_direction: "),
        ({"sync_interval": "10s"}, "sync_interval: at least 30s"),
        ({"sync_interval": "soon"}, "sync_interval: expected a duration such as 30s, 5m, 1h"),
        ({"enable_webhook": "maybe"}, "enable_webhook: "),
        ({"bogus": 1}, "bogus: unknown field"),
        ({"custom": {"bogus": 1}}, "custom.bogus: unknown field"),
        ({"custom": {"service_id": "nope"}}, "custom.service_id: expected a PagerDuty ID such as PXXXXXX"),
        ({"custom": {"escalation_policy_id": "P1"}}, "custom.escalation_policy_id: expected a PagerDuty ID such as PXXXXXX"),
        ({"custom": {"from_email": "bob"}}, "custom.from_email: expected an email address of a PagerDuty user"),
        ({"custom": {"urgency_mapping": {"SEV-9": "high"}}}, "custom.urgency_mapping: 'SEV-9' is not a severity"),
        ({"custom": {"urgency_mapping": {"SEV-1": "urgent"}}}, "custom.urgency_mapping.SEV-1: "),
        ({"custom": {"service_mappings": {"db": "x"}}}, "custom.service_mappings: expected a PagerDuty ID for 'db' such as"),
        ({"custom": {"escalation_mappings": {"db": "x"}}}, "custom.escalation_mappings: expected a PagerDuty ID for 'db'"),
        ({"custom": {"sla_mapping": {"SEV-0": {}}}}, "custom.sla_mapping: 'SEV-0' is not a severity"),
        ({"custom": {"sla_mapping": {"SEV-1": {"ack": "soon"}}}}, "custom.sla_mapping.SEV-1.ack: expected a duration"),
        ({"custom": {"sla_mapping": {"SEV-1": {"page": "5m"}}}}, "custom.sla_mapping.SEV-1.page: unknown field"),
    ],
)
def test_connector_config_errors_name_the_field(raw: Any, message: str) -> None:
    with pytest.raises(ConnectorConfigError) as refused:
        validate_pagerduty(raw)
    assert str(refused.value).startswith(message), str(refused.value)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Only the variables a test sets, and no .env file to read."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "IM_", "PAGERDUTY_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults_load(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///") and settings.port == 3000 and not settings.slack_configured


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("IM_PORT", "0", "greater than or equal to 1"),
        ("IM_PORT", "65536", "less than or equal to 65535"),
        ("IM_PORT", "http", "valid integer"),
        ("IM_WORKERS", "0", "greater than or equal to 1"),
        ("IM_WORKERS", "33", "less than or equal to 32"),
        ("IM_WAR_ROOM_MIN_SEV", "SEV-9", "'SEV-9' is not a severity (expected SEV-1, SEV-2, SEV-3 or SEV-4)"),
        ("IM_PROTECTED_SEVERITIES", "SEV-1,high", "'high' is not a severity"),
        ("IM_ADMINS", "U0ALICE01,@bob", "'@bob' is neither a Slack user ID"),
        ("IM_ROLES", "commander,Scribe Two", "'scribe two' is not a role name"),
        ("IM_ROLES", " , ", "at least one role is needed"),
        ("IM_DATABASE_URL", "mysql://db/im", "expected a sqlite:/// or postgresql:// URL"),
        ("SLACK_API_URL", "slack.com/api/", "expected an http:// or https:// URL"),
        ("IM_PUBLIC_URL", "im.example.com", "expected an http:// or https:// URL"),
        ("IM_SLACK_CHANNEL", "#incidents", "expected a Slack channel ID such as C0123456789"),
    ],
)
def test_settings_errors_name_the_variable(environment: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    environment.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"invalid setting {variable}: "), str(refused.value)
    assert message in str(refused.value)


def test_settings_read_loosely_written_values(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("IM_WAR_ROOM_MIN_SEV", " sev-2 ")
    environment.setenv("IM_DATABASE_URL", "postgresql+psycopg://db/im")
    environment.setenv("IM_ROLES", " Commander, scribe ,")
    environment.setenv("IM_PROTECTED_SEVERITIES", "1, sev2")
    settings = load_settings()
    assert settings.war_room_min_sev == "SEV-2" and settings.database_url == "postgresql+psycopg://db/im"
    assert settings.roles == ("commander", "scribe") and settings.protected_severities == ("SEV-1", "SEV-2")


def test_a_secret_is_not_echoed_in_a_settings_error(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    environment.setenv("IM_PORT", "nope")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "xoxb-very-secret" not in str(refused.value)
