"""outbox: indexes that let a claim stop at its first due job, however long the backlog

The claim walks pending jobs longest due first (ix_outbox_claim is now status, available_at, id) and
probes, per job, whether an earlier job of its ordering key is still waiting (ix_outbox_waiting,
partial: only rows not yet delivered, so it stays small as done jobs pile up; it replaces the full
ix_outbox_order). Before, the claim gathered and sorted every due job on each claim: with 10,000
pending, a quadratic drain.

Revision ID: 0019_outbox_claim_indexes
Revises: 0018_connector_routing_key
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0019_outbox_claim_indexes'
down_revision = '0018_connector_routing_key'
branch_labels = None
depends_on = None

WAITING = sa.text("status IN ('pending', 'running')")


def upgrade() -> None:
    op.create_index('ix_outbox_waiting', 'outbox_job', ['ordering_key', 'id'], postgresql_where=WAITING, sqlite_where=WAITING)
    op.drop_index('ix_outbox_order', table_name='outbox_job')
    op.drop_index('ix_outbox_claim', table_name='outbox_job')
    op.create_index('ix_outbox_claim', 'outbox_job', ['status', 'available_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_claim', table_name='outbox_job')
    op.create_index('ix_outbox_claim', 'outbox_job', ['status', 'available_at'])
    op.create_index('ix_outbox_order', 'outbox_job', ['ordering_key', 'id'])
    op.drop_index('ix_outbox_waiting', table_name='outbox_job')
