"""failed sign-in attempts, for login rate limiting

Every web process of an installation sees the same counters because they live in the
database; keys are keyed hashes of the e-mail address or client address, never raw values.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures')),
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_scope_key_at', ['scope', 'key', 'created_at'],
                              unique=False)
        batch_op.create_index('ix_login_failures_created_at', ['created_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_created_at')
        batch_op.drop_index('ix_login_failures_scope_key_at')
    op.drop_table('login_failures')
