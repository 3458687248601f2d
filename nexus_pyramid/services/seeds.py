"""What ``nexus-initialize-db`` seeds (each step takes a request; registered in services' includeme)."""
from __future__ import annotations

from ..interfaces import IMovieSource
from .movies import upsert_genres, upsert_movies


def seed_genres(request) -> str:
    """Fill ``genres`` from the active movie source (idempotent)."""
    genres = request.find_service(IMovieSource).source.genres()
    return f"{upsert_genres(request.dbsession, genres)} genres"


def seed_catalog(request) -> str:
    """Load every offline-catalog movie into the local mirror (idempotent; catalog source only)."""
    source = request.find_service(IMovieSource).source
    if source.name != "catalog":
        return "skipped (the movie source is not the catalog)"
    movies = source.all_movies()
    upsert_movies(request.dbsession, movies, {g["id"]: g["name"] for g in source.genres()})
    return f"{len(movies)} catalog movies"


def seed_similarities(request) -> str:
    """Rebuild the recommender's co-occurrence neighbours from the interactions."""
    from .recommender import rebuild_similarities

    return f"{rebuild_similarities(request.dbsession)} movie similarities"
