"""Slack's rate limits as the pacer (bot/pacing.py) sees them, and root messages in declaration order.

`chat.postMessage` allows about one message a second per channel (short bursts allowed); every other
method is limited per method and workspace by its tier (Tier 2: 20+/min, Tier 3: 50+/min, Tier 4:
100+/min), per Slack's method reference. Operators may override any of them (IM_RATE_LIMITS, names
`slack.post`, `slack.tier1`..`slack.tier4`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, exists, func, or_
from sqlmodel import col, select

from bot.domain.models import JobStatus, OutboxJob
from bot.pacing import DEFERRED_REASON, Deferred, Limit, Pacer
from bot.slack.models import SlackThread
from bot.store import Store

POST = Limit(1, 1)  # chat.postMessage, per channel
TIERS = {1: Limit(1, 60), 2: Limit(20, 60), 3: Limit(50, 60), 4: Limit(100, 60)}
METHOD_TIERS = {
    "auth.test": 4,  # "special": answered from a cache on Slack's side; Tier 4 is a safe stand-in
    "chat.postEphemeral": 4,
    "chat.update": 3,
    "conversations.create": 2,
    "conversations.history": 3,
    "conversations.invite": 3,
    "conversations.join": 3,
    "conversations.list": 2,
    "conversations.open": 3,
    "conversations.replies": 3,
    "users.info": 4,
    "users.lookupByEmail": 3,
}
DEFAULT_TIER = 2  # a method not listed here: the tier most methods have


class SlackPacing:
    def __init__(self, store: Store, pacer: Pacer) -> None:
        self.store = store
        self.pacer = pacer

    def bucket(self, method: str, args: dict[str, Any]) -> tuple[str, Limit | None]:
        if method == "chat.postMessage":
            return f"slack:post:{args.get('channel')}", self.pacer.limit("slack.post", POST)
        tier = METHOD_TIERS.get(method, DEFAULT_TIER)
        return f"slack:{method}", self.pacer.limit(f"slack.tier{tier}", TIERS[tier])

    def before(self, method: str, args: dict[str, Any]) -> None:
        """Before each Web API call: go, or defer the job to its turn."""
        self.pacer.admit(*self.bucket(method, args))

    def rate_limited(self, method: str, args: dict[str, Any], retry_after: float) -> None:
        """Slack said 429 anyway: every replica's next call of this kind waits what Slack asked."""
        self.pacer.hold_off(*self.bucket(method, args), retry_after)

    def root_turn(self, incident_id: int, channel: str) -> None:
        """Root messages appear in declaration order: while incidents declared earlier still have their
        root to post (by a job that is not failing), this one waits about as long as those posts take."""
        limit = self.pacer.limit("slack.post", POST)
        if limit is None:
            return
        earlier = _earlier_roots_waiting(self.store, incident_id)
        if earlier:
            raise Deferred(f"slack:roots:{channel}", earlier / limit.rate)


def _earlier_roots_waiting(store: Store, incident_id: int) -> int:
    has_root = exists().where(col(SlackThread.incident_id) == col(OutboxJob.incident_id), col(SlackThread.ts).is_not(None))
    query = select(func.count(distinct(col(OutboxJob.incident_id)))).where(
        col(OutboxJob.destination) == "slack",
        col(OutboxJob.kind) == "timeline_event",
        col(OutboxJob.incident_id) < incident_id,
        col(OutboxJob.status).in_([JobStatus.PENDING, JobStatus.RUNNING]),
        or_(col(OutboxJob.last_error).is_(None), col(OutboxJob.last_error).startswith(DEFERRED_REASON)),
        ~has_root,
    )
    with store.read() as session:
        return int(session.exec(query).one())
