"""locations: speakers (devices) and cameras may carry a point on the map (WGS 84 degrees), for the console's
map of a ward's or the city's fleet; rows written before have none and are listed as "no location yet"

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_TABLES = ('devices', 'cameras')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('lat', sa.Float(), nullable=True))
            batch_op.add_column(sa.Column('lon', sa.Float(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('lon')
            batch_op.drop_column('lat')
