"""Fewer index writes per stored webhook delivery and per job that belongs to no incident:
webhook_delivery's two single-column indexes become one on (connector, received_at), which serves both
"this connector's deliveries" and the metrics' "since a day ago" (the unique (connector, event_id) still
finds one delivery); outbox_job's incident_id index leaves out the rows with no incident (inbound
webhook and alert jobs), which no query looks up by incident

Revision ID: 0022_ingest_indexes
Revises: 0021_outbox_rate_limited
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0022_ingest_indexes'
down_revision = '0021_outbox_rate_limited'
branch_labels = None
depends_on = None

_HAS_INCIDENT = sa.text('incident_id IS NOT NULL')


def upgrade() -> None:
    op.drop_index('ix_webhook_delivery_connector', table_name='webhook_delivery')
    op.drop_index('ix_webhook_delivery_received_at', table_name='webhook_delivery')
    op.create_index('ix_webhook_delivery_received', 'webhook_delivery', ['connector', 'received_at'])
    op.drop_index('ix_outbox_job_incident_id', table_name='outbox_job')
    op.create_index(
        'ix_outbox_job_incident_id', 'outbox_job', ['incident_id'],
        sqlite_where=_HAS_INCIDENT, postgresql_where=_HAS_INCIDENT,
    )


def downgrade() -> None:
    op.drop_index('ix_outbox_job_incident_id', table_name='outbox_job')
    op.create_index('ix_outbox_job_incident_id', 'outbox_job', ['incident_id'])
    op.drop_index('ix_webhook_delivery_received', table_name='webhook_delivery')
    op.create_index('ix_webhook_delivery_received_at', 'webhook_delivery', ['received_at'])
    op.create_index('ix_webhook_delivery_connector', 'webhook_delivery', ['connector'])
