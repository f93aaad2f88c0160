"""pagerduty_link.status_at: when PagerDuty reported the link's status

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pagerduty_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pagerduty_link', schema=None) as batch_op:
        batch_op.drop_column('status_at')
