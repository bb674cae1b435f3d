"""group commands: one signed command for zones or everyone, tracked per agent by its deliveries;
standby alarm recordings that every agent keeps

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.add_column(sa.Column('standby', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('group_commands',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('announcement_id', sa.String(length=32), nullable=False),
    sa.Column('topics', sa.JSON(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('exp_ms', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['announcement_id'], ['announcements.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('group_commands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_commands_announcement_id'), ['announcement_id'], unique=False)

    # 0001 left the unique constraint on command_id unnamed: PostgreSQL named it itself, SQLite did not
    # (batch mode names it through the convention so it can be dropped while the table is rebuilt).
    found = [uc['name'] for uc in sa.inspect(op.get_bind()).get_unique_constraints('deliveries')
             if uc['column_names'] == ['command_id']]
    old_name = found[0] if found and found[0] else 'uq_deliveries_command_id'
    with op.batch_alter_table('deliveries', schema=None, recreate='always',
                              naming_convention={'uq': 'uq_%(table_name)s_%(column_0_name)s'}) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.String(length=64), nullable=True))
        batch_op.alter_column('topic', existing_type=sa.String(length=255), nullable=True)
        batch_op.alter_column('payload', existing_type=sa.Text(), nullable=True)
        batch_op.drop_constraint(old_name, type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_command_agent', ['command_id', 'agent_id'])
        batch_op.create_index(batch_op.f('ix_deliveries_group_id'), ['group_id'], unique=False)
        batch_op.create_foreign_key('fk_deliveries_group_id', 'group_commands', ['group_id'], ['id'],
                                    ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint('fk_deliveries_group_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_deliveries_group_id'))
        batch_op.drop_constraint('uq_deliveries_command_agent', type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_command_id', ['command_id'])
        batch_op.alter_column('payload', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('topic', existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column('group_id')
    with op.batch_alter_table('group_commands', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_commands_announcement_id'))
    op.drop_table('group_commands')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_column('standby')
