"""The offline catalog: real movies from MovieLens, served in TMDb's shapes with no network."""
from __future__ import annotations

import gzip
import json
import re
import unicodedata
from functools import cached_property
from pathlib import Path

from .base import MovieSource, SourceNotFound, page_of
from .catalog_build import DATA_FILE
from .genres import TMDB_GENRES

NO_CREDITS_NOTE = "The offline catalog has no cast or crew data."
CATALOG_LANGUAGE = "en"
ENGLISH_ONLY_NOTE = "The offline catalog is in English only."


def normalize(text: str) -> str:
    """Lower-case, accents removed, punctuation folded to spaces: "Amélie" ~ "amelie"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", stripped).split())


class CatalogSource(MovieSource):
    name = "catalog"

    def __init__(self, path: Path | str = DATA_FILE):
        self.path = Path(path)

    @cached_property
    def _data(self) -> dict:
        with gzip.open(self.path, "rt", encoding="utf-8") as handle:
            raw = json.load(handle)
        columns = raw["columns"]
        movies = {}
        for row in raw["movies"]:
            record = dict(zip(columns, row))
            movies[record["id"]] = record
        by_popularity = sorted(movies, key=lambda m: (-movies[m]["popularity"], m))
        search_keys = {m: f" {normalize(r['title'])} | {normalize(r['original_title'])} " for m, r in movies.items()}
        neighbours = {int(k): v for k, v in raw["neighbours"].items()}
        return {"movies": movies, "trending": raw["trending"], "neighbours": neighbours,
                "by_popularity": by_popularity, "search_keys": search_keys}

    def content_language(self, requested: str) -> str:
        return CATALOG_LANGUAGE

    def language_notes(self, requested: str) -> list[str]:
        return [] if requested.split("-")[0].lower() == CATALOG_LANGUAGE else [ENGLISH_ONLY_NOTE]

    def preload(self) -> None:
        """Read the data file now rather than on the first request."""
        self._data  # noqa: B018 (cached_property: reading it loads it)

    # -- shapes ------------------------------------------------------------------
    @staticmethod
    def _item(record: dict) -> dict:
        return {
            "id": record["id"],
            "title": record["title"],
            "original_title": record["original_title"],
            "overview": "",
            "release_date": "",
            "year": record["year"],
            "poster_path": None,
            "backdrop_path": None,
            "genre_ids": list(record["genre_ids"]),
            "popularity": record["popularity"],
            "vote_average": record["vote_average"],
            "vote_count": record["vote_count"],
            "adult": False,
            "video": False,
            "original_language": None,
        }

    def _record(self, tmdb_id: int) -> dict:
        record = self._data["movies"].get(tmdb_id)
        if record is None:
            raise SourceNotFound(tmdb_id)
        return record

    def _page(self, ids: list[int], page: int) -> dict:
        movies = self._data["movies"]
        result = page_of(ids, page)
        result["results"] = [self._item(movies[m]) for m in result["results"]]
        return result

    # -- the interface -----------------------------------------------------------
    def trending(self, window: str, page: int, language: str | None = None) -> dict:
        return self._page(self._data["trending"][window], page)

    def movie(self, tmdb_id: int, language: str | None = None) -> dict:
        record = self._record(tmdb_id)
        names = {g["id"]: g["name"] for g in TMDB_GENRES}
        detail = self._item(record)
        detail.pop("genre_ids")
        detail.update({
            "genres": [{"id": g, "name": names[g]} for g in record["genre_ids"]],
            "runtime": None,
            "tagline": None,
            "credits": None,
            "notes": [NO_CREDITS_NOTE],
        })
        return detail

    def recommendations(self, tmdb_id: int, page: int, language: str | None = None) -> dict:
        """People who rated this movie highly also rated these highly (co-occurrence)."""
        self._record(tmdb_id)
        ids = [m for m, _score in self._data["neighbours"].get(tmdb_id, [])]
        if not ids:  # too few ratings to have co-raters: fall back to similar genres
            return self.similar(tmdb_id, page)
        return self._page(ids, page)

    def similar(self, tmdb_id: int, page: int, language: str | None = None) -> dict:
        record = self._record(tmdb_id)
        genres = set(record["genre_ids"])
        movies = self._data["movies"]
        if not genres:
            return self._page([], page)

        def overlap(m):
            other = set(movies[m]["genre_ids"])
            return len(genres & other) / len(genres | other) if other else 0.0

        scored = [(overlap(m), movies[m]["popularity"], m) for m in self._data["by_popularity"][:3000]
                  if m != tmdb_id]
        ids = [m for score, _pop, m in sorted(scored, key=lambda t: (-t[0], -t[1], t[2])) if score >= 0.5][:100]
        return self._page(ids, page)

    def search_movies(self, query: str, page: int, year: int | None = None, include_adult: bool = False,
                      language: str | None = None) -> dict:
        terms = normalize(query).split()
        if not terms:
            return self._page([], page)
        movies = self._data["movies"]
        keys = self._data["search_keys"]
        phrase = " " + " ".join(terms) + " "
        hits = []
        for m in self._data["by_popularity"]:
            key = keys[m]
            if year is not None and movies[m]["year"] != year:
                continue
            if all(term in key for term in terms):
                # Whole-phrase matches on word boundaries first, then by popularity.
                hits.append((0 if phrase in key else 1, m))
        hits.sort(key=lambda t: t[0])
        return self._page([m for _rank, m in hits], page)

    def search_people(self, query: str, page: int) -> dict:
        return page_of([], page)  # the catalog has no people

    def discover(self, query, language: str | None = None) -> dict:
        """TMDb's discover over the catalog: the same filters and sort orders.

        The catalog knows release years, not dates: year bounds are inclusive and the
        ``release_date`` order is by year (then popularity). ``rating`` orders by average
        vote, then by number of votes. It has no cast: a cast filter alone matches nothing.
        """
        if query.cast_ids and not query.genre_ids:
            return self._page([], query.page)
        wanted = set(query.genre_ids)
        movies = self._data["movies"]

        def matches(record) -> bool:
            year = record["year"]
            if query.year_from is not None and (year is None or year < query.year_from):
                return False
            if query.year_to is not None and (year is None or year > query.year_to):
                return False
            return record["vote_count"] >= query.min_votes and wanted <= set(record["genre_ids"])

        ids = [m for m in self._data["by_popularity"] if matches(movies[m])]  # popularity order
        if query.sort == "rating":
            ids.sort(key=lambda m: (-movies[m]["vote_average"], -movies[m]["vote_count"]))
        elif query.sort == "release_date":
            ids.sort(key=lambda m: -(movies[m]["year"] or 0))
        return self._page(ids, query.page)

    def genres(self, language: str | None = None) -> list[dict]:
        return [dict(g) for g in TMDB_GENRES]

    def all_movies(self):
        """Every catalog movie, TMDb-shaped (for loading the local mirror)."""
        movies = self._data["movies"]
        return [self._item(movies[m]) for m in sorted(movies)]

    def state(self) -> dict:
        return {"name": self.name, "movies": len(self._data["movies"]), "breaker": "n/a"}
