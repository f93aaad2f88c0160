"""log entries: what `im serve` logged, for `im logs` (bounded by IM_LOG_MAX_RECORDS and IM_LOG_RETENTION)

Revision ID: 0016_log_entries
Revises: 0015_pace_buckets
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0016_log_entries'
down_revision = '0015_pace_buckets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('log_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('component', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('logger', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('replica', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_log_entry_at'), 'log_entry', ['at'], unique=False)
    op.create_index(op.f('ix_log_entry_incident_id'), 'log_entry', ['incident_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_log_entry_incident_id'), table_name='log_entry')
    op.drop_index(op.f('ix_log_entry_at'), table_name='log_entry')
    op.drop_table('log_entry')
