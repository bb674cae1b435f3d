"""status history: every change of an agent's link state, for a ward's monthly availability and outages

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device_status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=63), nullable=False),
    sa.Column('ward_id', sa.String(length=63), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['devices.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ward_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('device_status_changes', schema=None) as batch_op:
        batch_op.create_index('ix_device_status_changes_agent_at', ['agent_id', 'at_ms'], unique=False)
        batch_op.create_index('ix_device_status_changes_ward_at', ['ward_id', 'at_ms'], unique=False)
    _seed_from_devices()


def _seed_from_devices() -> None:
    """Each agent's state now, as of its last change: a month's availability then starts from something known
    rather than from nothing."""
    conn = op.get_bind()
    devices = sa.table('devices', sa.column('id', sa.String()), sa.column('ward_id', sa.String()),
                       sa.column('status', sa.String()), sa.column('status_changed_at', sa.DateTime(timezone=True)))
    changes = sa.table('device_status_changes', sa.column('agent_id', sa.String()), sa.column('ward_id', sa.String()),
                       sa.column('status', sa.String()), sa.column('at_ms', sa.BigInteger()))
    rows = []
    for agent_id, ward_id, status, changed in conn.execute(
            sa.select(devices.c.id, devices.c.ward_id, devices.c.status, devices.c.status_changed_at)
            .where(devices.c.status_changed_at.is_not(None))):
        at = changed if changed.tzinfo else changed.replace(tzinfo=UTC)  # SQLite forgets the zone; it was UTC
        rows.append({'agent_id': agent_id, 'ward_id': ward_id, 'status': status,
                     'at_ms': int(at.timestamp() * 1000)})
    if rows:
        op.bulk_insert(changes, rows)


def downgrade() -> None:
    with op.batch_alter_table('device_status_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_device_status_changes_ward_at')
        batch_op.drop_index('ix_device_status_changes_agent_at')
    op.drop_table('device_status_changes')
