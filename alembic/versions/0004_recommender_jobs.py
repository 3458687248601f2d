"""Recommender jobs: background jobs, versioned trained models, served recommendations, not_interested.

Revision ID: 0004. Revises: 0003.

- ``jobs``: background work (model training, imports) with state, progress, timings,
  result and error. A user's job (an import) goes with the user (ON DELETE CASCADE).
- ``recommender_models``: versioned trained model artifacts (the newest serves).
- ``served_recommendations``: sampled recommendation impressions for online evaluation;
  they go with the user and the movie (ON DELETE CASCADE).
- ``user_movie_interactions.interaction_type`` also accepts ``not_interested``. Every
  existing row is kept as it is (the constraint only widens).
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_TYPES = "interaction_type IN ('liked', 'bookmarked', 'watched')"
NEW_TYPES = "interaction_type IN ('liked', 'bookmarked', 'watched', 'not_interested')"


def upgrade():
    op.create_table('jobs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_jobs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_kind_created', ['kind', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_user_id'), ['user_id'], unique=False)

    op.create_table('recommender_models',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trained_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('job_id', sa.Uuid(), nullable=True),
    sa.Column('algorithm', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('artifact', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_recommender_models_job_id_jobs'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_recommender_models'))
    )

    op.create_table('served_recommendations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('movie_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('served_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['movie_id'], ['movies.id'], name=op.f('fk_served_recommendations_movie_id_movies'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_served_recommendations_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_served_recommendations'))
    )
    with op.batch_alter_table('served_recommendations', schema=None) as batch_op:
        batch_op.create_index('ix_served_recommendations_user_movie', ['user_id', 'movie_id'], unique=False)
        batch_op.create_index('ix_served_recommendations_version_served', ['model_version', 'served_at'],
                              unique=False)

    with op.batch_alter_table('user_movie_interactions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_movie_interactions_interaction_type'), type_='check')
        batch_op.create_check_constraint('interaction_type', NEW_TYPES)


def downgrade():
    op.execute("DELETE FROM user_movie_interactions WHERE interaction_type = 'not_interested'")
    with op.batch_alter_table('user_movie_interactions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_user_movie_interactions_interaction_type'), type_='check')
        batch_op.create_check_constraint('interaction_type', OLD_TYPES)
    with op.batch_alter_table('served_recommendations', schema=None) as batch_op:
        batch_op.drop_index('ix_served_recommendations_version_served')
        batch_op.drop_index('ix_served_recommendations_user_movie')
    op.drop_table('served_recommendations')
    op.drop_table('recommender_models')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_user_id'))
        batch_op.drop_index('ix_jobs_kind_created')
    op.drop_table('jobs')
