"""Coalescing: timeline steps of one incident that wait behind a Slack job go out with it, as one thread
reply (and one root update, made once by the job that posts them).

The job that posts is the lead; its reply carries the lead's step marker (`slack-reply:<lead event>`).
Which steps it covers is its plan, stored before the post leaves (`slack-batch:<lead event>`). A try
whose post may have happened (its step noted unsure, bot.slack.marks) keeps that plan, so the retry
looks for the same message and records the same steps; a try Slack refused plans again, taking in what
queued up meanwhile. Every covered step is recorded done in one transaction with the lead's, so their
own jobs, when they run, find their reply done and call Slack for nothing.

Steps coalesce only behind a job that was held up (a retry: Slack refused or did not answer, or its
rate limit made it wait; or a job that waited in the outbox over HELD_UP): in the ordinary flow each
step gets its reply at once. Only plain steps coalesce: the declaration (it posts the root), reminders (a button of their own) and
steps shown in the channel (`notify_channel`) go alone, and a batch stops before the first of them, so
replies stay in timeline order.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from bot.clock import as_utc, utcnow
from bot.domain import outbox
from bot.domain.models import OutboxJob, TimelineEvent
from bot.slack import marks
from bot.store import Store

MAX_STEPS = 20  # steps in one reply
MAX_TEXT = 12_000  # characters in one reply (Slack truncates a message's text at 40,000)
TIMELINE_EVENT = "timeline_event"
HELD_UP = timedelta(seconds=2)


def reply_step(event_id: int | None) -> str:
    return f"slack-reply:{event_id}"


def plan_step(event_id: int | None) -> str:
    return f"slack-batch:{event_id}"


def coalescable(event: TimelineEvent) -> bool:
    return event.kind not in ("declared", "reminder") and not event.data.get("notify_channel")


def kept_plan(store: Store, lead: TimelineEvent) -> list[TimelineEvent] | None:
    """The plan of an earlier try whose post may have happened, or None (plan afresh)."""
    if marks.unsure_since(store, reply_step(lead.id)) is None:
        return None
    stored = outbox.step_done(store, plan_step(lead.id))
    if stored is None or not stored.value:
        return [lead]  # unsure from before plans were kept: the lead alone, as then
    ids = [int(part) for part in stored.value.split(",")]
    with store.read() as session:
        found = {event_id: session.get(TimelineEvent, event_id) for event_id in ids}
    return [event for event in (found[i] for i in ids) if event is not None]


def waiting_steps(store: Store, job: OutboxJob, lead: TimelineEvent) -> list[TimelineEvent]:
    """The lead, then the steps queued right behind its job that may go in the same reply, in order."""
    if not coalescable(lead) or not held_up(job):
        return [lead]
    steps = [lead]
    with store.read() as session:
        for other in outbox.waiting_behind(session, job, limit=MAX_STEPS - 1):
            event = _event_of(session, other)
            if event is None or not coalescable(event):
                break  # a step that goes alone (or another kind of job): later ones wait for it
            steps.append(event)
    return [steps[0]] + [event for event in steps[1:] if outbox.step_done(store, reply_step(event.id)) is None]


def held_up(job: OutboxJob) -> bool:
    return job.attempts > 1 or utcnow() - as_utc(job.created_at) > HELD_UP


def keep_plan(store: Store, lead: TimelineEvent, steps: list[TimelineEvent]) -> None:
    """Stored before the post leaves: the retry of an unsure try covers exactly these steps. A lone
    step needs no plan, unless an earlier (refused) try left one that would now say too much."""
    if len(steps) > 1 or outbox.step_done(store, plan_step(lead.id)) is not None:
        outbox.set_step(store, plan_step(lead.id), ",".join(str(event.id) for event in steps))


def fit(texts: list[str]) -> int:
    """How many of the texts (at least one) fit in one reply."""
    total = 0
    for n, text in enumerate(texts):
        total += len(text) + 1
        if n and total > MAX_TEXT:
            return n
    return len(texts)


def _event_of(session: Session, job: OutboxJob) -> TimelineEvent | None:
    if job.kind != TIMELINE_EVENT or not isinstance(job.payload, dict):
        return None
    event_id = job.payload.get("event_id")
    return session.get(TimelineEvent, event_id) if isinstance(event_id, int) else None
