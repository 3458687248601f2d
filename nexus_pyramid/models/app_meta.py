from __future__ import annotations

import logging

from sqlalchemy import String, Text, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from ..settings import ConfigurationError
from .meta import Base, dialect_insert

log = logging.getLogger(__name__)

# The id space the ``movies.tmdb_id`` column was filled from: ``tmdb`` (TMDb ids) or
# ``movielens`` (the offline catalog). The two must never meet in one database.
MOVIE_ID_SPACE = "movie_id_space"

# nexus.movie_source -> the id space its movie ids belong to.
ID_SPACE_OF_SOURCE = {"catalog": "movielens", "tmdb": "tmdb"}
SOURCE_OF_ID_SPACE = {space: source for source, space in ID_SPACE_OF_SOURCE.items()}
_DESCRIPTION = {"movielens": "MovieLens ids, from the offline catalog", "tmdb": "TMDb ids, from TMDb"}


class AppMeta(Base):
    """Facts about this database itself, as key/value pairs."""

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MovieIdSpaceConflict(ConfigurationError):
    """The database's movies were numbered by another source than the configured one."""


def id_space_of(source_name: str) -> str:
    try:
        return ID_SPACE_OF_SOURCE[source_name]
    except KeyError:
        raise ConfigurationError(f"unknown movie source {source_name!r}") from None


def conflict_message(stored: str, source_name: str) -> str:
    wanted = id_space_of(source_name)
    previous = SOURCE_OF_ID_SPACE.get(stored, stored)
    return (f"this database's movies are numbered with {_DESCRIPTION.get(stored, stored)} "
            f"(nexus.movie_source = {previous}), but the configured movie source is {source_name!r} "
            f"({_DESCRIPTION[wanted]}): every stored like and preference would point at a different film. "
            f"Use a fresh database for the {source_name!r} source (then run nexus-initialize-db), "
            f"or set NEXUS_MOVIE_SOURCE (nexus.movie_source) back to {previous!r}.")


def stored_id_space(connection) -> str | None:
    return connection.execute(select(AppMeta.value).where(AppMeta.key == MOVIE_ID_SPACE)).scalar_one_or_none()


def claim_id_space(connection, space: str) -> str:
    """Label the database with ``space`` unless it already has a label; the label it has now."""
    connection.execute(dialect_insert(connection, AppMeta).values(key=MOVIE_ID_SPACE, value=space)
                       .on_conflict_do_nothing())
    return stored_id_space(connection)


def _limit_statement_time(connection, timeout: float) -> None:
    if connection.dialect.name == "postgresql":
        # Server side; the connection itself is bounded by the engine's connect timeout.
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(timeout * 1000))}")


def check_movie_id_space(engine, source_name: str, *, timeout: float = 3.0,
                         strict: bool = False) -> str | None:
    """Refuse a database whose movies come from another id space than ``source_name``'s.

    An unlabelled database is labelled with the configured source's id space (it holds no
    movies: migration 0003 labels every database that already had some). Raises
    ``MovieIdSpaceConflict`` on a mismatch. When the database cannot be asked, the app
    starts anyway (``strict=False``: logged once, requests then meet the database's own
    failure policy); the scripts pass ``strict=True`` and fail.
    Returns the database's id space, or None when it could not be read.
    """
    wanted = id_space_of(source_name)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(nexus_read_only=True)
            with connection.begin():
                _limit_statement_time(connection, timeout)
                stored = stored_id_space(connection)
        if stored is None:
            with engine.begin() as connection:
                _limit_statement_time(connection, timeout)
                stored = claim_id_space(connection, wanted)
            if stored == wanted:
                log.info("movie ids: this database is now labelled %r (nexus.movie_source = %s)",
                         wanted, source_name)
    except DBAPIError as exc:
        if strict:
            raise
        log.warning("movie ids: could not check this database's id space at start-up (%s); starting anyway",
                    type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
        return None
    if stored != wanted:
        raise MovieIdSpaceConflict(conflict_message(stored, source_name))
    return stored
