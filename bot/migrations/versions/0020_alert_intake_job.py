"""alert intake in one insert: the endpoint stores an event in its outbox job only, and the worker
writes the intake row from it, once per job (alert_intake.job_id, unique)

Revision ID: 0020_alert_intake_job
Revises: 0019_outbox_claim_indexes
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0020_alert_intake_job'
down_revision = '0019_outbox_claim_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alert_intake', sa.Column('job_id', sa.Integer(), nullable=True))
    op.create_index('uq_alert_intake_job', 'alert_intake', ['job_id'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_alert_intake_job', table_name='alert_intake')
    with op.batch_alter_table('alert_intake', schema=None) as batch_op:
        batch_op.drop_column('job_id')
