"""What the Slack adapter remembers: where each incident lives in Slack, and who users are."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bot.clock import utcnow


class SlackThread(SQLModel, table=True):
    __tablename__ = "slack_thread"

    incident_id: int = Field(primary_key=True, foreign_key="incident.id")
    channel: str
    ts: str | None = None  # the root message, once posted
    rendered_hash: str | None = None  # of the last root message content Slack has
    war_room: str | None = Field(default=None, index=True)
    war_room_name: str | None = None
    war_room_announced: bool = False


class SlackUser(SQLModel, table=True):
    __tablename__ = "slack_user"

    user_id: str = Field(primary_key=True)
    name: str | None = None
    real_name: str | None = None
    email: str | None = None
    fetched_at: datetime = Field(default_factory=utcnow)
