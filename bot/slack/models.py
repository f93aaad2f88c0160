"""What the Slack adapter remembers: where each incident lives in Slack, who users are, which email
matched which user (or none), and who is in the admin user groups."""

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
    deleted: bool = False  # left the workspace (deactivated): never made an owner
    fetched_at: datetime = Field(default_factory=utcnow)


class SlackEmailLookup(SQLModel, table=True):
    """users.lookupByEmail's answer for an email, kept: a user, or none (a person "not in Slack")."""

    __tablename__ = "slack_email_lookup"

    email: str = Field(primary_key=True)  # lowercased
    user_id: str | None = None
    fetched_at: datetime = Field(default_factory=utcnow)


class SlackGroupMember(SQLModel, table=True):
    """Members of the Slack user groups named in IM_ADMINS, as last read (usergroups.users.list)."""

    __tablename__ = "slack_group_member"

    usergroup: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    fetched_at: datetime = Field(default_factory=utcnow)
