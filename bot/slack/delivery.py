"""Delivers Slack outbox jobs: the root message, thread replies, in-place updates and the war room.

Each step's result is recorded as soon as Slack answers, so a retried job resumes where it stopped
instead of posting the root message twice. A step whose call ended without an answer (timeout, dropped
connection, 5xx) may still have happened: before it is tried again, our message is looked for by the
marker it carries (bot.slack.marks), our war room by its name and creator, and adopted when found.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Collection
from datetime import timedelta
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.app import Im
from bot.clock import as_utc, utcnow
from bot.config import Settings
from bot.domain import outbox, people
from bot.domain.models import Incident, OutboxJob, Severity, TimelineEvent
from bot.domain.people import Person, PersonView
from bot.pacing import Pacer, job_scope
from bot.slack import delivery_batch as batch
from bot.slack import marks, render
from bot.slack.delivery_pacing import SlackPacing
from bot.slack.management import ManagementNotice
from bot.slack.models import SlackEmailLookup, SlackThread, SlackUser
from bot.slack.subscriber import slack_links
from bot.slack.uploads import KIND as FILE_UPLOAD
from bot.slack.uploads import FileUploads
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

PEOPLE_EVENTS = ("owner", "role")
EMAIL_MISS_TTL = timedelta(days=1)  # an email Slack did not know is asked again after this long
# Users a DM cannot reach: nobody to tell, nothing to retry.
_UNREACHABLE = {"user_not_found", "user_disabled", "user_not_visible", "invalid_user_combination"}


def war_room_name(ref: str, title: str, attempt: int = 0) -> str:
    """`inc-12-db-primary-down`: lowercase letters, digits and dashes, at most 80 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    suffix = f"-{attempt + 1}" if attempt else ""
    base = f"{ref.lower()}-{slug}".strip("-")
    return base[: 80 - len(suffix)].rstrip("-") + suffix


class SlackDelivery:
    def __init__(self, im: Im, client: WebClient) -> None:
        self.im = im
        self.store = im.store
        self.settings: Settings = im.settings
        self.client = client
        self._bot_user: str | None = None
        self.pacing = SlackPacing(im.store, Pacer(im.store, im.settings.rate_limits), im.settings.slack_channel)
        # every kind of Slack job, each with the dispatcher's default retry policy
        self.kinds = kind_table(
            JobKind("timeline_event", self._timeline_event),
            JobKind("ephemeral", self._ephemeral),
            JobKind("dm", self._dm),
            JobKind("management", ManagementNotice(self)),
            JobKind(FILE_UPLOAD, FileUploads(self, client).deliver),  # reports and postmortems asked for in Slack
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
        if event.kind in PEOPLE_EVENTS and event.data.get("person_id"):
            self._match_person(int(event.data["person_id"]))
        thread = self._ensure_root(incident, event, thread)
        if event.kind != "declared":
            self._reply(job, event, thread)
        self._ensure_war_room(incident, thread)
        self._refresh_root(incident, thread)

    def _reply(self, job: OutboxJob, event: TimelineEvent, thread: SlackThread) -> None:
        """The step's thread reply, with the steps of this incident queued behind it (delivery_batch)."""
        step = batch.reply_step(event.id)
        if outbox.step_done(self.store, step):
            return
        kept = batch.kept_plan(self.store, event)
        steps = kept or batch.waiting_steps(self.store, job, event)
        for later in steps[1:]:
            self._learn_user(later.actor)
            if later.kind in PEOPLE_EVENTS and later.data.get("person_id"):
                self._match_person(int(later.data["person_id"]))
        texts = [self._event_text(each) for each in steps]
        if kept is None:
            steps = steps[: batch.fit(texts)]
            batch.keep_plan(self.store, event, steps)
        text = "\n".join(texts[: len(steps)])
        self._post_once(
            step,
            covers=[batch.reply_step(each.id) for each in steps[1:]],
            channel=thread.channel,
            thread_ts=thread.ts,
            text=text,
            # escalations and SLA breaches are also shown in the channel: someone new is being paged
            reply_broadcast=bool(event.data.get("notify_channel")),
            **(render.reply_blocks(event, text) if len(steps) == 1 else {}),
        )

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

    def _dm(self, job: OutboxJob) -> None:
        """The new owner hears of it directly, once: a try that ended without an answer is not sent again
        (a DM is found by nobody's look-up, and a second one is worse than a missing one: the thread has it)."""
        with self.store.read() as session:
            event = session.get(TimelineEvent, job.payload["event_id"])
            incident = session.get(Incident, event.incident_id) if event else None
        if event is None or incident is None:
            raise GiveUp(f"timeline event {job.payload['event_id']} is gone")
        person_id = int(event.data["person_id"])
        if incident.owner_id != person_id:
            return  # the incident changed hands again before this was sent: the newer owner is told instead
        user_id = self._match_person(person_id)
        if user_id is None:
            return
        with self.store.read() as session:
            name = self.im.display_name(session, event.actor)
            thread_url = next((link.url for link in slack_links(session, incident)), None)
        text = render.owner_dm_text(
            incident.ref, incident.severity, incident.title, thread_url, render.actor_mention(event.actor, name)
        )
        self.dm_once(f"slack-dm:{event.id}", user_id, text)

    def dm_once(self, step: str, user_id: str, text: str) -> None:
        """A direct message sent once for `step`: a try that ended without an answer is not sent again
        (a DM is found by nobody's look-up, and a second one is worse than a missing one)."""
        if outbox.step_done(self.store, step):
            return
        if marks.unsure_since(self.store, step) is not None:
            log.info("DM for %s may have been sent by an earlier try: not sent again", step)
            outbox.record_step(self.store, step)
            return
        try:
            opened = self._call("conversations.open", users=user_id, passthrough=_UNREACHABLE)
        except _Passthrough as exc:
            log.info("no DM to %s for %s: %s", user_id, step, exc)
            return
        answer = self._call("chat.postMessage", channel=opened["channel"]["id"], text=text, unsure=step)
        outbox.record_step(self.store, step, answer.get("ts"))
        with self.store.transaction() as session:
            marks.settle(session, step)

    # -- people ------------------------------------------------------------------------------
    def _match_person(self, person_id: int) -> str | None:
        """The person's Slack user ID, matched by email (users.lookupByEmail) when only that is known;
        a Slack user's email learnt the other way (users.info). None: not in Slack."""
        with self.store.read() as session:
            person = session.get(Person, person_id)
        if person is None:
            return None
        if person.slack_user_id:
            user = self._learn_user(f"slack:{person.slack_user_id}")
            if user is not None and (user.email or user.real_name or user.name):
                self._learn_person(person_id, email=user.email, name=user.real_name or user.name)
            return person.slack_user_id
        if not person.email:
            return None
        user_id = self._lookup_email(person.email)
        if user_id is not None:
            with self.store.read() as session:
                user = session.get(SlackUser, user_id)
            self._learn_person(person_id, slack_user_id=user_id, name=(user.real_name or user.name) if user else None)
            with self.store.read() as session:
                person = session.get(Person, person_id)
            return person.slack_user_id if person else None
        return None

    def _learn_person(self, person_id: int, *, email: str | None = None, **found: str | None) -> None:
        try:
            with self.store.transaction() as session:
                if email and session.exec(select(Person).where(Person.email == email.lower(), Person.id != person_id)).first():
                    email = None  # someone else holds this email: two records of one person are not merged here
                people.learn(session, person_id, email=email, **found)
        except IntegrityError:
            pass  # learnt by a twin a moment ago

    def _lookup_email(self, email: str) -> str | None:
        """users.lookupByEmail, remembered (a miss for a day: someone may join)."""
        email = email.strip().lower()
        with self.store.read() as session:
            known = session.get(SlackEmailLookup, email)
        if known is not None and (known.user_id or utcnow() - as_utc(known.fetched_at) < EMAIL_MISS_TTL):
            return known.user_id
        try:
            user: dict[str, Any] | None = self._call("users.lookupByEmail", email=email, passthrough={"users_not_found"})["user"]
        except _Passthrough:
            user = None
        if user is not None:
            self._remember_user(user)
            if user.get("deleted"):
                user = None
        try:
            with self.store.transaction() as session:
                row = session.get(SlackEmailLookup, email) or SlackEmailLookup(email=email)
                row.user_id, row.fetched_at = (user["id"] if user else None), utcnow()
                session.add(row)
        except IntegrityError:
            pass
        return user["id"] if user else None

    # -- steps -------------------------------------------------------------------------------
    def _ensure_root(self, incident: Incident, event: TimelineEvent, thread: SlackThread | None) -> SlackThread:
        if thread is not None and thread.ts:
            return thread
        channel = thread.channel if thread else (self.settings.slack_channel or self._declared_channel(incident))
        if not channel:
            raise GiveUp("no incidents channel: set IM_SLACK_CHANNEL (or declare from a Slack channel)")
        text, blocks = self._root_content(incident)
        step = f"slack-root:{incident.id}"
        self.pacing.root_turn(incident.number, channel)
        answer = self._post(step, channel=channel, text=text, blocks=blocks)
        with self.store.transaction() as session:
            row = session.get(SlackThread, incident.number) or SlackThread(incident_id=incident.number, channel=answer["channel"])
            row.channel, row.ts = answer["channel"], answer["ts"]
            # an adopted root shows what it said when posted: leave the hash empty so it is refreshed
            row.rendered_hash = None if answer.get("adopted") else render.content_hash(text, blocks)
            session.add(row)
            marks.settle(session, step)
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
                text=render.war_room_link(thread.war_room, thread.war_room_name),
            )
            self._post_once(
                f"slack-war-room-hello:{incident.id}",
                channel=thread.war_room,
                text=render.war_room_hello(incident.ref, incident.severity, incident.title),
            )
            with self.store.transaction() as session:
                row = session.get(SlackThread, incident.id)
                assert row is not None
                row.war_room_announced = True
                session.add(row)

    def _create_channel(self, incident: Incident) -> dict[str, Any]:
        """conversations.create refuses a taken name, so a create that timed out but happened answers
        name_taken on the next try: that channel is looked up and adopted if it is ours."""
        step = f"slack-war-room:{incident.id}"
        for attempt in range(20):
            name = war_room_name(incident.ref, incident.title, attempt)
            try:
                channel: dict[str, Any] = self._call(
                    "conversations.create", name=name, is_private=False, passthrough={"name_taken"}, unsure=step
                )["channel"]
                return channel
            except _Passthrough:
                ours = self._find_our_channel(name, incident.id)
                if ours is not None:
                    log.info("war room #%s of %s adopted (created by an earlier try)", name, incident.ref)
                    return ours
                # taken by someone else: next suffix
        raise GiveUp(f"no free channel name for {incident.ref} after 20 tries")

    def _find_our_channel(self, name: str, incident_id: int | None) -> dict[str, Any] | None:
        """The public channel called `name`, if our bot user created it and no other incident has it."""
        cursor = None
        while True:
            page = self._call("conversations.list", exclude_archived=True, types="public_channel", limit=200, cursor=cursor)
            found = next((c for c in page.get("channels", []) if c.get("name") == name), None)
            if found is not None:
                if found.get("creator") != self._bot_user_id():
                    return None
                with self.store.read() as session:
                    other = session.exec(
                        select(SlackThread).where(SlackThread.war_room == found["id"], SlackThread.incident_id != incident_id)
                    ).first()
                return None if other is not None else found
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def _bot_user_id(self) -> str:
        if self._bot_user is None:
            self._bot_user = str(self._call("auth.test")["user_id"])
        return self._bot_user

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
            person_id = event.data.get("person_id")  # whom a clock's notice is addressed to, or who became owner
            person = session.get(Person, person_id) if person_id else None
        who = render.actor_mention(event.actor, name)
        if event.kind in PEOPLE_EVENTS:
            return render.people_event_text(event, who, render.person(PersonView.of(person)) if person else None)
        if event.kind == "note" and event.data.get("slack_permalink"):
            return render.added_message_text(event, who)
        return render.event_text(event, who, PersonView.of(person) if person else None)

    def email_of(self, actor: str) -> str | None:
        """A Slack user's email, looked up now if need be, for another system's worker (PagerDuty's From).
        Slack being slow or down is no reason to hold that work: no answer is no email. Paced outside
        the caller's job (a short wait for users.info's turn), so the caller is never deferred for it."""
        try:
            with job_scope(None):
                user = self._learn_user(actor)
        except (RetryLater, GiveUp):
            return None
        return user.email if user is not None else None

    def _learn_user(self, actor: str) -> SlackUser | None:
        """Slack users are looked up once (users.info) and cached: names for the timeline, emails for PagerDuty."""
        origin, _, user_id = actor.partition(":")
        if origin != "slack":
            return None
        with self.store.read() as session:
            known = session.get(SlackUser, user_id)
        if known is not None:
            return known
        try:
            user = self._call("users.info", user=user_id, passthrough={"user_not_found"})["user"]
        except (GiveUp, _Passthrough):
            return None  # an unknown user is not worth losing the timeline step for
        return self._remember_user(user)

    def _remember_user(self, user: dict[str, Any]) -> SlackUser | None:
        profile = user.get("profile", {})
        try:
            with self.store.transaction() as session:
                row = session.get(SlackUser, user["id"]) or SlackUser(user_id=user["id"])
                row.name, row.real_name, row.email = (
                    user.get("name"),
                    user.get("real_name") or profile.get("real_name"),
                    profile.get("email"),
                )
                row.deleted = bool(user.get("deleted"))
                row.fetched_at = utcnow()
                session.add(row)
            return row
        except IntegrityError:
            return None  # another worker or replica cached the same user a moment ago

    def _post_once(self, step: str, *, covers: Collection[str] = (), **args: Any) -> None:
        """chat.postMessage, recorded as soon as Slack answers: a retry of this job (a later step failed)
        does not post it again. `covers`: other steps this message delivers, recorded with it."""
        if outbox.step_done(self.store, step):
            return
        answer = self._post(step, **args)
        outbox.record_steps(self.store, dict.fromkeys([step, *covers], answer.get("ts")))
        if answer.get("adopted"):
            with self.store.transaction() as session:
                marks.settle(session, step)

    def _post(self, step: str, *, channel: str, **args: Any) -> dict[str, Any]:
        """chat.postMessage carrying the step's marker; after an unknown outcome, our message found
        by that marker instead (answered as {"channel", "ts", "adopted": True})."""
        since = marks.unsure_since(self.store, step)
        if since is not None:
            ts = self._find_our_message(step, channel, args.get("thread_ts"), since)
            if ts is not None:
                log.info("Slack message for %s adopted (posted by an earlier try)", step)
                return {"channel": channel, "ts": ts, "adopted": True}
            marks.looked(self.store, step, utcnow().timestamp())  # the next look searches around this try
        return self._call("chat.postMessage", channel=channel, metadata=marks.metadata(step), unsure=step, **args)

    def _find_our_message(self, step: str, channel: str, thread_ts: str | None, since: float) -> str | None:
        """Our message marked `step`, posted since `since`: in the thread for a reply, else in the channel."""
        # the post, if it happened, happened between the first try and its timeout: look only there (both
        # ends widened by the clock skew marks allows), so the look stays small however busy the channel is
        latest = since + 2 * marks.LOOKBACK_SECONDS + self.settings.slack_timeout_seconds
        window: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{since:.6f}",
            "latest": f"{latest:.6f}",
            "inclusive": True,
            "include_all_metadata": True,
            # small pages: each answers well inside the client's timeout however busy the channel (a
            # 200-message page with metadata timed out on every try in a 1,000-incident flood), and a
            # look usually stops at the first page that holds our message
            "limit": 50,
        }
        cursor = None
        joined = False
        while True:
            try:
                if thread_ts:
                    page = self._call("conversations.replies", ts=thread_ts, cursor=cursor, passthrough=_UNREADABLE, **window)
                else:
                    page = self._call("conversations.history", cursor=cursor, passthrough=_UNREADABLE, **window)
            except _Passthrough as exc:
                if str(exc) == "not_in_channel" and not joined:
                    # we post to public channels through chat:write.public without joining; to read, join
                    joined = self._join(channel)
                    if joined:
                        continue
                raise GiveUp(
                    f"cannot tell whether {step} reached Slack: reading {channel} failed ({exc}); "
                    "invite the bot to the channel, then requeue"
                ) from None
            found = next((m["ts"] for m in page.get("messages", []) if marks.is_ours(m, step)), None)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if found is not None or not cursor:
                return found

    def _join(self, channel: str) -> bool:
        """Join a public channel we post to without being a member, so we can read our own messages."""
        try:
            self._call("conversations.join", channel=channel, passthrough=_UNJOINABLE)
        except _Passthrough:
            return False
        return True

    def _call(
        self,
        method: str,
        *,
        passthrough: Collection[str] = frozenset(),
        unsure: str | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        """One Web API call, its failure sorted: retry later, give up, or hand back (`passthrough`).
        With `unsure` (a step key), the step is noted unsure before the request leaves, and settled by the
        caller once the answer is recorded: an answer that never came (timeout, dropped connection, or
        this process killed mid-call) leaves the note, and the next try looks before it posts again. A
        refusal below 500 (429, ok:false) is Slack's word that nothing happened: a note this call made is
        dropped again. A 5xx keeps it (Slack's internal_error may have done part of the work).
        A transient failure (429, 5xx, timeout, dropped connection) is retried on the rate-limited budget,
        never the ordinary one: Slack trouble, or a machine too busy to get the answer in time, must not
        dead-letter a job. That holds for posts too: the try after an unknown outcome looks before it
        posts. Refusals that retrying may not fix (an ok:false error we do not know) spend the ordinary."""
        self.pacing.before(method, args)  # before the unsure note: a deferred call has not left
        noted = self._unsure(unsure, utcnow().timestamp())
        try:
            return getattr(self.client, method.replace(".", "_"))(**args).data
        except SlackApiError as exc:
            error = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
            status = exc.response.status_code
            if noted and unsure is not None and status < 500:
                marks.forget(self.store, unsure)
            if error in passthrough:
                raise _Passthrough(error) from None
            if status == 429 or error == "ratelimited":
                retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 1)) or 1)
                self.pacing.rate_limited(method, args, retry_after)
                raise RetryLater(f"Slack {method} rate-limited", delay=retry_after, rate_limited=True) from None
            if status >= 500:
                raise RetryLater(f"Slack {method} answered HTTP {status}", rate_limited=True) from None
            if error in PERMANENT:
                raise GiveUp(f"Slack {method} failed: {error}") from None
            raise RetryLater(f"Slack {method} failed: {error or status}") from None
        except SlackRequestError as exc:
            raise RetryLater(f"Slack {method} unreachable: {type(exc).__name__}") from None
        except (OSError, HTTPException) as exc:  # timed out, or the connection went: done or not, we cannot tell
            raise RetryLater(f"Slack {method} unreachable or too slow: {type(exc).__name__}", rate_limited=True) from None

    def _unsure(self, step: str | None, tried_at: float) -> bool:
        """Note `step` unsure; True when this call made the note (no earlier try had left one)."""
        return step is not None and marks.note_unsure(self.store, step, tried_at)


class _Passthrough(Exception):
    """An expected Slack error the caller handles itself (name_taken, already_in_channel)."""


# Reading a channel we cannot read (a bot token reads only channels it is a member of).
_UNREADABLE = {"not_in_channel", "channel_not_found"}
# Joining a channel we cannot join (private, archived, gone): then only an invitation helps.
_UNJOINABLE = {"method_not_supported_for_channel_type", "is_archived", "channel_not_found", "missing_scope"}


def make_client(settings: Settings) -> WebClient:
    """No retry handlers: slack_sdk's default one sends a request again when the connection drops, which
    after a post that went through is a duplicate. Retries are the outbox's, after looking."""
    assert settings.slack_bot_token is not None
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base,
        timeout=settings.slack_timeout_seconds,  # type: ignore[arg-type]  # urllib takes float seconds; slack_sdk annotates int
        retry_handlers=[],
    )
