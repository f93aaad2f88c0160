"""A connector may hold an Events API v2 routing key instead of (or beside) a REST API key

Revision ID: 0018_connector_routing_key
Revises: 0017_runbooks
Create Date: 2026-12-11
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0018_connector_routing_key'
down_revision = '0017_runbooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('connector', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing_key', sa.Text(), nullable=True))
        batch_op.alter_column('api_key', existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('connector', schema=None) as batch_op:
        batch_op.alter_column('api_key', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('routing_key')
