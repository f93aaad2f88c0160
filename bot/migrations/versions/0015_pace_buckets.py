"""Pace buckets: tokens per rate-limited key, shared by every replica (bot/pacing.py)

Revision ID: 0015_pace_buckets
Revises: 0014_alerts
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015_pace_buckets'
down_revision = '0014_alerts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pace_bucket',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('pace_bucket')
