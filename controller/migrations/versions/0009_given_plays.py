"""proof of play is checked against what each agent was given: given_plays, per-device suspicious and drop counters

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from controller.storage.models import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspicious_plays', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('suspicious_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('inbox_dropped', sa.BigInteger(), nullable=False, server_default='0'))
    op.create_table('given_plays',
    sa.Column('agent_id', sa.String(length=63), nullable=False),
    sa.Column('play_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('start_ms', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'play_id')
    )
    with op.batch_alter_table('given_plays', schema=None) as batch_op:
        batch_op.create_index('ix_given_plays_start', ['start_ms'], unique=False)
    # The windows agents already hold were sent before plays were recorded: their plays are given too,
    # or the proof of play for them would be counted as suspicious after the upgrade.
    conn = op.get_bind()
    schedules = sa.table('agent_schedules', sa.column('agent_id', sa.String()), sa.column('payload', sa.Text()))
    given = sa.table('given_plays', sa.column('agent_id', sa.String()), sa.column('play_id', sa.String()),
                     sa.column('source', sa.String()), sa.column('start_ms', sa.BigInteger()),
                     sa.column('created_at', UTCDateTime()))
    now = datetime.now(UTC)
    for agent_id, payload in conn.execute(sa.select(schedules.c.agent_id, schedules.c.payload)).all():
        try:
            plays = json.loads(payload)["data"]["plays"]
            rows = {str(p["play_id"]): int(p["start_at"]) for p in plays}
        except (ValueError, KeyError, TypeError):
            continue  # an unreadable stored window: the next one sent records its plays
        if rows:
            conn.execute(given.insert(), [{"agent_id": agent_id, "play_id": pid, "source": "window",
                                           "start_ms": start, "created_at": now} for pid, start in rows.items()])


def downgrade() -> None:
    with op.batch_alter_table('given_plays', schema=None) as batch_op:
        batch_op.drop_index('ix_given_plays_start')
    op.drop_table('given_plays')
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('inbox_dropped')
        batch_op.drop_column('suspicious_at')
        batch_op.drop_column('suspicious_plays')
