"""Reliability: the database's movie id space, per-user recommendation versions, console sessions.

Revision ID: 0003. Revises: 0002.

- ``app_meta`` records which id space filled ``movies.tmdb_id``: ``movielens`` (the offline
  catalog) or ``tmdb``. The app and ``nexus-initialize-db`` refuse a database labelled with
  the other source's id space.

  Labelling a database the previous release filled (it has no label): the configured
  source cannot be trusted for this (an operator switching sources while upgrading is
  exactly the case to catch), so the label comes from the data. The previous release's
  initialization loaded every catalog movie under its MovieLens id and title, while a
  TMDb-filled database holds TMDb titles under TMDb ids, and the same number is almost
  never the same film in both (MovieLens 603 is "Bye Bye, Love", TMDb 603 "The Matrix").
  So: no movies -> no label (nothing can be mismatched yet; the first start or
  ``nexus-initialize-db`` labels it from the configured source); otherwise ``movielens``
  when most stored movies carry the catalog's title for their id, else ``tmdb``. A mix
  (the sources were already switched once) gets the majority's label and a warning with
  the counts. No row is changed or removed. Offline (``--sql``) runs cannot read the data
  and leave the label to the first start.
- ``users.recs_version``: existing users start at 0.
- ``console_sessions``: server-side console sessions; existing console cookies (stateless
  until now) are no longer accepted and lead to the sign-in page.
"""
import logging

from alembic import context, op
import sqlalchemy as sa

log = logging.getLogger("alembic.runtime.migration")


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('app_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_app_meta'))
    )
    op.create_table('console_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_console_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_console_sessions_key_hash'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recs_version', sa.Integer(), server_default='0', nullable=False))

    if not context.is_offline_mode():
        _label_movie_id_space(op.get_bind())


def _label_movie_id_space(bind):
    """Label a database filled by the previous release from its data (see the docstring)."""
    movies = bind.execute(sa.text("SELECT tmdb_id, title FROM movies")).all()
    if not movies:
        return
    from nexus_pyramid.movie_source.catalog import CatalogSource

    def same(a, b):
        return (a or "").strip().casefold() == (b or "").strip().casefold()

    catalog = {m["id"]: m["title"] for m in CatalogSource().all_movies()}
    matches = sum(1 for tmdb_id, title in movies if tmdb_id in catalog and same(title, catalog[tmdb_id]))
    space = "movielens" if 2 * matches > len(movies) else "tmdb"
    bind.execute(sa.text("INSERT INTO app_meta (key, value) VALUES ('movie_id_space', :space)"),
                 {"space": space})
    mixed = 0 < matches < len(movies) and min(matches, len(movies) - matches) > len(movies) // 20
    (log.warning if mixed else log.info)(
        "movie ids: labelled %r: %d of %d stored movies carry the offline catalog's title for their id%s",
        space, matches, len(movies),
        " (a mix: the movie source was switched before; check the data)" if mixed else "")


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('recs_version')

    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_user_id'))

    op.drop_table('console_sessions')
    op.drop_table('app_meta')
