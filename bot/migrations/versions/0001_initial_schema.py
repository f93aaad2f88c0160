"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_key',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('declared_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('declared_origin', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('declared_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('mitigated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reopened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('status_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_declared_at'), ['declared_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_status'), ['status'], unique=False)

    op.create_table('outbox_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('destination', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('ordering_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('available_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('claim_token', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_claim', ['status', 'available_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_job_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_outbox_order', ['ordering_key', 'id'], unique=False)

    op.create_table('slack_user',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('real_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fetched_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('slack_thread',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('rendered_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('war_room', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('war_room_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('war_room_announced', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('incident_id')
    )
    with op.batch_alter_table('slack_thread', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_thread_war_room'), ['war_room'], unique=False)

    op.create_table('timeline_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('timeline_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_timeline_event_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('timeline_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_timeline_event_incident_id'))

    op.drop_table('timeline_event')
    with op.batch_alter_table('slack_thread', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_thread_war_room'))

    op.drop_table('slack_thread')
    op.drop_table('slack_user')
    with op.batch_alter_table('outbox_job', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_order')
        batch_op.drop_index(batch_op.f('ix_outbox_job_incident_id'))
        batch_op.drop_index('ix_outbox_claim')

    op.drop_table('outbox_job')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_status'))
        batch_op.drop_index(batch_op.f('ix_incident_severity'))
        batch_op.drop_index(batch_op.f('ix_incident_declared_at'))

    op.drop_table('incident')
    op.drop_table('inbound_key')
