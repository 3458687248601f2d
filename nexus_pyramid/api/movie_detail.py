"""/api/movies/{tmdb_id} and its recommendations."""
from __future__ import annotations

from ..authz import PUBLIC
from ..interfaces import IMovieService
from ..presenters import movies
from . import schemas
from .movies import cache_response
from .service import ApiService

detail = ApiService(name="movie_detail", path="/api/movies/{tmdb_id}", description="One movie with cast and directors")
recommendations = ApiService(name="movie_recommendations", path="/api/movies/{tmdb_id}/recommendations",
                             description="Movies recommended from this one")


@detail.get(schema=schemas.path_request_schema(schemas.TmdbIdPath, schemas.LanguageQuery),
            returns=movies.MovieDetail, meta=movies.CacheFacts, permission=PUBLIC, error_codes=(404, 503))
def detail_view(request):
    movies = request.find_service(IMovieService)
    return cache_response(request, *movies.movie_detail(request.validated["path"]["tmdb_id"],
                                                        request.validated["querystring"].get("language")))


@recommendations.get(schema=schemas.path_request_schema(schemas.TmdbIdPath, schemas.TmdbPaging),
                     returns=movies.MoviePage, meta=movies.CacheFacts, permission=PUBLIC,
                     error_codes=(404, 503))
def recommendations_view(request):
    movies = request.find_service(IMovieService)
    query = request.validated["querystring"]
    return cache_response(request, *movies.recommendations(request.validated["path"]["tmdb_id"], query["page"],
                                                           query.get("language")))
