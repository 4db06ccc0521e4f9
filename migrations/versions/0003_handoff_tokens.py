"""handoff tracking and shared access tokens

Posts handed to a service or to staff are followed until done (posts.check_at, posts.progress);
service access tokens are shared by every process (access_tokens).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 05:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('access_tokens',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refresh_by', sa.String(length=100), nullable=True),
    sa.Column('refresh_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_access_tokens'))
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('progress', sa.JSON(), nullable=True))
        batch_op.create_index('ix_posts_check_at', ['check_at'], unique=False)


def downgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_check_at')
        batch_op.drop_column('progress')
        batch_op.drop_column('check_at')
    op.drop_table('access_tokens')
