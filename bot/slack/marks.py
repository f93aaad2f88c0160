"""Our marker on what we post to Slack, and the steps whose outcome we do not know.

Invariant: every message im posts carries Slack message metadata naming its step
(`{"event_type": "im_step", "event_payload": {"key": "slack-root:12"}}`). When a post or a channel
creation may have happened without our knowing (no answer: a timeout, a dropped connection, a kill),
the step is noted as unsure, with
the time it was tried. The note is written before the request leaves and removed once the answer is
recorded, so a process killed mid-call leaves it too. Before a noted step is tried again it is looked
for, and adopted if found; only then is it posted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.domain.models import OutboxStep

if TYPE_CHECKING:
    from bot.store import Store

EVENT_TYPE = "im_step"
# Slack's clock and ours differ a little: look this far before our first try.
LOOKBACK_SECONDS = 120.0
_UNSURE = "unsure:"


def metadata(step: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"key": step}}


def is_ours(message: dict[str, Any], step: str) -> bool:
    meta = message.get("metadata") or {}
    return meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("key") == step


def note_unsure(store: Store, step: str, tried_at: float) -> bool:
    """Remember that `step` may happen (the first such try counts: it bounds the search, until a look
    finds nothing and moves it to the try after it: `looked`). True when this call made the note, False
    when an earlier try's note stands."""
    try:
        with store.transaction() as session:
            if session.get(OutboxStep, _UNSURE + step) is not None:
                return False
            session.add(OutboxStep(key=_UNSURE + step, value=f"{tried_at:.6f}"))
            return True
    except IntegrityError:
        return False  # noted by a twin a moment ago


def looked(store: Store, step: str, tried_at: float) -> None:
    """A look for `step` found nothing, and it is tried again now: no earlier try posted it (each was
    looked for), so the next look searches around this try. Kept at the first try instead, a retry
    made long after it (a backoff, a dead letter retried) would post outside the window looked in,
    and a third try would post it again."""
    with store.transaction() as session:
        row = session.get(OutboxStep, _UNSURE + step)
        if row is None:
            session.add(OutboxStep(key=_UNSURE + step, value=f"{tried_at:.6f}"))
        else:
            row.value = f"{tried_at:.6f}"
            session.add(row)


def forget(store: Store, step: str) -> None:
    """Slack refused the call that made the note: nothing happened, nothing to look for."""
    with store.transaction() as session:
        settle(session, step)


def unsure_since(store: Store, step: str) -> float | None:
    """When to start looking for `step` (Unix seconds), or None when no try of it ended unknown."""
    with store.read() as session:
        row = session.get(OutboxStep, _UNSURE + step)
    return float(row.value) - LOOKBACK_SECONDS if row is not None and row.value else None


def settle(session: Session, step: str) -> None:
    """The step's outcome is known now (done, or adopted): forget the doubt."""
    row = session.get(OutboxStep, _UNSURE + step)
    if row is not None:
        session.delete(row)
