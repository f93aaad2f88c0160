"""What a command returns. Front ends only render these (text, JSON, Block Kit)."""

from __future__ import annotations

from typing import Any

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


class FileOutput(BaseModel):
    """A document (report, postmortem): the terminal prints or writes it, Slack uploads it."""

    kind: str = "file"
    filename: str
    media_type: str
    content: bytes
    printable: bool  # text a terminal may print as it is
    summary: str  # the headline figures, for a chat message or the terminal's confirmation
    output: str | None = None  # where the terminal writes it (checked writable before anything was computed)


Result = FileOutput | Done | IncidentDetail | IncidentList | Timeline | Table | Lines | HelpText | OpenDeclareModal
