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
discover = ApiService(name="movies_discover", path="/api/movies/discover",
                      description="Browse movies by genre, years and votes, in an order")

MOVIE_ERRORS = (429, 503)  # 429: the client has used up its TMDb calls (tmdb.calls_per_client)


@trending.get(schema=schemas.request_schema(querystring=schemas.TrendingQuery), returns=movies.MoviePage,
              meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def trending_view(request):
    query = request.validated["querystring"]
    movies = request.find_service(IMovieService)
    language = query.get("language")
    result = movies.trending_result(query["window"], query["page"], language)
    return cached_response(request, movies, result, "page", lambda: movies.page_body(result, language=language))


@discover.get(schema=schemas.request_schema(querystring=schemas.DiscoverQuery), returns=movies.MoviePage,
              meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def discover_view(request):
    from ..movie_source.discover import DiscoverQuery

    query = request.validated["querystring"]
    wanted = DiscoverQuery(genre_ids=tuple(query.get("genre_ids", ())), year_from=query.get("year_from"),
                           year_to=query.get("year_to"), min_votes=query["min_votes"], sort=query["sort"],
                           page=query["page"])
    movies, language = request.find_service(IMovieService), query.get("language")
    result = movies.discover_result(wanted, language)
    return cached_response(request, movies, result, "page", lambda: movies.page_body(result, language=language))


@search.get(schema=schemas.request_schema(querystring=schemas.SearchQuery), returns=movies.MoviePage,
            meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def search_view(request):
    query = request.validated["querystring"]
    # A token is optional here; a signed-in adult may see adult titles, nobody else does.
    # Without the database the caller cannot be checked: searched as anonymous, not failed.
    user = postgres.optional(request, lambda: request.identity.caller if request.identity else None)
    allow_adult = user is not None and can_see_adult(user.date_of_birth)
    movies = request.find_service(IMovieService)
    language = query.get("language")
    result = movies.search_result(query["query"], query["page"], query.get("year"), allow_adult, language)
    return cached_response(request, movies, result, f"page:adult={int(allow_adult)}",
                           lambda: movies.page_body(result, allow_adult=allow_adult, language=language),
                           private="Authorization" in request.headers, vary="Authorization")


@genres.get(schema=schemas.request_schema(querystring=schemas.LanguageQuery), returns=movies.GenreList,
            meta=movies.CacheFacts, permission=PUBLIC, error_codes=MOVIE_ERRORS)
def genres_view(request):
    movies = request.find_service(IMovieService)
    result = movies.genres_result(request.validated["querystring"].get("language"))
    return cached_response(request, movies, result, "genres", lambda: movies.genres_body(result))
