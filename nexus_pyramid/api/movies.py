"""/api/movies/* and /api/genres: public movie data from the cached movie source.

Registered before ``movie_detail`` so that /api/movies/trending and /search are not
taken for a movie id.
"""
from __future__ import annotations

from ..authz import PUBLIC
from ..presenters import movies
from ..dependencies import postgres
from ..interfaces import IMovieService
from ..services.recommender import can_see_adult
from . import schemas
from .cached import cached_response
from .service import ApiService

trending = ApiService(name="movies_trending", path="/api/movies/trending", description="Trending movies")
search = ApiService(name="movies_search", path="/api/movies/search", description="Search movies by title")
genres = ApiService(name="genres", path="/api/genres", description="The movie genres")

MOVIE_ERRORS = (503,)


@trending.get(schema=schemas.request_schema(querystring=schemas.TrendingQuery), returns=movies.MoviePage,
              meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def trending_view(request):
    query = request.validated["querystring"]
    movies = request.find_service(IMovieService)
    result = movies.trending_result(query["window"], query["page"])
    return cached_response(request, movies, result, "page", lambda: movies.page_body(result))


@search.get(schema=schemas.request_schema(querystring=schemas.SearchQuery), returns=movies.MoviePage,
            meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def search_view(request):
    query = request.validated["querystring"]
    # A token is optional here; a signed-in adult may see adult titles, nobody else does.
    # Without the database the caller cannot be checked: searched as anonymous, not failed.
    user = postgres.optional(request, lambda: request.identity.user if request.identity else None)
    allow_adult = user is not None and can_see_adult(user.date_of_birth)
    movies = request.find_service(IMovieService)
    result = movies.search_result(query["query"], query["page"], query.get("year"), allow_adult)
    response = cached_response(request, movies, result, f"page:adult={int(allow_adult)}",
                               lambda: movies.page_body(result, allow_adult=allow_adult),
                               private="Authorization" in request.headers)
    response.headers["Vary"] = "Authorization"
    return response


@genres.get(returns=movies.GenreList, meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def genres_view(request):
    movies = request.find_service(IMovieService)
    result = movies.genres_result()
    return cached_response(request, movies, result, "genres", lambda: movies.genres_body(result))
