"""The head revision the store checks at start (without Alembic) is the head of the migrations."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from bot.store import HEAD_REVISION, MIGRATIONS_DIR


def test_head_revision_is_the_newest_migration() -> None:
    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert heads == [HEAD_REVISION], f"set HEAD_REVISION in bot/store_head.py to {heads[0]!r} (the newest migration)"
