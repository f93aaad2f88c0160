"""Migrations upgrade a store that holds data: every step from each older revision to head, on SQLite
(foreign keys on, as the store runs it) and PostgreSQL, with incidents, timeline rows and links in it."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from bot.store import MIGRATIONS_DIR, Store


def _config(store: Store) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = store.engine
    return config


def _insert(conn: Connection, table: str, values: dict[str, object]) -> None:
    """An insert of the columns this revision's table has (the seed outlives later columns)."""
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    row = {k: v for k, v in values.items() if k in present}
    conn.execute(text(f"insert into {table} ({', '.join(row)}) values ({', '.join(':' + k for k in row)})"), row)


def _seed(store: Store) -> None:
    """What every store since the first revision holds: an incident with a timeline row pointing at it."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with store.engine.begin() as conn:
        _insert(
            conn,
            "incident",
            {
                "id": 1,
                "title": "t",
                "severity": "SEV-2",
                "status": "open",
                "services": '["db"]',
                "declared_by": "carol",
                "declared_origin": "cli",
                "declared_at": now,
                "status_changed_at": now,
                "updated_at": now,
            },
        )
        _insert(
            conn,
            "timeline_event",
            {"incident_id": 1, "kind": "declared", "actor": "carol", "origin": "cli", "at": now, "data": "{}"},
        )


def test_every_revision_upgrades_a_store_with_rows_to_head(database_url: str) -> None:
    store = Store(database_url)
    config = _config(store)
    script = ScriptDirectory.from_config(config)
    heads = script.get_heads()
    assert len(heads) == 1, f"one chain of migrations, not several heads: {heads}"
    base = [r for r in script.walk_revisions() if r.down_revision is None][0]
    try:
        command.upgrade(config, base.revision)
        _seed(store)
        command.upgrade(config, "head")  # each step in turn, with rows that point at `incident`
        with store.engine.connect() as conn:
            assert conn.execute(text("select count(*) from timeline_event")).scalar() == 1
            assert conn.execute(text("select title from incident")).scalar() == "t"
    finally:
        command.downgrade(config, "base")
        store.dispose()
