"""Runbook URLs and matches: what is refused and why, and how a match meets an incident's attributes."""

from __future__ import annotations

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.models import Incident
from bot.domain.runbooks import Runbook, attributes, check_url, match_key, matches, parse_match


@pytest.mark.parametrize(
    "url", ["https://wiki.example.com/r?a=1&b=2", "http://10.0.0.1:8080/runbook#db", "HTTPS://Wiki.example.com"]
)
def test_good_urls_pass_unchanged(url: str) -> None:
    assert check_url(f"  {url} ") == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "javascript:alert(1)",
        "data:text/html,x",
        "https://a b",
        "https://a\tb",
        "https://x|y",
        "https://x>",
        'https://x"y',
        "//x.example.com",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url)


def test_matches_are_written_one_way_and_compared_without_case() -> None:
    match = parse_match(" Class=DB , component=payments ")
    assert match == {"class": "DB", "component": "payments"} and match_key(match) == "class=DB,component=payments"
    runbook = Runbook(service="payments", match_key=match_key(match), match=match, url="https://x", set_by="cli:a")
    incident = Incident(title="t", severity="SEV-2", services=["payments"], declared_by="cli:a", declared_origin="cli")
    assert matches(runbook.match, attributes(incident, {"alert_attributes": {"class": "db", "component": "Payments"}}))
    assert not matches(runbook.match, attributes(incident, {"alert_attributes": {"class": "db"}}))
    assert matches({"severity": "sev-2"}, attributes(incident, {}))
    for bad in ("class", "=db", "class=", "cl ass=db", "class=db,class=api"):
        with pytest.raises(InvalidInput):
            parse_match(bad)
