"""Delivers Slack outbox jobs: the root message, thread replies, in-place updates and the war room.

Each step's result is recorded as soon as Slack answers, so a retried job resumes where it stopped
instead of posting the root message twice.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.clock import utcnow
from bot.config import Settings
from bot.domain import outbox
from bot.domain.models import Incident, OutboxJob, Severity, TimelineEvent
from bot.slack import render
from bot.slack.models import SlackThread, SlackUser
from bot.workers import GiveUp, JobKind, RetryLater, kind_table

log = logging.getLogger(__name__)

# Slack errors that retrying cannot fix: the job is dead-lettered with the error as its reason.
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "no_permission",
    "invalid_blocks",
    "msg_too_long",
    "restricted_action",
}


def war_room_name(ref: str, title: str, attempt: int = 0) -> str:
    """`inc-12-db-primary-down`: lowercase letters, digits and dashes, at most 80 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    suffix = f"-{attempt + 1}" if attempt else ""
    base = f"{ref.lower()}-{slug}".strip("-")
    return base[: 80 - len(suffix)].rstrip("-") + suffix


class SlackDelivery:
    def __init__(self, im, client: WebClient) -> None:  # type: ignore[no-untyped-def]
        self.im = im
        self.store = im.store
        self.settings: Settings = im.settings
        self.client = client
        # every kind of Slack job, each with the dispatcher's default retry policy
        self.kinds = kind_table(
            JobKind("timeline_event", self._timeline_event),
            JobKind("ephemeral", self._ephemeral),
        )

    # -- job kinds ---------------------------------------------------------------------------
    def _timeline_event(self, job: OutboxJob) -> None:
        """One timeline step in the incident's thread: the root first if needed, the reply, the war
        room for severe ones, and the root refreshed."""
        with self.store.read() as session:
            event = session.get(TimelineEvent, job.payload["event_id"])
            if event is None:
                raise GiveUp(f"timeline event {job.payload['event_id']} is gone")
            incident = session.get(Incident, event.incident_id)
            thread = session.get(SlackThread, event.incident_id)
        assert incident is not None
        self._learn_user(event.actor)
        thread = self._ensure_root(incident, event, thread)
        if event.kind != "declared":
            # escalations and SLA breaches are also shown in the channel: someone new is being paged
            broadcast = bool(event.data.get("notify_channel"))
            self._post_once(
                f"slack-reply:{event.id}",
                channel=thread.channel,
                thread_ts=thread.ts,
                text=self._event_text(event),
                reply_broadcast=broadcast,
            )
        self._ensure_war_room(incident, thread)
        self._refresh_root(incident, thread)

    def _ephemeral(self, job: OutboxJob) -> None:
        """An answer only its asker sees: through the response_url when there is one."""
        payload = job.payload
        if payload.get("response_url"):
            try:
                answer = WebhookClient(payload["response_url"], timeout=10).send_dict(
                    {"response_type": "ephemeral", "replace_original": False, "text": payload["text"]}
                )
            except OSError as exc:
                raise RetryLater(f"Slack response_url unreachable: {type(exc).__name__}") from None
            if answer.status_code == 429 or answer.status_code >= 500:
                raise RetryLater(f"Slack response_url answered HTTP {answer.status_code}")
            if answer.status_code >= 400:
                raise GiveUp(f"Slack response_url refused: HTTP {answer.status_code} {answer.body[:100]}")
            return
        args = {k: payload[k] for k in ("channel", "user", "text", "thread_ts") if payload.get(k)}
        self._call("chat.postEphemeral", **args)

    # -- steps -------------------------------------------------------------------------------
    def _ensure_root(self, incident: Incident, event: TimelineEvent, thread: SlackThread | None) -> SlackThread:
        if thread is not None and thread.ts:
            return thread
        channel = thread.channel if thread else (self.settings.slack_channel or self._declared_channel(incident))
        if not channel:
            raise GiveUp("no incidents channel: set IM_SLACK_CHANNEL (or declare from a Slack channel)")
        text, blocks = self._root_content(incident)
        answer = self._call("chat.postMessage", channel=channel, text=text, blocks=blocks)
        with self.store.transaction() as session:
            row = session.get(SlackThread, incident.id) or SlackThread(incident_id=incident.id, channel=answer["channel"])  # type: ignore[arg-type]
            row.channel, row.ts, row.rendered_hash = answer["channel"], answer["ts"], render.content_hash(text, blocks)
            session.add(row)
        return row

    def _ensure_war_room(self, incident: Incident, thread: SlackThread) -> None:
        if Severity(incident.severity).rank > Severity(self.settings.war_room_min_sev).rank:
            return
        if thread.war_room is None:
            channel = self._create_channel(incident)
            with self.store.transaction() as session:
                row = session.get(SlackThread, incident.id)
                assert row is not None
                row.war_room, row.war_room_name = channel["id"], channel["name"]
                session.add(row)
            thread.war_room, thread.war_room_name = channel["id"], channel["name"]
        if not thread.war_room_announced:
            self._invite_declarer(incident, thread.war_room)
            self._post_once(
                f"slack-war-room-link:{incident.id}",
                channel=thread.channel,
                thread_ts=thread.ts,
                text=f":door: War room: <#{thread.war_room}> (#{thread.war_room_name})",
            )
            self._post_once(
                f"slack-war-room-hello:{incident.id}",
                channel=thread.war_room,
                text=f"War room for {incident.ref} [{incident.severity}] {incident.title}. Run `/im` here without --incident.",
            )
            with self.store.transaction() as session:
                row = session.get(SlackThread, incident.id)
                assert row is not None
                row.war_room_announced = True
                session.add(row)

    def _create_channel(self, incident: Incident) -> dict[str, Any]:
        for attempt in range(20):
            name = war_room_name(incident.ref, incident.title, attempt)
            try:
                return self._call("conversations.create", name=name, is_private=False, passthrough={"name_taken"})["channel"]
            except _Passthrough:
                continue  # taken (perhaps by our own earlier try): next suffix
        raise GiveUp(f"no free channel name for {incident.ref} after 20 tries")

    def _invite_declarer(self, incident: Incident, channel: str) -> None:
        origin, _, user = incident.declared_by.partition(":")
        if origin != "slack":
            return
        with contextlib.suppress(_Passthrough):
            self._call(
                "conversations.invite", channel=channel, users=user, passthrough={"already_in_channel", "cant_invite_self"}
            )

    def _refresh_root(self, incident: Incident, thread: SlackThread) -> None:
        with self.store.read() as session:
            fresh = session.get(Incident, incident.id)
            current = session.get(SlackThread, incident.id)
        assert fresh is not None and current is not None
        text, blocks = self._root_content(fresh)
        digest = render.content_hash(text, blocks)
        if digest == current.rendered_hash:
            return  # nothing changed: spare Slack's chat.update rate limit
        self._call("chat.update", channel=current.channel, ts=current.ts, text=text, blocks=blocks)
        with self.store.transaction() as session:
            row = session.get(SlackThread, incident.id)
            assert row is not None
            row.rendered_hash = digest
            session.add(row)

    # -- helpers -----------------------------------------------------------------------------
    def _root_content(self, incident: Incident) -> tuple[str, list[dict[str, Any]]]:
        view = self.im.describe(incident)
        with self.store.read() as session:
            name = self.im.display_name(session, incident.declared_by)
        declared_by = render.actor_mention(incident.declared_by, name)
        return render.root_text(view), render.root_blocks(view, declared_by)

    def _declared_channel(self, incident: Incident) -> str | None:
        with self.store.read() as session:
            first = session.exec(
                select(TimelineEvent).where(TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "declared")
            ).first()
        return (first.data or {}).get("slack_channel") if first else None

    def _event_text(self, event: TimelineEvent) -> str:
        with self.store.read() as session:
            name = self.im.display_name(session, event.actor)
        return render.event_text(event, render.actor_mention(event.actor, name))

    def _learn_user(self, actor: str) -> None:
        """Slack users are looked up once (users.info) and cached: names for the timeline, emails for PagerDuty."""
        origin, _, user_id = actor.partition(":")
        if origin != "slack":
            return
        with self.store.read() as session:
            if session.get(SlackUser, user_id) is not None:
                return
        try:
            user = self._call("users.info", user=user_id)["user"]
        except GiveUp:
            return  # an unknown user is not worth losing the timeline step for
        profile = user.get("profile", {})
        try:
            with self.store.transaction() as session:
                row = session.get(SlackUser, user_id) or SlackUser(user_id=user_id)
                row.name, row.real_name, row.email = (
                    user.get("name"),
                    user.get("real_name") or profile.get("real_name"),
                    profile.get("email"),
                )
                row.fetched_at = utcnow()
                session.add(row)
        except IntegrityError:
            pass  # another worker or replica cached the same user a moment ago

    def _post_once(self, step: str, **args: Any) -> None:
        """chat.postMessage, recorded as soon as Slack answers: a retry of this job (a later step failed)
        does not post it again."""
        if outbox.step_done(self.store, step):
            return
        answer = self._call("chat.postMessage", **args)
        outbox.record_step(self.store, step, answer.get("ts"))

    def _call(self, method: str, *, passthrough: set[str] = frozenset(), **args: Any) -> dict[str, Any]:  # type: ignore[assignment]
        try:
            return getattr(self.client, method.replace(".", "_"))(**args).data
        except SlackApiError as exc:
            error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
            status = exc.response.status_code
            if error in passthrough:
                raise _Passthrough(error) from None
            if status == 429 or error == "ratelimited":
                retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 1)) or 1)
                raise RetryLater(f"Slack {method} rate-limited", delay=retry_after, rate_limited=True) from None
            if status >= 500:
                raise RetryLater(f"Slack {method} answered HTTP {status}") from None
            if error in PERMANENT:
                raise GiveUp(f"Slack {method} failed: {error}") from None
            raise RetryLater(f"Slack {method} failed: {error or status}") from None
        except (SlackRequestError, OSError) as exc:
            raise RetryLater(f"Slack {method} unreachable: {type(exc).__name__}") from None


class _Passthrough(Exception):
    """An expected Slack error the caller handles itself (name_taken, already_in_channel)."""


def make_client(settings: Settings) -> WebClient:
    assert settings.slack_bot_token is not None
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=base, timeout=10)
