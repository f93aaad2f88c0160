"""Alert intake: sources, received events, alerts, per-service groups and pending bursts

Revision ID: 0014_alerts
Revises: 0013_incident_fields
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0014_alerts'
down_revision = '0013_incident_fields'
branch_labels = None
depends_on = None

AUTO = sqlmodel.sql.sqltypes.AutoString
WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table('alert_source',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', AUTO(), nullable=False),
    sa.Column('kind', AUTO(), nullable=False),
    sa.Column('service', AUTO(), nullable=True),
    sa.Column('group_window_seconds', sa.Integer(), nullable=False),
    sa.Column('auto_resolve', sa.Boolean(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('created_at', WHEN(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('alert_intake',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', AUTO(), nullable=False),
    sa.Column('dedup_key', AUTO(), nullable=False),
    sa.Column('action', AUTO(), nullable=False),
    sa.Column('service', AUTO(), nullable=False),
    sa.Column('received_at', WHEN(), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('processed_at', WHEN(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_intake_source', 'alert_intake', ['source'])
    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', AUTO(), nullable=False),
    sa.Column('dedup_key', AUTO(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('service', AUTO(), nullable=False),
    sa.Column('severity', AUTO(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('status', AUTO(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_at', WHEN(), nullable=False),
    sa.Column('last_at', WHEN(), nullable=False),
    sa.Column('resolved_at', WHEN(), nullable=True),
    sa.Column('runbook_url', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'dedup_key', name='uq_alert_source_key')
    )
    op.create_index('ix_alert_incident_id', 'alert', ['incident_id'])
    op.create_index('ix_alert_service', 'alert', ['service'])
    op.create_table('alert_group',
    sa.Column('service', AUTO(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('last_alert_at', WHEN(), nullable=False),
    sa.PrimaryKeyConstraint('service')
    )
    op.create_table('alert_burst',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('joined', sa.Integer(), nullable=False),
    sa.Column('repeated', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.Column('started_at', WHEN(), nullable=False),
    sa.PrimaryKeyConstraint('incident_id')
    )


def downgrade() -> None:
    op.drop_table('alert_burst')
    op.drop_table('alert_group')
    op.drop_index('ix_alert_service', table_name='alert')
    op.drop_index('ix_alert_incident_id', table_name='alert')
    op.drop_table('alert')
    op.drop_index('ix_alert_intake_source', table_name='alert_intake')
    op.drop_table('alert_intake')
    op.drop_table('alert_source')
