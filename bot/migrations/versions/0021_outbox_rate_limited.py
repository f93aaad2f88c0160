"""outbox_job.rate_limited_attempts: the tries that ended in a transient refusal (429, a look-up Slack
could not answer yet), counted apart so they do not eat into a job's ordinary budget

Revision ID: 0021_outbox_rate_limited
Revises: 0020_alert_intake_job
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0021_outbox_rate_limited'
down_revision = '0020_alert_intake_job'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('outbox_job', sa.Column('rate_limited_attempts', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.drop_column('rate_limited_attempts')
