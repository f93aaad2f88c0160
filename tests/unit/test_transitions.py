"""The incident lifecycle's pure rules: which verb moves which status where, and how input is read."""

from __future__ import annotations

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.incidents import TRANSITIONS, _clean, _services, _severity, _status_text, parse_ref
from bot.domain.models import Status
from tests.unit.lifecycle import LIFECYCLE, SAME


def outcome(verb: str, status: Status) -> str:
    """What TRANSITIONS says, in the order the service applies it: same state first, then the refusal."""
    rule = TRANSITIONS[verb]
    if status == rule.target:
        return SAME
    if status in rule.allowed_from:
        return rule.target.value
    return rule.refusal


def test_the_table_covers_every_verb_and_status() -> None:
    assert set(TRANSITIONS) == {verb for verb, _ in LIFECYCLE}
    assert {status for _, status in LIFECYCLE} == {s.value for s in Status}
    assert len(LIFECYCLE) == len(TRANSITIONS) * len(Status)


@pytest.mark.parametrize(("verb", "status", "expected"), [(v, s, e) for (v, s), e in LIFECYCLE.items()])
def test_transition(verb: str, status: str, expected: str) -> None:
    assert outcome(verb, Status(status)) == expected


@pytest.mark.parametrize(
    ("ref", "number"),
    [("INC-12", 12), ("inc-12", 12), ("Inc-3", 3), ("12", 12), (12, 12), ("  INC-7 ", 7), ("INC-007", 7)],
)
def test_parse_ref_reads(ref: str | int, number: int) -> None:
    assert parse_ref(ref) == number


@pytest.mark.parametrize(
    "ref",
    [
        "INC-0",
        "0",
        0,
        -1,
        "-1",
        "INC--1",
        "INC-",
        "",
        "INC-1.5",
        "INC 12",
        "INC-12x",
        "#12",
        "abc",
        "INC-²",  # str.isdigit says yes, int() says no
        "１２",  # fullwidth digits
        "INC-٣",  # Arabic-Indic digit
    ],
)
def test_parse_ref_refuses(ref: str | int) -> None:
    with pytest.raises(InvalidInput, match=r"is not an incident ID \(expected INC-<number>\)"):
        parse_ref(ref)


@pytest.mark.parametrize(
    ("value", "required", "expected"),
    [("  DB slow \n", True, "DB slow"), (None, False, ""), ("   ", False, ""), (" " + "x" * 10 + " ", True, "x" * 10)],
)
def test_clean_strips(value: str | None, required: bool, expected: str) -> None:
    assert _clean(value, "title", 10, required=required) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "the title must not be empty"),
        (None, "the title must not be empty"),
        (" \t\n", "the title must not be empty"),
        ("x" * 11, "the title is 11 characters long; at most 10 are allowed"),
        (" " + "x" * 11 + " ", "the title is 11 characters long; at most 10 are allowed"),  # counted after stripping
    ],
)
def test_clean_refuses(value: str | None, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _clean(value, "title", 10, required=True)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SEV-1", "SEV-1"),
        ("sev-2", "SEV-2"),
        ("3", "SEV-3"),
        ("sev4", "SEV-4"),
        (" Sev1 ", "SEV-1"),
        ("Sev 2", "SEV-2"),
        ("SEV 1", "SEV-1"),
    ],
)
def test_severity_reads(value: str, expected: str) -> None:
    assert _severity(value) == expected


@pytest.mark.parametrize("value", ["SEV-5", "SEV-0", "0", "5", "", "critical", "SEV--1", "S1", "SEV-1a", "SEV-²"])
def test_severity_refuses(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _severity(value)
    assert str(refused.value) == f"'{value}' is not a severity (expected SEV-1, SEV-2, SEV-3 or SEV-4)"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["db"], ["db"]),
        (["db,api"], ["db", "api"]),
        (["db", "api"], ["db", "api"]),
        (["DB", "db", "api,Db"], ["db", "api"]),  # lower-cased, first mention kept, no repeats
        ([" db , ,api "], ["db", "api"]),
        (["a.b_c-d9"], ["a.b_c-d9"]),
        (["x" * 64], ["x" * 64]),
    ],
)
def test_services_read(values: list[str], expected: list[str]) -> None:
    assert _services(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "at least one service is required (--service NAME[,NAME...])"),
        ([""], "at least one service is required (--service NAME[,NAME...])"),
        ([" , ,"], "at least one service is required (--service NAME[,NAME...])"),
        (["db api"], "'db api' is not a service name (letters, digits, - _ . up to 64)"),
        (["db", "<!channel>"], "'<!channel>' is not a service name (letters, digits, - _ . up to 64)"),
        (["x" * 65], f"'{'x' * 65}' is not a service name (letters, digits, - _ . up to 64)"),
    ],
)
def test_services_refuse(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _services(values)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("verb", "note", "text"),
    [
        ("acknowledge", None, "Acknowledged"),
        ("unacknowledge", None, "Unacknowledged (back to open)"),
        ("resolve", None, "Resolved"),
        ("close", None, "Closed"),
        ("reopen", None, "Reopened"),
        ("resolve", "rolled back", "Resolved: rolled back"),
        ("reopen", "errors are back", "Reopened: errors are back"),
    ],
)
def test_status_text(verb: str, note: str | None, text: str) -> None:
    assert _status_text(verb, note) == text


def test_every_verb_has_a_status_text() -> None:
    assert all(_status_text(verb, None) for verb in TRANSITIONS)
