"""/api/movies/{tmdb_id} and its recommendations."""
from __future__ import annotations

from ..authz import PUBLIC
from ..interfaces import IMovieService
from ..presenters import movies
from . import schemas
from .cached import cached_response
from .service import ApiService

detail = ApiService(name="movie_detail", path="/api/movies/{tmdb_id}", description="One movie with cast and directors")
recommendations = ApiService(name="movie_recommendations", path="/api/movies/{tmdb_id}/recommendations",
                             description="Movies recommended from this one")


@detail.get(schema=schemas.path_request_schema(schemas.TmdbIdPath, schemas.LanguageQuery),
            returns=movies.MovieDetail, meta=movies.CacheFacts, permission=PUBLIC, error_codes=(404, 429, 503))
def detail_view(request):
    movies = request.find_service(IMovieService)
    language = request.validated["querystring"].get("language")
    result = movies.detail_result(request.validated["path"]["tmdb_id"], language)
    return cached_response(request, movies, result, "detail", lambda: movies.detail_body(result, language))


@recommendations.get(schema=schemas.path_request_schema(schemas.TmdbIdPath, schemas.TmdbPaging),
                     returns=movies.MoviePage, meta=movies.CacheFacts, permission=PUBLIC,
                     error_codes=(404, 429, 503))
def recommendations_view(request):
    movies = request.find_service(IMovieService)
    query = request.validated["querystring"]
    language = query.get("language")
    result = movies.recommendations_result(request.validated["path"]["tmdb_id"], query["page"], language)
    return cached_response(request, movies, result, "page", lambda: movies.page_body(result, language=language))
