from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base

# The id space the ``movies.tmdb_id`` column was filled from: ``tmdb`` (TMDb ids) or
# ``movielens`` (the offline catalog). The two must never meet in one database.
MOVIE_ID_SPACE = "movie_id_space"


class AppMeta(Base):
    """Facts about this database itself, as key/value pairs."""

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
