"""connectors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connector',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('api_key', sa.Text(), nullable=False),
    sa.Column('webhook_secrets', sa.Text(), nullable=True),
    sa.Column('webhook_subscription_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('webhook_enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('next_sync_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_sync_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_sync_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_sync_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('connector_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('ratelimit_limit', sa.Integer(), nullable=True),
    sa.Column('ratelimit_remaining', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('connector_call', schema=None) as batch_op:
        batch_op.create_index('ix_connector_call_at', ['connector', 'at'], unique=False)

    op.create_table('connector_sync',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('connector_sync', schema=None) as batch_op:
        batch_op.create_index('ix_connector_sync_at', ['connector', 'at'], unique=False)

    op.create_table('pagerduty_note_sent',
    sa.Column('note_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('connector', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('note_id')
    )
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('occurred_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('processed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connector', 'event_id', name='uq_webhook_event')
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_delivery_connector'), ['connector'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_delivery_received_at'), ['received_at'], unique=False)

    op.create_table('pagerduty_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('service', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('pd_service_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('pd_incident_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('pd_incident_number', sa.Integer(), nullable=True),
    sa.Column('incident_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('html_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('assignees', sa.JSON(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connector', 'incident_id', 'service', name='uq_pd_link_local'),
    sa.UniqueConstraint('connector', 'pd_incident_id', name='uq_pd_link_remote')
    )
    with op.batch_alter_table('pagerduty_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pagerduty_link_connector'), ['connector'], unique=False)
        batch_op.create_index(batch_op.f('ix_pagerduty_link_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('pagerduty_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pagerduty_link_incident_id'))
        batch_op.drop_index(batch_op.f('ix_pagerduty_link_connector'))

    op.drop_table('pagerduty_link')
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_delivery_received_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_delivery_connector'))

    op.drop_table('webhook_delivery')
    op.drop_table('pagerduty_note_sent')
    with op.batch_alter_table('connector_sync', schema=None) as batch_op:
        batch_op.drop_index('ix_connector_sync_at')

    op.drop_table('connector_sync')
    with op.batch_alter_table('connector_call', schema=None) as batch_op:
        batch_op.drop_index('ix_connector_call_at')

    op.drop_table('connector_call')
    op.drop_table('connector')
