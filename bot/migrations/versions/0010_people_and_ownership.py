"""people, incident owners and roles, reminder snooze

Revision ID: 0010
Revises: 0004
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('slack_user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('pagerduty_user_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email'),
    sa.UniqueConstraint('slack_user_id'),
    )
    op.create_index(op.f('ix_person_pagerduty_user_id'), 'person', ['pagerduty_user_id'], unique=False)
    op.create_table('incident_role',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'role', name='uq_incident_role'),
    )
    op.create_index(op.f('ix_incident_role_incident_id'), 'incident_role', ['incident_id'], unique=False)
    op.add_column('incident', sa.Column('owner_id', sa.Integer(), nullable=True))
    op.add_column('incident', sa.Column('owner_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('incident', sa.Column('reminders_snoozed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_index(op.f('ix_incident_owner_id'), 'incident', ['owner_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_incident_owner_id'), table_name='incident')
    # plain DROP COLUMNs: a batch rebuild of `incident` fails on SQLite once rows elsewhere point at it
    op.drop_column('incident', 'reminders_snoozed_until')
    op.drop_column('incident', 'owner_changed_at')
    op.drop_column('incident', 'owner_id')
    op.drop_index(op.f('ix_incident_role_incident_id'), table_name='incident_role')
    op.drop_table('incident_role')
    op.drop_index(op.f('ix_person_pagerduty_user_id'), table_name='person')
    op.drop_table('person')
