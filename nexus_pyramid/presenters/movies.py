"""Movies: genre, person, movie summary (list item), movie detail, page of movies.

A movie is shaped from one of two origins: an answer of the movie source (TMDb's shape,
or the offline catalog's in the same shape) or a row of the local ``movies`` table (an
ORM ``Movie`` or a row of the same columns). Both end in ``MoviePresenter._movie``.
"""
from __future__ import annotations

from datetime import date

import colander

from . import paging
from .schema import boolean, day, enum, integer, list_of, number, page_of, string

MAX_CAST = 10


# -- schemas ------------------------------------------------------------------------
class Genre(colander.MappingSchema):
    ref = "Genre"
    id = integer(description="TMDb genre id")
    name = string(nullable=True, description="null while the genre list of the source is unavailable")


class Person(colander.MappingSchema):
    ref = "Person"
    id = integer(nullable=True, description="TMDb person id")
    name = string(nullable=True)


class CastMember(colander.MappingSchema):
    ref = "CastMember"
    id = integer(nullable=True, description="TMDb person id")
    name = string(nullable=True)
    character = string(nullable=True)
    profile_path = string(nullable=True)


class Movie(colander.MappingSchema):
    ref = "Movie"
    tmdb_id = integer(description="TMDb movie id (MovieLens id with the offline catalog)")
    title = string()
    overview = string(nullable=True)
    release_date = day(nullable=True)
    release_year = integer(nullable=True, description="Known without a full date for catalog movies")
    poster_path = string(nullable=True)
    poster_url = string(nullable=True, description="The full image URL, or null without a poster")
    popularity = number()
    vote_average = number(description="0 to 10")
    vote_count = integer()
    adult = boolean()
    genres = list_of(Genre(name="genre"))


class MovieDetail(Movie):
    ref = "MovieDetail"
    cast = list_of(CastMember(name="member"), nullable=True,
                   description="Up to 10, in billing order; null where the source has no credits")
    directors = list_of(Person(name="director"), nullable=True,
                        description="null where the source has no credits")
    runtime = integer(nullable=True, description="Minutes")
    tagline = string(nullable=True)


MoviePage = page_of(Movie, "MoviePage")


class GenreList(colander.SequenceSchema):
    ref = "GenreList"
    genre = Genre()


class CacheFacts(colander.MappingSchema):
    """``meta`` of a response built from movie-source data (with the ``X-Cache`` header)."""
    ref = "CacheFacts"
    source = enum(["cache", "upstream", "stale"],
                  description="cache: fresh from the cache; upstream: fetched now; stale: the source failed "
                              "and an expired cached copy was served")
    language = string(description="The language of titles and overviews (BCP 47); the offline catalog "
                                  "answers in English (`en`) whatever was asked")
    notes = list_of(string(name="note"), missing=colander.drop,
                    description="What the source cannot give (e.g. the offline catalog has no credits, "
                                "or is English only)")


# -- values as the source gives them ------------------------------------------------------
def parse_date(value) -> date | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def release_year(raw: dict) -> int | None:
    release = parse_date(raw.get("release_date"))
    if release is not None:
        return release.year
    year = raw.get("year")
    return year if isinstance(year, int) else None


# The columns of ``models.Movie`` that a movie of the source fills (and the Movie JSON shows).
STORED_FIELDS = ("tmdb_id", "title", "overview", "release_date", "release_year", "poster_path", "popularity",
                 "vote_average", "vote_count", "adult")


def source_fields(raw: dict) -> dict:
    """The ``STORED_FIELDS`` of a movie as the source gives it, normalized (for the JSON and the mirror)."""
    return {
        "tmdb_id": raw["id"],
        "title": raw.get("title") or raw.get("original_title") or "",
        "overview": raw.get("overview") or None,
        "release_date": parse_date(raw.get("release_date")),
        "release_year": release_year(raw),
        "poster_path": raw.get("poster_path"),
        "popularity": float(raw.get("popularity") or 0),
        "vote_average": float(raw.get("vote_average") or 0),
        "vote_count": int(raw.get("vote_count") or 0),
        "adult": bool(raw.get("adult")),
    }


def genre(genre_id: int, name: str | None) -> dict:
    return {"id": genre_id, "name": name}


def genres(items) -> list[dict]:
    """Genre rows (``models.Genre``) or anything with ``id`` and ``name``."""
    return [genre(g.id, g.name) for g in items]


def person(raw: dict) -> dict:
    return {"id": raw.get("id"), "name": raw.get("name")}


def cast_member(raw: dict) -> dict:
    return {"id": raw.get("id"), "name": raw.get("name"), "character": raw.get("character"),
            "profile_path": raw.get("profile_path")}


# -- presenters --------------------------------------------------------------------
class MoviePresenter:
    """Movies as the contract's Movie / MovieDetail; knows where posters are served from."""

    def __init__(self, image_base: str, poster_size: str = "w500"):
        self.image_base = image_base.rstrip("/") + "/"
        self.poster_size = poster_size

    def poster_url(self, poster_path: str | None) -> str | None:
        if not poster_path:
            return None
        return f"{self.image_base}{self.poster_size}/{poster_path.lstrip('/')}"

    def _movie(self, fields, genre_list: list[dict]) -> dict:
        """``fields``: the ``STORED_FIELDS`` of one movie, by name."""
        return {
            "tmdb_id": fields["tmdb_id"],
            "title": fields["title"],
            "overview": fields["overview"],
            "release_date": fields["release_date"],
            "release_year": fields["release_year"],
            "poster_path": fields["poster_path"],
            "poster_url": self.poster_url(fields["poster_path"]),
            "popularity": fields["popularity"],
            "vote_average": fields["vote_average"],
            "vote_count": fields["vote_count"],
            "adult": fields["adult"],
            "genres": genre_list,
        }

    def from_source(self, raw: dict, names: dict[int, str]) -> dict:
        """A movie as the source gives it (list item or detail); ``names``: genre id -> name."""
        if isinstance(raw.get("genres"), list):
            genre_list = [genre(g["id"], g.get("name") or names.get(g["id"])) for g in raw["genres"]]
        else:
            genre_list = [genre(g, names.get(g)) for g in raw.get("genre_ids") or []]
        return self._movie(source_fields(raw), genre_list)

    def from_record(self, row, genre_list: list[dict]) -> dict:
        """A stored movie: a ``models.Movie`` or a row with the same column names."""
        return self._movie({name: getattr(row, name) for name in STORED_FIELDS}, genre_list)

    def record(self, movie) -> dict:
        """A ``models.Movie`` with its genres loaded."""
        return self.from_record(movie, genres(movie.genres))

    def detail(self, raw: dict, names: dict[int, str]) -> dict:
        """A movie with credits as the contract's MovieDetail."""
        movie = self.from_source(raw, names)
        credits = raw.get("credits")
        if isinstance(credits, dict):
            cast = sorted((c for c in credits.get("cast") or [] if isinstance(c, dict)),
                          key=lambda c: c.get("order", 999))[:MAX_CAST]
            movie["cast"] = [cast_member(c) for c in cast]
            movie["directors"] = [person(c) for c in credits.get("crew") or []
                                  if isinstance(c, dict) and c.get("job") == "Director"]
        else:
            movie["cast"] = None
            movie["directors"] = None
        movie["runtime"] = raw.get("runtime")
        movie["tagline"] = raw.get("tagline") or None
        return movie

    def page(self, raw: dict, items: list[dict], names: dict[int, str]) -> dict:
        """A page of the source (``raw``) showing ``items`` (its results, filtered)."""
        return paging.page([self.from_source(r, names) for r in items], raw.get("page", 1), 20,
                           raw.get("total_results", 0), raw.get("total_pages", 0))
