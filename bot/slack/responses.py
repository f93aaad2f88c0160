"""Ephemeral answers that cannot ride on the ack (button clicks): queued as outbox jobs, sent after."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from bot.domain.outbox import JobSpec, enqueue
from bot.slack.subscriber import DESTINATION


def queue_ephemeral(
    session: Session,
    *,
    response_url: str | None,
    channel: str | None,
    user: str,
    text: str,
    thread_ts: str | None = None,
    incident_id: int | None = None,
) -> None:
    payload = {"response_url": response_url, "channel": channel, "user": user, "text": text, "thread_ts": thread_ts}
    # each answer is its own ordering key: one stuck response_url must not hold up everyone else's
    enqueue(
        session,
        JobSpec(DESTINATION, "ephemeral", payload),
        incident_id,
        ordering_key=f"{DESTINATION}:ephemeral:{uuid.uuid4().hex}",
    )
