"""cameras: registry with encrypted credentials, motion and fault events, discoveries from agents

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:15:43.632656
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('camera_discoveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=63), nullable=False),
    sa.Column('endpoint', sa.String(length=256), nullable=False),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('xaddrs', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('types', sa.JSON(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_id', 'endpoint', name='uq_camera_discoveries_agent_endpoint')
    )
    op.create_table('cameras',
    sa.Column('id', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('agent_id', sa.String(length=63), nullable=True),
    sa.Column('zone', sa.String(length=63), nullable=True),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('password_enc', sa.Text(), nullable=False),
    sa.Column('onvif', sa.Boolean(), nullable=False),
    sa.Column('manufacturer', sa.String(length=128), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('firmware', sa.String(length=128), nullable=False),
    sa.Column('serial', sa.String(length=128), nullable=False),
    sa.Column('hardware_id', sa.String(length=128), nullable=False),
    sa.Column('profiles', sa.JSON(), nullable=False),
    sa.Column('profile_token', sa.String(length=64), nullable=True),
    sa.Column('stream_uri', sa.Text(), nullable=False),
    sa.Column('snapshot_uri', sa.Text(), nullable=True),
    sa.Column('ptz', sa.Boolean(), nullable=False),
    sa.Column('motion', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('fault', sa.String(length=300), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_ok_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('discovery_endpoint', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['devices.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('camera_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('camera_id', sa.String(length=63), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('agent_id', sa.String(length=63), nullable=True),
    sa.Column('zone', sa.String(length=63), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('snapshot', sa.String(length=255), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('camera_events', schema=None) as batch_op:
        batch_op.create_index('ix_camera_events_camera_ts', ['camera_id', 'ts_ms'], unique=False)
        batch_op.create_index('ix_camera_events_ts', ['ts_ms'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('camera_events', schema=None) as batch_op:
        batch_op.drop_index('ix_camera_events_ts')
        batch_op.drop_index('ix_camera_events_camera_ts')

    op.drop_table('camera_events')
    op.drop_table('cameras')
    op.drop_table('camera_discoveries')
