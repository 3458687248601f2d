"""Operations: suspended accounts and blocked titles.

Revision ID: 0006. Revises: 0005.

- ``users.suspended_at`` / ``users.suspension_reason``: null for every existing user (none is
  suspended by the upgrade); a suspended user cannot sign in and their tokens answer 401.
- ``blocked_movies``: titles an administrator took down, by ``tmdb_id`` (a title may be
  blocked before it is ever mirrored locally, so no foreign key to ``movies``).
- ``app_meta['blocklist_version']``: bumped with every block or unblock, so that every worker
  process notices a change within a second (services/blocklist.py). Starts at 0.
No existing row is changed or removed.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspension_reason', sa.Text(), nullable=True))
    op.create_table('blocked_movies',
    sa.Column('tmdb_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('title', sa.String(length=500), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('blocked_by_id', sa.Uuid(), nullable=True),
    sa.Column('blocked_by_email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['blocked_by_id'], ['users.id'], name=op.f('fk_blocked_movies_blocked_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('tmdb_id', name=op.f('pk_blocked_movies'))
    )


def downgrade():
    op.drop_table('blocked_movies')
    op.execute("DELETE FROM app_meta WHERE key = 'blocklist_version'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('suspension_reason')
        batch_op.drop_column('suspended_at')
