"""What a command returns. Front ends only render these (text, JSON, Block Kit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.domain.views import EventView, IncidentView


class Done(BaseModel):
    """A change was made (or was already so): a sentence, and the incident as it now is."""

    kind: str = "done"
    message: str
    incident: IncidentView | None = None
    changed: bool = True


class IncidentDetail(BaseModel):
    kind: str = "incident"
    incident: IncidentView


class IncidentList(BaseModel):
    kind: str = "incidents"
    title: str
    incidents: list[IncidentView]
    delivery_problems: list[str] = Field(default_factory=list)


class Timeline(BaseModel):
    kind: str = "timeline"
    incident: IncidentView
    events: list[EventView]


class Table(BaseModel):
    kind: str = "table"
    title: str | None = None
    columns: list[str]
    rows: list[list[str]]


class Lines(BaseModel):
    """Plain lines, e.g. a connector check list or a status page."""

    kind: str = "lines"
    lines: list[str]
    ok: bool = True
    data: dict[str, Any] | None = None


class HelpText(BaseModel):
    kind: str = "help"
    text: str


class OpenDeclareModal(BaseModel):
    """Slack only: `/im declare` without arguments asks with a form."""

    kind: str = "open_declare_modal"


class OnCallShift(BaseModel):
    name: str
    start: datetime | None = None  # None with end None: on call through the escalation policy itself (no schedule)
    end: datetime | None = None
    schedule: str | None = None


class OnCallLevel(BaseModel):
    level: int
    after_minutes: int | None = None  # an unacknowledged incident reaches this level after so long at the one before
    now: list[OnCallShift] = Field(default_factory=list)
    next: list[OnCallShift] = Field(default_factory=list)  # on call when the current shifts end


class ServiceOnCall(BaseModel):
    service: str
    policy: str
    levels: list[OnCallLevel] = Field(default_factory=list)


class OnCallResult(BaseModel):
    """Who is on call now and next, per escalation level. Times are UTC; each front end shows them in
    its reader's time zone (the terminal's local time, or UTC with `utc`; Slack's date tokens)."""

    kind: str = "oncall"
    as_of: datetime
    services: list[ServiceOnCall]
    utc: bool = False


class FileOutput(BaseModel):
    """A document (report, postmortem): the terminal prints or writes it, Slack uploads it."""

    kind: str = "file"
    filename: str
    media_type: str
    content: bytes
    printable: bool  # text a terminal may print as it is
    summary: str  # the headline figures, for a chat message or the terminal's confirmation
    output: str | None = None  # where the terminal writes it (checked writable before anything was computed)


class DocumentRequest(BaseModel):
    """Slack only: a document asked for and checked, to be computed and uploaded after the ack. `params`
    is what computing it again needs (JSON-safe), so a retried job computes the same document."""

    kind: str = "document_request"
    document: Literal["report", "postmortem"]
    params: dict[str, Any]
    incident: int | None = None  # a postmortem's incident number


class LogLine(BaseModel):
    id: int
    at: datetime
    level: str
    component: str
    logger: str
    replica: str
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


class LogLines(BaseModel):
    """What `im serve` logged (`im logs`); `--json` gives one object a line, as log tools expect."""

    kind: str = "logs"
    records: list[LogLine]


class JobView(BaseModel):
    id: int
    destination: str
    kind: str
    incident: str | None
    status: str
    attempts: int
    created_at: datetime
    available_at: datetime
    finished_at: datetime | None = None
    last_error: str | None = None
    payload: dict[str, Any] | None = None  # `outbox show` only


class OutboxJobs(BaseModel):
    kind: str = "outbox_jobs"
    title: str
    jobs: list[JobView]
    detail: bool = False  # one job, every field (`outbox show`)


Result = (
    DocumentRequest
    | LogLines
    | OutboxJobs
    | FileOutput
    | Done
    | IncidentDetail
    | IncidentList
    | Timeline
    | Table
    | Lines
    | HelpText
    | OpenDeclareModal
    | OnCallResult
)
