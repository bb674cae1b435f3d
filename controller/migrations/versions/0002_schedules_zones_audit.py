"""schedules, zones, audit trail; proof of play per attempt, for items and relays

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:09:28.293222
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('zones',
    sa.Column('id', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('quiet_hours', sa.JSON(), nullable=False),
    sa.Column('volumes', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('agent_schedules',
    sa.Column('agent_id', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('plays', sa.Integer(), nullable=False),
    sa.Column('window_end_ms', sa.BigInteger(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id')
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_at', ['at'], unique=False)

    op.create_table('schedule_items',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('start_local', sa.String(length=32), nullable=False),
    sa.Column('rrule', sa.Text(), nullable=True),
    sa.Column('until_local', sa.String(length=32), nullable=True),
    sa.Column('exdates', sa.JSON(), nullable=False),
    sa.Column('queue', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('saved_ms', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('schedule_items', schema=None) as batch_op:
        batch_op.create_index('ix_schedule_items_status', ['status'], unique=False)

    # plays gains attempt/item_id, sha256 becomes nullable and the unique key widens to the attempt.
    # The old unique constraint has no name, so the table is rebuilt rather than altered.
    op.create_table('plays_new',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=63), nullable=False),
    sa.Column('play_id', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('announcement_id', sa.String(length=32), nullable=True),
    sa.Column('item_id', sa.String(length=64), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('output', sa.String(length=100), nullable=False),
    sa.Column('scheduled_start_ms', sa.BigInteger(), nullable=False),
    sa.Column('actual_start_ms', sa.BigInteger(), nullable=True),
    sa.Column('ended_at_ms', sa.BigInteger(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_id', 'play_id', 'attempt')
    )
    op.execute(
        "INSERT INTO plays_new (id, agent_id, play_id, attempt, announcement_id, item_id, sha256, priority, output, "
        "scheduled_start_ms, actual_start_ms, ended_at_ms, outcome, reason, updated_at) "
        "SELECT id, agent_id, play_id, 0, announcement_id, NULL, sha256, priority, output, scheduled_start_ms, "
        "actual_start_ms, ended_at_ms, outcome, reason, updated_at FROM plays")
    op.drop_table('plays')
    op.rename_table('plays_new', 'plays')
    with op.batch_alter_table('plays', schema=None) as batch_op:
        batch_op.create_index('ix_plays_actual_start', ['actual_start_ms'], unique=False)
        batch_op.create_index('ix_plays_scheduled_start', ['scheduled_start_ms'], unique=False)
        batch_op.create_index(batch_op.f('ix_plays_announcement_id'), ['announcement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plays_item_id'), ['item_id'], unique=False)

def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: restore the database backup taken before upgrading")
