"""TMDb's answers as the rest of the app reads them: every field in the type the contract gives it.

TMDb is trusted for its facts, not for its types. One item of a page with a title that is a
number, a popularity of ``1e999`` or a NUL in its overview used to reach the presenters, the
mirror and the JSON encoder as it came: a 500 for every page that showed it, or a body that
broke the contract. Here, at the client's edge, each field the app reads is checked once, when
the answer arrives (not on every cache hit):

- a field of the wrong type becomes what "unknown" is for it: ``None`` for text and dates,
  ``0`` for counts and scores, no genres;
- an item without a usable id (a positive integer that fits the id columns) is left out of its
  page; a movie or a genre list that is not one is ``Unusable``, so the client reports TMDb
  as failing and a stale copy is served where there is one;
- text loses what PostgreSQL and UTF-8 cannot hold (NUL, lone surrogates from ``\\ud800``
  escapes); dates are ISO ``YYYY-MM-DD`` or ``None``;
- what the app never reads (``backdrop_path``, ``video``...) is not kept, in the cache either.
"""
from __future__ import annotations

import math

from ..presenters.movies import parse_date
from .base import MAX_PAGE

MAX_ID = 2**31 - 1  # ids, counts and minutes are stored in 32-bit integer columns
MAX_PATH = 255  # models.Movie.poster_path; TMDb's image paths are some 32 characters
MAX_VOTE = 10.0


class Unusable(Exception):
    """A 200 whose body is not the answer asked for."""


# -- fields ---------------------------------------------------------------------------
def identifier(value) -> int | None:
    """A TMDb id: a positive integer that fits the id columns (``True`` is not one)."""
    return value if type(value) is int and 1 <= value <= MAX_ID else None


def text(value, limit: int | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return None if limit is not None and len(value) > limit else value


def count(value, missing: int | None = 0) -> int | None:
    """A whole number from 0 to ``MAX_ID`` (a finite float is cut to one); else ``missing``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return missing
    if isinstance(value, float) and not math.isfinite(value):
        return missing
    return int(min(max(value, 0), MAX_ID))


def score(value, high: float = math.inf) -> float:
    """A finite number from 0 to ``high``; else 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    try:
        value = float(value)
    except OverflowError:  # an integer beyond any float
        return 0.0
    return min(max(value, 0.0), high) if math.isfinite(value) else 0.0


def day(value) -> str | None:
    found = parse_date(text(value))
    return found.isoformat() if found is not None else None


def _items(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# -- things ---------------------------------------------------------------------------
def _genre(raw: dict) -> dict | None:
    genre_id = identifier(raw.get("id"))
    return None if genre_id is None else {"id": genre_id, "name": text(raw.get("name"))}


def _cast(raw: dict) -> dict:
    return {"id": identifier(raw.get("id")), "name": text(raw.get("name")), "character": text(raw.get("character")),
            "profile_path": text(raw.get("profile_path"), MAX_PATH), "order": count(raw.get("order"), 999)}


def _crew(raw: dict) -> dict:
    return {"id": identifier(raw.get("id")), "name": text(raw.get("name")), "job": text(raw.get("job"))}


def movie_item(raw: dict) -> dict | None:
    """A movie of a page (or the core of a detail); ``None`` without a usable id."""
    tmdb_id = identifier(raw.get("id"))
    if tmdb_id is None:
        return None
    genre_ids = raw.get("genre_ids")
    adult = raw.get("adult")
    return {
        "id": tmdb_id,
        "title": text(raw.get("title")),
        "original_title": text(raw.get("original_title")),
        "overview": text(raw.get("overview")),
        "release_date": day(raw.get("release_date")),
        "poster_path": text(raw.get("poster_path"), MAX_PATH),
        "popularity": score(raw.get("popularity")),
        "vote_average": score(raw.get("vote_average"), MAX_VOTE),
        "vote_count": count(raw.get("vote_count")),
        # A flag that is not a boolean counts as set: an unclear answer hides the title.
        "adult": adult if isinstance(adult, bool) else bool(adult),
        "genre_ids": [g for g in genre_ids if identifier(g) is not None] if isinstance(genre_ids, list) else [],
    }


def movie(data) -> dict:
    """``/movie/{id}`` with ``append_to_response=credits``."""
    found = movie_item(data) if isinstance(data, dict) else None
    if found is None:
        raise Unusable("an unexpected movie")
    if isinstance(data.get("genres"), list):
        found["genres"] = [g for g in map(_genre, _items(data["genres"])) if g is not None]
    credits = data.get("credits")
    if isinstance(credits, dict):
        found["credits"] = {"cast": [_cast(c) for c in _items(credits.get("cast"))],
                            "crew": [_crew(c) for c in _items(credits.get("crew"))]}
    found["runtime"] = count(data.get("runtime"), None)
    found["tagline"] = text(data.get("tagline"))
    return found


def _page(data, item) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise Unusable("an unexpected page")
    results = [found for found in map(item, _items(data["results"])) if found is not None]
    return {"page": count(data.get("page"), 1) or 1, "results": results,
            "total_results": count(data.get("total_results")),
            "total_pages": min(MAX_PAGE, count(data.get("total_pages")))}


def movie_page(data) -> dict:
    return _page(data, movie_item)


def _person(raw: dict) -> dict | None:
    person_id = identifier(raw.get("id"))
    return None if person_id is None else {
        "id": person_id, "name": text(raw.get("name")),
        "known_for_department": text(raw.get("known_for_department")),
        "profile_path": text(raw.get("profile_path"), MAX_PATH)}


def person_page(data) -> dict:
    return _page(data, _person)


def genre_list(data) -> list[dict]:
    genres = data.get("genres") if isinstance(data, dict) else None
    if not isinstance(genres, list):
        raise Unusable("an unexpected genre list")
    return [g for g in map(_genre, _items(genres)) if g is not None]


# -- the same shapes, read back -------------------------------------------------------------
# A value read from the shared cache is one the functions above made (or the offline catalog, in
# the same shape), unless something else wrote the key, or a release that shaped it otherwise.
# The presenters index into it without checks, so a value of another shape failed every request
# for its key until it expired. These say whether a value has the shape the app reads: the
# containers and ids it indexes by, and the type of each field it reads (extra fields are
# allowed: the catalog keeps a few that TMDb does not give).
_TEXT = ("title", "original_title", "overview", "release_date", "poster_path", "tagline")
_NUMBERS = ("popularity", "vote_average", "vote_count", "runtime", "year")
# By exact type (what JSON gives): True is no number here, and the checks stay cheap (some
# microseconds a movie; they run on every read from the shared cache).
TEXT_TYPES = frozenset((str, type(None)))
NUMBER_TYPES = frozenset((int, float, type(None)))
COUNT_TYPES = frozenset((int, type(None)))


def _list_of(value, sound) -> bool:
    return type(value) is list and all(sound(item) for item in value)


def _sound_genre(value) -> bool:
    return type(value) is dict and identifier(value.get("id")) is not None and type(value.get("name")) in TEXT_TYPES


def _sound_member(value) -> bool:
    return type(value) is dict and type(value.get("order", 0)) is int


def _sound_item(value) -> bool:
    """A movie of a page, or the core of a detail."""
    if type(value) is not dict or identifier(value.get("id")) is None:
        return False
    get = value.get
    for name in _TEXT:
        if type(get(name)) not in TEXT_TYPES:
            return False
    for name in _NUMBERS:
        if type(get(name)) not in NUMBER_TYPES:
            return False
    genre_ids, genres = get("genre_ids"), get("genres")
    return ((genre_ids is None or (type(genre_ids) is list and all(type(g) is int for g in genre_ids)))
            and (genres is None or _list_of(genres, _sound_genre)))


def sound_movie(value) -> bool:
    """A movie as ``movie`` makes it (credits, notes and all)."""
    if not _sound_item(value):
        return False
    credits, notes = value.get("credits"), value.get("notes")
    return ((credits is None or (type(credits) is dict
                                 and _list_of(credits.get("cast", []), _sound_member)
                                 and _list_of(credits.get("crew", []), lambda c: type(c) is dict)))
            and (notes is None or _list_of(notes, lambda n: type(n) is str)))


def _sound_page(value, item) -> bool:
    return (type(value) is dict and _list_of(value.get("results"), item)
            and type(value.get("page")) in COUNT_TYPES and type(value.get("total_results")) in COUNT_TYPES
            and type(value.get("total_pages")) in COUNT_TYPES)


def sound_movie_page(value) -> bool:
    return _sound_page(value, _sound_item)


def sound_person_page(value) -> bool:
    return _sound_page(value, lambda p: type(p) is dict and identifier(p.get("id")) is not None
                       and type(p.get("name")) in TEXT_TYPES)


def sound_genre_list(value) -> bool:
    return _list_of(value, lambda g: _sound_genre(g) and "name" in g)
