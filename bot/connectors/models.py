"""The connector table, whatever the vendor: a name, a type, its configuration and its sealed secrets,
and the once-per-interval sync claim."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from bot.clock import utcnow


class Connector(SQLModel, table=True):
    __tablename__ = "connector"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    type: str
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # no secrets in here
    api_key: str | None = Field(default=None, sa_column=Column(Text))  # REST key, "fernet2:..." or "env:<VAR>"
    routing_key: str | None = Field(default=None, sa_column=Column(Text))  # Events API v2 integration key, sealed alike
    webhook_secrets: str | None = Field(default=None, sa_column=Column(Text))  # sealed JSON list (rotation)
    webhook_subscription_id: str | None = None
    webhook_enabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    next_sync_at: datetime | None = None  # claimed atomically, so one replica syncs per interval
    last_sync_at: datetime | None = None
    last_sync_until: datetime | None = None
    last_sync_error: str | None = Field(default=None, sa_column=Column(Text))
