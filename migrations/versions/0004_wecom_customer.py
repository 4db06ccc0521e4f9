"""staff progress totals on posts

Posts handed to staff (manual and wecom_customer channels) keep how many of the staff sent
them and how many customers or groups they reached, so the post list and analytics read plain
columns instead of the progress JSON.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_confirmed', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('staff_total', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reached', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('reached')
        batch_op.drop_column('staff_total')
        batch_op.drop_column('staff_confirmed')
