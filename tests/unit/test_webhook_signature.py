"""PagerDuty webhook signatures: any v1= value under any of our secrets, compared in constant time."""

from __future__ import annotations

import hmac

import pytest

from integrations.pagerduty.api import webhook_signature
from integrations.pagerduty.api.webhook_signature import sign, verify

BODY = b'{"event":{"id":"01ABC","event_type":"incident.triggered"}}'
GOOD = sign(BODY, "new-secret").removeprefix("v1=")
OTHER = sign(BODY, "someone-else").removeprefix("v1=")


def test_sign_is_v1_hex_hmac_sha256() -> None:
    # printf hello | openssl dgst -sha256 -hmac secret
    assert sign(b"hello", "secret") == "v1=88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b"


@pytest.mark.parametrize(
    "header",
    [
        f"v1={GOOD}",
        f"v1={OTHER},v1={GOOD}",  # during rotation PagerDuty sends several
        f"v1={GOOD}, v1={OTHER}",
        f" v1 = {GOOD} ",
        f"V1={GOOD.upper()}",
        f"v0=abc,v1={GOOD}",  # other schemes are ignored, not fatal
        f"v1=,v1={GOOD}",
        f"garbage,v1={GOOD}",
    ],
)
def test_genuine(header: str) -> None:
    assert verify(BODY, header, ["new-secret"])


@pytest.mark.parametrize(
    ("body", "header", "secrets"),
    [
        (BODY, None, ["new-secret"]),
        (BODY, "", ["new-secret"]),
        (BODY, "garbage", ["new-secret"]),
        (BODY, "v1=", ["new-secret"]),
        (BODY, f"v1={OTHER}", ["new-secret"]),  # signed with someone else's secret
        (BODY, f"v2={GOOD}", ["new-secret"]),  # the right digest under an unknown scheme
        (BODY, GOOD, ["new-secret"]),  # no scheme
        (BODY + b" ", f"v1={GOOD}", ["new-secret"]),  # the body changed by one byte
        (BODY, f"v1={GOOD[:-1]}", ["new-secret"]),
        (BODY, f"v1={GOOD}", []),  # no secret configured: nothing is genuine
        (BODY, f"v1={GOOD}", [""]),
        (BODY, f"v1=\u00e9{GOOD[1:]}", ["new-secret"]),  # not ASCII: refused, not a TypeError
    ],
)
def test_refused(body: bytes, header: str | None, secrets: list[str]) -> None:
    assert not verify(body, header, secrets)


@pytest.mark.parametrize("secrets", [["old-secret", "new-secret"], ["new-secret", "old-secret"], ["", "new-secret"]])
def test_any_of_our_secrets(secrets: list[str]) -> None:
    assert verify(BODY, f"v1={GOOD}", secrets)


def test_every_pair_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early return on the first match: how long verification takes says nothing about which matched."""
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook_signature.hmac, "compare_digest", counting)
    assert verify(BODY, f"v1={GOOD},v1={OTHER},v1=00", ["new-secret", "old-secret"])
    assert len(compared) == 3 * 2
