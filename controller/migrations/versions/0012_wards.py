"""wards as tenants: the unit tree (a city over its wards), roles granted on units, and a ward on every
row a ward owns; a database written before wards existed becomes the first ward of a city, nothing lost

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

#: The ids the models name ROOT_UNIT and FIRST_WARD, spelled here as they were on the day this was written.
_ROOT, _WARD = 'city', 'ward'
#: Tables whose rows a ward owns, and the name of the index on their ward column.
_OWNED = ('devices', 'zones', 'schedule_items', 'announcements', 'live_sessions', 'cameras', 'camera_events',
          'camera_discoveries', 'sign_contents', 'sign_items')


def upgrade() -> None:
    op.create_table('units',
    sa.Column('id', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.String(length=63), nullable=True),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_parent_id'), ['parent_id'], unique=False)
    units = sa.table('units', sa.column('id', sa.String()), sa.column('kind', sa.String()),
                     sa.column('name', sa.String()), sa.column('parent_id', sa.String()),
                     sa.column('code', sa.String()), sa.column('created_at', sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    op.bulk_insert(units, [
        {'id': _ROOT, 'kind': 'city', 'name': 'Thành phố', 'parent_id': None, 'code': '', 'created_at': now},
        {'id': _WARD, 'kind': 'ward', 'name': 'Phường', 'parent_id': _ROOT, 'code': '', 'created_at': now},
    ])

    op.create_table('role_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('unit_id', sa.String(length=63), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'role', 'unit_id', name='uq_role_grants')
    )
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_grants_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_grants_user_id'), ['user_id'], unique=False)
    _grant_existing_roles()

    op.create_table('media_wards',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('ward_id', sa.String(length=63), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['media.sha256'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ward_id'], ['units.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sha256', 'ward_id')
    )
    with op.batch_alter_table('media_wards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_wards_ward_id'), ['ward_id'], unique=False)
    op.execute(sa.text("INSERT INTO media_wards (sha256, ward_id, created_at) SELECT sha256, :ward, created_at "
                       "FROM media").bindparams(ward=_WARD))

    for table in _OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('ward_id', sa.String(length=63), nullable=False, server_default=_WARD))
            batch_op.create_index(batch_op.f(f'ix_{table}_ward_id'), ['ward_id'], unique=False)
            batch_op.create_foreign_key(f'fk_{table}_ward_id_units', 'units', ['ward_id'], ['id'])
    with op.batch_alter_table('plays', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ward_id', sa.String(length=63), nullable=False, server_default=_WARD))
        batch_op.create_index('ix_plays_ward_scheduled', ['ward_id', 'scheduled_start_ms'], unique=False)
        batch_op.create_foreign_key('fk_plays_ward_id_units', 'units', ['ward_id'], ['id'])
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_id', sa.String(length=63), nullable=False, server_default=_WARD))
        batch_op.create_index(batch_op.f('ix_audit_events_unit_id'), ['unit_id'], unique=False)
        batch_op.create_foreign_key('fk_audit_events_unit_id_units', 'units', ['unit_id'], ['id'])


def _grant_existing_roles() -> None:
    """Admins keep the whole deployment (granted on the city); every other role is held on the one ward
    there was, which is everything those users could reach before."""
    conn = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer()), sa.column('role', sa.String()),
                     sa.column('roles', sa.JSON()))
    grants = sa.table('role_grants', sa.column('user_id', sa.Integer()), sa.column('role', sa.String()),
                      sa.column('unit_id', sa.String()))
    rows: list[dict[str, Any]] = []
    for user_id, role, roles in conn.execute(sa.select(users.c.id, users.c.role, users.c.roles)).all():
        for held in dict.fromkeys([*(roles or []), role]):
            rows.append({'user_id': user_id, 'role': held, 'unit_id': _ROOT if held == 'admin' else _WARD})
    if rows:
        op.bulk_insert(grants, rows)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('fk_audit_events_unit_id_units', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_audit_events_unit_id'))
        batch_op.drop_column('unit_id')
    with op.batch_alter_table('plays', schema=None) as batch_op:
        batch_op.drop_constraint('fk_plays_ward_id_units', type_='foreignkey')
        batch_op.drop_index('ix_plays_ward_scheduled')
        batch_op.drop_column('ward_id')
    for table in reversed(_OWNED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_ward_id_units', type_='foreignkey')
            batch_op.drop_index(batch_op.f(f'ix_{table}_ward_id'))
            batch_op.drop_column('ward_id')
    op.drop_table('media_wards')
    op.drop_table('role_grants')
    op.drop_table('units')
