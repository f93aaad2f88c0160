"""Alembic environment: the engine comes from the Store (bot.store.Store.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bot.tables import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from bot.config import get_settings
    from bot.store import normalise_url

    engine = create_engine(normalise_url(get_settings().database_url))

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()
