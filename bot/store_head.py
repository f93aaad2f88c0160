"""The schema revision the store expects, and the default database: plain constants with no imports,
so the terminal's fast `im status` (bot/fast_status.py) can check a database without SQLAlchemy."""

# The newest migration's revision id, so a start at the head needs one plain query and no Alembic
# (tests/unit/test_store_head.py keeps it equal to the head of bot/migrations/versions). A new migration bumps it here.
HEAD_REVISION = "0022_ingest_indexes"
DEFAULT_DATABASE_URL = "sqlite:///./im.db"
