"""narrow feedback event indexes

Every ingest batch inserts into feedback_events' post index at random places; a
(post_id, occurred_at) index made each batch write twice the pages of a (post_id) one. The
piece page's comment list keeps its ordered index as a partial index over comments only.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:44:53.126952

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('feedback_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_events_post_occurred'))
        batch_op.create_index('ix_feedback_events_comments', ['post_id', 'occurred_at'], unique=False, sqlite_where=sa.text("kind = 'comment'"), postgresql_where=sa.text("kind = 'comment'"))
        batch_op.create_index('ix_feedback_events_post_id', ['post_id'], unique=False)



def downgrade():
    with op.batch_alter_table('feedback_events', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_events_post_id')
        batch_op.drop_index('ix_feedback_events_comments', sqlite_where=sa.text("kind = 'comment'"), postgresql_where=sa.text("kind = 'comment'"))
        batch_op.create_index(batch_op.f('ix_feedback_events_post_occurred'), ['post_id', 'occurred_at'], unique=False)

