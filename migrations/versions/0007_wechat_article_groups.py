"""公众号 article groups: posts sent together as one multi-article message

Posts on one 公众号 channel at the same time go out as one send (头条 + 次条, up to 8
articles): they share `send_group`, and `group_position` orders them (1 = 头条).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_group', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('group_position', sa.Integer(), nullable=True))
        batch_op.create_index('ix_posts_send_group', ['send_group'], unique=False)


def downgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_send_group')
        batch_op.drop_column('group_position')
        batch_op.drop_column('send_group')
