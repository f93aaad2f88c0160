"""Documents asked for in Slack (`/im report`, `/im postmortem`): computed by a worker after the ack and
uploaded with Slack's external upload flow.

files.getUploadURLExternal gives a file id and a URL, the bytes are POSTed to that URL, and
files.completeUploadExternal shares the file with its comment. Only the last call shows in Slack, so only
its outcome needs settling. The file id (with its comment) is recorded once the bytes are up, and the
completion is noted unsure before it leaves: a try after an unknown outcome asks files.info whether that
very file is already shared in the conversation, and completes the same file id only when it is not.
Slack may list a share in files.info a moment after it answered; a share made but not listed yet when
the retry looks is the one way to get a second copy (at most one extra, and only after a lost answer).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import httpx
from slack_sdk import WebClient
from sqlmodel import Session

from bot.domain import outbox
from bot.domain.models import OutboxJob, OutboxStep
from bot.domain.outbox import JobSpec, enqueue
from bot.slack import marks, mrkdwn, render
from bot.slack.responses import queue_ephemeral
from bot.slack.subscriber import DESTINATION
from bot.workers import GiveUp, RetryLater
from commands.grammar import UsageError
from commands.report_commands import build_document
from commands.results import DocumentRequest, FileOutput

if TYPE_CHECKING:
    from bot.slack.delivery import SlackDelivery

log = logging.getLogger(__name__)

KIND = "file_upload"
_ICONS = {"report": ":bar_chart:", "postmortem": ":memo:"}


def queue_upload(
    session: Session,
    request: DocumentRequest,
    *,
    user: str,
    channel: str | None,
    thread_ts: str | None = None,
    direct: bool = False,
    response_url: str | None = None,
) -> None:
    """The durable job, written in the request's own transaction (the ack waits for this, nothing else).
    `direct`: asked from a direct message, so the file goes to the asker's DM with the bot."""
    payload = {
        "request": request.model_dump(mode="json"),
        "user": user,
        "channel": None if direct else channel,
        "thread_ts": None if direct else thread_ts,
        "response_url": response_url,  # to tell the asker if the file cannot be delivered
    }
    # its own ordering key: a report that takes seconds to compute holds up nobody else's messages
    enqueue(session, JobSpec(DESTINATION, KIND, payload), None, ordering_key=f"{DESTINATION}:{KIND}:{uuid.uuid4().hex}")


def comment_text(request: DocumentRequest, document: FileOutput, user: str) -> str:
    """The message the file is shared with: who asked, and the headline figures (escaped: titles and
    service names are people's text)."""
    icon = _ICONS.get(request.document, ":page_facing_up:")
    what = "Postmortem draft" if request.document == "postmortem" else "Incident report"
    return f"{icon} {what} for {mrkdwn.user(user)}: {mrkdwn.escape(document.summary, 3000)}"


def is_dm(channel_id: str | None, channel_name: str | None = None) -> bool:
    return bool(channel_id and channel_id.startswith("D")) or channel_name == "directmessage"


class FileUploads:
    """The `file_upload` job kind of the Slack delivery (whose calls, with their error sorting, it uses)."""

    def __init__(self, delivery: SlackDelivery, client: WebClient) -> None:
        self.slack = delivery
        self.im = delivery.im
        self.store = delivery.store
        self.client = client  # its timeout also bounds the POST of the bytes

    def deliver(self, job: OutboxJob) -> None:
        try:
            self._deliver(job)
        except GiveUp as exc:  # dead-lettered: the asker is told rather than left waiting
            payload = job.payload
            with self.store.transaction() as session:
                queue_ephemeral(
                    session,
                    response_url=payload.get("response_url"),
                    channel=payload.get("channel"),
                    user=payload["user"],
                    text=render.warning_text(f"The file could not be delivered: {exc}"),
                    thread_ts=payload.get("thread_ts"),
                )
            raise

    def _deliver(self, job: OutboxJob) -> None:
        step = f"slack-file:{job.id}"
        if outbox.step_done(self.store, step):
            return
        payload = job.payload
        request = DocumentRequest.model_validate(payload["request"])
        channel = payload.get("channel") or self._dm_channel(payload["user"])
        thread_ts = payload.get("thread_ts")
        upload = self._uploaded(step)
        if upload is not None and marks.unsure_since(self.store, step) is not None and self._shared(upload["id"], channel):
            log.info("file %s for %s adopted (shared by an earlier try)", upload["id"], step)
            self._finish(step, upload["id"])
            return
        if upload is None:
            try:
                document = build_document(self.im, request)  # computed here, never on the request's thread
            except UsageError as exc:  # the incident or a service went away since the request was checked
                raise GiveUp(f"{request.document} cannot be made: {exc.message}") from None
            upload = self._upload(step, document, comment_text(request, document, payload["user"]))
        self._complete(step, upload, channel, thread_ts)

    # -- steps -------------------------------------------------------------------------------
    def _upload(self, step: str, document: FileOutput, comment: str) -> dict[str, str]:
        """Steps one and two; nothing shows in Slack until the file is completed, so a lost answer here
        leaves only an unshared upload that Slack discards, and the next try starts again."""
        ticket = self.slack._call("files.getUploadURLExternal", filename=document.filename, length=len(document.content))
        try:
            answer = httpx.post(
                ticket["upload_url"],
                content=document.content,
                headers={"Content-Type": "application/octet-stream"},
                timeout=float(self.client.timeout),
            )
        except httpx.HTTPError as exc:
            raise RetryLater(f"Slack upload URL unreachable: {type(exc).__name__}") from None
        if answer.status_code >= 400:
            raise RetryLater(f"Slack upload URL answered HTTP {answer.status_code}")
        upload = {"id": str(ticket["file_id"]), "title": document.filename, "comment": comment}
        outbox.record_step(self.store, f"{step}:file", json.dumps(upload))
        return upload

    def _complete(self, step: str, upload: dict[str, str], channel: str, thread_ts: str | None) -> None:
        from bot.slack.delivery import _Passthrough  # the delivery's own signal for errors its caller handles

        args: dict[str, Any] = {
            "files": [{"id": upload["id"], "title": upload["title"]}],  # slack_sdk sends it as JSON
            "channel_id": channel,
            "initial_comment": upload["comment"],
        }
        if thread_ts:
            args["thread_ts"] = thread_ts
        for joined in (False, True):
            try:
                self.slack._call(
                    "files.completeUploadExternal", passthrough={"not_in_channel", "file_not_found"}, unsure=step, **args
                )
                break
            except _Passthrough as exc:
                if str(exc) == "file_not_found":  # the upload lapsed before it was completed: start again
                    self._forget_upload(step)
                    raise RetryLater("Slack no longer knows the uploaded file: uploading it again") from None
                # sharing a file takes membership (chat:write.public covers messages only): join a public channel
                if joined or not self.slack._join(channel):
                    raise GiveUp(f"cannot share the file in {channel}: invite the bot to the channel, then requeue") from None
        self._finish(step, upload["id"])

    def _shared(self, file_id: str, channel: str) -> bool:
        """Whether our file already shows in `channel` (an earlier try's completion went through)."""
        from bot.slack.delivery import _Passthrough

        try:
            file = self.slack._call("files.info", file=file_id, passthrough={"file_not_found", "file_deleted"})["file"]
        except _Passthrough:
            return False
        return channel in {*file.get("channels", []), *file.get("groups", []), *file.get("ims", [])}

    def _dm_channel(self, user: str) -> str:
        return str(self.slack._call("conversations.open", users=user)["channel"]["id"])

    # -- records -----------------------------------------------------------------------------
    def _uploaded(self, step: str) -> dict[str, str] | None:
        row = outbox.step_done(self.store, f"{step}:file")
        return json.loads(row.value) if row is not None and row.value else None

    def _forget_upload(self, step: str) -> None:
        with self.store.transaction() as session:
            row = session.get(OutboxStep, f"{step}:file")
            if row is not None:
                session.delete(row)
            marks.settle(session, step)

    def _finish(self, step: str, file_id: str) -> None:
        outbox.record_step(self.store, step, file_id)
        with self.store.transaction() as session:
            marks.settle(session, step)
