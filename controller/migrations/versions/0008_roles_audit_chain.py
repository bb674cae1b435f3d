"""accounts hold several roles and optional zones; audit rows are chained by SHA-256 digests

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from controller.accounts.audit_chain import canonical, chain_hash
from controller.storage.models import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('roles', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('zones', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer()), sa.column('role', sa.String()),
                     sa.column('roles', sa.JSON()))
    for user_id, role in conn.execute(sa.select(users.c.id, users.c.role)).all():
        conn.execute(users.update().where(users.c.id == user_id).values(roles=[role]))
    # Existing rows are chained as they stand: the chain vouches for them from this migration on.
    events = sa.table('audit_events', sa.column('id', sa.Integer()), sa.column('at', UTCDateTime()),
                      sa.column('user_id', sa.Integer()), sa.column('username', sa.String()),
                      sa.column('action', sa.String()), sa.column('subject', sa.String()),
                      sa.column('detail', sa.JSON()), sa.column('prev_hash', sa.String()),
                      sa.column('hash', sa.String()))
    prev = ""
    for row in conn.execute(sa.select(events).order_by(events.c.id)).all():
        detail = row.detail if not isinstance(row.detail, str) else json.loads(row.detail)
        digest = chain_hash(prev, canonical(row.id, row.at, row.user_id, row.username, row.action, row.subject,
                                            detail))
        conn.execute(events.update().where(events.c.id == row.id).values(prev_hash=prev, hash=digest))
        prev = digest


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('zones')
        batch_op.drop_column('roles')
