"""Movie similarities (recommender), the admin audit log, movies.release_year.

Revision ID: 0002. Revises: 0001.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admin_audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_email', sa.String(length=254), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_user_id', sa.Uuid(), nullable=True),
    sa.Column('target_email', sa.String(length=254), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_admin_audit_log_actor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_audit_log'))
    )
    with op.batch_alter_table('admin_audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_admin_audit_log_created_at', ['created_at'], unique=False)

    op.create_table('movie_similarities',
    sa.Column('movie_id', sa.Integer(), nullable=False),
    sa.Column('other_movie_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('support', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['movie_id'], ['movies.id'], name=op.f('fk_movie_similarities_movie_id_movies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['other_movie_id'], ['movies.id'], name=op.f('fk_movie_similarities_other_movie_id_movies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('movie_id', 'other_movie_id', name=op.f('pk_movie_similarities'))
    )
    with op.batch_alter_table('movie_similarities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_movie_similarities_other_movie_id'), ['other_movie_id'], unique=False)

    with op.batch_alter_table('movies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('release_year', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('movies', schema=None) as batch_op:
        batch_op.drop_column('release_year')

    with op.batch_alter_table('movie_similarities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_movie_similarities_other_movie_id'))

    op.drop_table('movie_similarities')
    with op.batch_alter_table('admin_audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_audit_log_created_at')

    op.drop_table('admin_audit_log')

