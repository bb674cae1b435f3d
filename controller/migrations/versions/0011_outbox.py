"""the outbox: every message for the broker is written in the transaction that caused it, then published;
deliveries and group commands a previous version left queued become outbox rows

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from controller.storage.models import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

#: The priority ranks of the day this migration was written (normal 0 < priority 1 < emergency 2).
_RANK = {'normal': 0, 'priority': 1, 'emergency': 2}


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('command_id', sa.String(length=64), nullable=True),
    sa.Column('topics', sa.JSON(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('retain', sa.Boolean(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('exp_ms', sa.BigInteger(), nullable=True),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('claim', sa.String(length=64), nullable=True),
    sa.Column('claimed_until_ms', sa.BigInteger(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_queue', ['status', 'priority', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_command_id'), ['command_id'], unique=False)
    _queue_what_was_queued()


def _queue_what_was_queued() -> None:
    """The old sender re-queued, at each start, the commands still ``queued``: they go to the outbox now."""
    conn = op.get_bind()
    announcements = sa.table('announcements', sa.column('id', sa.String()), sa.column('priority', sa.String()))
    groups = sa.table('group_commands', sa.column('id', sa.String()), sa.column('announcement_id', sa.String()),
                      sa.column('topics', sa.JSON()), sa.column('payload', sa.Text()),
                      sa.column('exp_ms', sa.BigInteger()), sa.column('status', sa.String()))
    deliveries = sa.table('deliveries', sa.column('id', sa.Integer()), sa.column('announcement_id', sa.String()),
                          sa.column('agent_id', sa.String()), sa.column('command_id', sa.String()),
                          sa.column('group_id', sa.String()), sa.column('topic', sa.String()),
                          sa.column('payload', sa.Text()), sa.column('exp_ms', sa.BigInteger()),
                          sa.column('status', sa.String()))
    outbox = sa.table('outbox', sa.column('kind', sa.String()), sa.column('target', sa.Text()),
                      sa.column('command_id', sa.String()), sa.column('topics', sa.JSON()),
                      sa.column('payload', sa.Text()), sa.column('retain', sa.Boolean()),
                      sa.column('priority', sa.Integer()), sa.column('exp_ms', sa.BigInteger()),
                      sa.column('status', sa.String()), sa.column('attempts', sa.Integer()),
                      sa.column('created_at', UTCDateTime()))
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for command_id, topics, payload, exp_ms, priority in conn.execute(
            sa.select(groups.c.id, groups.c.topics, groups.c.payload, groups.c.exp_ms, announcements.c.priority)
            .join(announcements, announcements.c.id == groups.c.announcement_id)
            .where(groups.c.status == 'queued')).all():
        rows.append(_row(command_id, list(topics), payload, exp_ms, priority, now))
    for command_id, topic, payload, exp_ms, priority in conn.execute(
            sa.select(deliveries.c.command_id, deliveries.c.topic, deliveries.c.payload, deliveries.c.exp_ms,
                      announcements.c.priority)
            .join(announcements, announcements.c.id == deliveries.c.announcement_id)
            .where(deliveries.c.status == 'queued', deliveries.c.group_id.is_(None),
                   deliveries.c.topic.is_not(None), deliveries.c.payload.is_not(None))
            .order_by(deliveries.c.id)).all():
        rows.append(_row(command_id, [topic], payload, exp_ms, priority, now))
    if rows:
        conn.execute(outbox.insert(), rows)


def _row(command_id: str, topics: list[str], payload: str, exp_ms: int, priority: str,
         now: datetime) -> dict[str, Any]:
    try:
        envelope = json.loads(payload)
        kind, target = str(envelope['type']), envelope.get('to')
    except (ValueError, KeyError, TypeError):
        kind, target = 'speaker.play', None  # the only command the old sender queued
    return {'kind': kind, 'target': target, 'command_id': command_id, 'topics': topics, 'payload': payload,
            'retain': False, 'priority': _RANK.get(priority, 0), 'exp_ms': exp_ms, 'status': 'pending',
            'attempts': 0, 'created_at': now}


def downgrade() -> None:
    # What is still pending stays queued in deliveries and group_commands, where the old sender finds it.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_command_id'))
        batch_op.drop_index('ix_outbox_queue')
    op.drop_table('outbox')
