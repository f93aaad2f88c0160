"""Runbooks by service (and match), game day runs, and the drill mark on incidents

Revision ID: 0017_runbooks
Revises: 0016_log_entries
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0017_runbooks'
down_revision = '0016_log_entries'
branch_labels = None
depends_on = None

AUTO = sqlmodel.sql.sqltypes.AutoString
WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    # a plain ADD COLUMN: a batch rebuild of `incident` fails on SQLite once timeline rows point at it
    op.add_column('incident', sa.Column('drill', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('runbook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service', AUTO(), nullable=False),
    sa.Column('match_key', AUTO(), nullable=False),
    sa.Column('match', sa.JSON(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('set_by', AUTO(), nullable=False),
    sa.Column('set_at', WHEN(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('service', 'match_key', name='uq_runbook_service_match')
    )
    op.create_index('ix_runbook_service', 'runbook', ['service'])
    op.create_table('drill_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('service', AUTO(), nullable=False),
    sa.Column('connector', AUTO(), nullable=True),
    sa.Column('actor', AUTO(), nullable=False),
    sa.Column('actor_name', AUTO(), nullable=True),
    sa.Column('in_worker', sa.Boolean(), nullable=False),
    sa.Column('hop_timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('started_at', WHEN(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('step_started_at', WHEN(), nullable=False),
    sa.Column('hops', sa.JSON(), nullable=False),
    sa.Column('outcome', AUTO(), nullable=True),
    sa.Column('cleanup', sa.Text(), nullable=True),
    sa.Column('finished_at', WHEN(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_drill_run_incident_id', 'drill_run', ['incident_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_drill_run_incident_id', table_name='drill_run')
    op.drop_table('drill_run')
    op.drop_index('ix_runbook_service', table_name='runbook')
    op.drop_table('runbook')
    op.drop_column('incident', 'drill')
