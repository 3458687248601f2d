"""What a discover query is, once: its filters, their defaults, its normalized cache key,
and the language tags every movie route takes.

Both sources (TMDb's ``/discover/movie``, the offline catalog) answer the same
``DiscoverQuery``; the cache keys it by ``key()``, so that ``genre_ids=28,18`` and
``genre_ids=18,28&sort=popularity`` are one entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SORTS = ("popularity", "rating", "release_date")
# TMDb's sort_by for each of our sort orders (all descending).
TMDB_SORT_BY = {"popularity": "popularity.desc", "rating": "vote_average.desc",
                "release_date": "primary_release_date.desc"}

# BCP 47 as TMDb takes it: a language (ISO 639, 2-3 letters), optionally a script and a region
# (ISO 3166 alpha-2 or UN M.49 digits): en, fr-FR, pt-BR, zh-Hant-TW, es-419.
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?$")


def normalize_language(tag: str) -> str:
    """The canonical spelling of a language tag (``FR-fr`` -> ``fr-FR``); ValueError if ill-formed."""
    match = _TAG.match(tag.strip()) if isinstance(tag, str) else None
    if match is None:
        raise ValueError(f"not a language tag such as en-US or fr-FR: {tag!r}")
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


@dataclass(frozen=True)
class DiscoverQuery:
    genre_ids: tuple[int, ...] = ()  # all must match
    cast_ids: tuple[int, ...] = ()  # any may match (the recommender's use)
    year_from: int | None = None
    year_to: int | None = None
    min_votes: int = 0
    sort: str = "popularity"
    page: int = 1

    def __post_init__(self):
        object.__setattr__(self, "genre_ids", tuple(sorted(set(self.genre_ids))))
        object.__setattr__(self, "cast_ids", tuple(sorted(set(self.cast_ids))))
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}")

    def key(self) -> str:
        """Every filter, defaults filled in, ids sorted: equal queries, equal keys."""
        genres = ",".join(map(str, self.genre_ids)) or "-"
        cast = ",".join(map(str, self.cast_ids)) or "-"
        years = f"{self.year_from or '-'}..{self.year_to or '-'}"
        return f"discover:g={genres}:c={cast}:y={years}:v={self.min_votes}:s={self.sort}:p={self.page}"

    def tmdb_params(self) -> dict:
        return {
            "page": self.page,
            "include_adult": "false",
            "sort_by": TMDB_SORT_BY[self.sort],
            "with_genres": ",".join(map(str, self.genre_ids)) or None,
            "with_cast": "|".join(map(str, self.cast_ids)) or None,
            "vote_count.gte": self.min_votes or None,
            "primary_release_date.gte": f"{self.year_from}-01-01" if self.year_from else None,
            "primary_release_date.lte": f"{self.year_to}-12-31" if self.year_to else None,
        }
