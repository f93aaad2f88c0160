"""SQLite under `im serve`: commits do not copy the WAL back (the Checkpointer thread does), so no
request waits on a checkpoint's fsync; without the thread SQLite checkpoints as it always does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bot.store import Checkpointer, Store

PAGE = 4096
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default wal_autocheckpoint


def _write_pages(store: Store, pages: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("create table if not exists filler (id integer primary key, blob blob)"))
    for _ in range(pages // 10):
        with store.transaction() as session:  # the store's own writing path, one commit each
            session.execute(text("insert into filler (blob) values (:b)"), [{"b": b"x" * (PAGE - 200)}] * 10)


def _wal_pages(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size // PAGE if wal.exists() else 0


def test_commits_leave_the_wal_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "im.db"
    store = Store(f"sqlite:///{path}")
    checkpointer = Checkpointer(store, interval=3600)  # its thread never wakes here: checkpoints are called
    checkpointer.start()
    try:
        _write_pages(store, 2 * AUTOCHECKPOINT_PAGES)
        grown = _wal_pages(path)
        assert grown > 1.5 * AUTOCHECKPOINT_PAGES, "no commit checkpointed past the automatic mark"
        checkpointer.checkpoint()
        _write_pages(store, 200)
        assert _wal_pages(path) == grown, "after a checkpoint the WAL is written from its start again"
    finally:
        checkpointer.stop()
        store.dispose()
    with Store(f"sqlite:///{path}").engine.connect() as conn:
        assert conn.execute(text("select count(*) from filler")).scalar_one() == 2 * AUTOCHECKPOINT_PAGES + 200


def test_without_the_checkpointer_commits_checkpoint_as_sqlite_does(tmp_path: Path) -> None:
    path = tmp_path / "im.db"
    store = Store(f"sqlite:///{path}")
    try:
        _write_pages(store, 2 * AUTOCHECKPOINT_PAGES)
        assert _wal_pages(path) < 1.2 * AUTOCHECKPOINT_PAGES
    finally:
        store.dispose()
