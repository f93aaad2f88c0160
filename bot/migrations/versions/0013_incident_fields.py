"""Custom fields of an incident (environment, customer_impact, ...)

Revision ID: 0013_incident_fields
Revises: 0012_slack_people
Create Date: 2026-12-09
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013_incident_fields'
down_revision = '0012_slack_people'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fields', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    op.drop_column('incident', 'fields')  # not a batch rebuild: rows elsewhere point at `incident`
