"""What a PagerDuty webhook body may hold before it is stored: the fast check for escapes that could
carry a NUL or a lone surrogate, and the walk it guards."""

from __future__ import annotations

import json

import pytest

from integrations.pagerduty.api.webhook_models import InvalidWebhookPayload, parse_event
from tests.fakes.pagerduty_api import FakePagerDuty

_PAGERDUTY = FakePagerDuty()  # not started: only its envelope builder, the shape PagerDuty delivers


def body(title: str) -> bytes:
    data = {"id": "PINC1", "type": "incident", "title": title, "status": "triggered"}
    return json.dumps(_PAGERDUTY.build_event("incident.triggered", data=data)).encode()


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\uDBFF", "\\udc00", "\\uDFFF"])
def test_escapes_that_no_column_takes_are_refused(escape: str) -> None:
    raw = body("@@").replace(b"@@", escape.encode())
    with pytest.raises(InvalidWebhookPayload, match=r"NUL|surrogate"):
        parse_event(raw)


@pytest.mark.parametrize("title", ["disk full \U0001f525", "caf\u00e9", "\\u0000 typed as text", "plain"])
def test_text_any_column_takes_is_kept(title: str) -> None:
    # json.dumps escapes the emoji as a surrogate pair (the walk runs and passes) and the backslash of
    # "\\u0000 typed as text" (the check matches, the walk finds an ordinary string)
    assert parse_event(body(title)).data.title == title  # type: ignore[union-attr]
