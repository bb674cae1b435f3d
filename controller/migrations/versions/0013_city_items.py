"""city items: what a city or province sends or schedules to chosen wards (one parent row, one ordinary row
per ward naming it), and a ward's choice to approve the city's items of normal priority itself

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

#: Tables whose rows may be a ward's part of a city broadcast.
_CHILDREN = ('schedule_items', 'announcements')


def upgrade() -> None:
    op.create_table('city_broadcasts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('unit_id', sa.String(length=63), nullable=False),
    sa.Column('wards', sa.JSON(), nullable=False),
    sa.Column('all_wards', sa.Boolean(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_city_broadcasts_unit_id'), 'city_broadcasts', ['unit_id'], unique=False)
    # Plain ALTER TABLE … ADD COLUMN, never a batch copy: these tables (and units) are referenced by others
    # with foreign keys on, and dropping the old copy would cascade into their rows.
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in _CHILDREN:
        if sqlite:
            op.execute(sa.text(f'ALTER TABLE {table} ADD COLUMN parent_id VARCHAR(32) '
                               'REFERENCES city_broadcasts (id)'))
        else:
            op.add_column(table, sa.Column('parent_id', sa.String(length=32), nullable=True))
            op.create_foreign_key(f'fk_{table}_parent_id_city_broadcasts', table, 'city_broadcasts',
                                  ['parent_id'], ['id'])
        op.create_index(op.f(f'ix_{table}_parent_id'), table, ['parent_id'], unique=False)
    op.add_column('units', sa.Column('approve_city_items', sa.Boolean(), server_default=sa.false(),
                                     nullable=False))


def downgrade() -> None:
    # Batch on SQLite: the runner (controller/storage/migrate.py) keeps foreign keys off while it migrates, so
    # the table copies cascade into nothing.
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('approve_city_items')
    for table in reversed(_CHILDREN):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_parent_id'))
            if op.get_bind().dialect.name != 'sqlite':
                batch_op.drop_constraint(f'fk_{table}_parent_id_city_broadcasts', type_='foreignkey')
            batch_op.drop_column('parent_id')
    op.drop_index(op.f('ix_city_broadcasts_unit_id'), table_name='city_broadcasts')
    op.drop_table('city_broadcasts')
