"""/api/admin/blocked-movies: titles taken down for everyone (admin; moderators may read)."""
from __future__ import annotations

from ..authz import ADMIN_READ, ADMIN_WRITE
from ..interfaces import IBlockedMovies
from ..presenters import blocked as present, paging
from . import schemas
from .envelope import success
from .service import ApiService

blocked_movies = ApiService(name="admin_blocked_movies", path="/api/admin/blocked-movies",
                            description="Blocked titles")
blocked_movie = ApiService(name="admin_blocked_movie", path="/api/admin/blocked-movies/{tmdb_id}",
                           description="Unblock a title")


@blocked_movies.get(schema=schemas.request_schema(querystring=schemas.LocalPaging),
                    returns=present.BlockedMoviePage, permission=ADMIN_READ, error_codes=(401, 403))
def list_blocked(request):
    query = request.validated["querystring"]
    page = request.find_service(IBlockedMovies).list(query["page"], query["per_page"])
    return success(paging.of(page, present.blocked_movie))


@blocked_movies.post(schema=schemas.request_schema(schemas.BlockMovieBody), returns=present.BlockedMovie,
                     response_status=201, permission=ADMIN_WRITE, error_codes=(401, 403, 404),
                     summary="Block a title: it disappears from every movie page (201; 200 if already blocked)")
def block(request):
    body = request.validated["body"]
    row, created = request.find_service(IBlockedMovies).block(body["tmdb_id"], body["reason"],
                                                              request.identity.user, "api")
    request.response.status_int = 201 if created else 200
    return success(present.blocked_movie(row), "Title blocked" if created else "Already blocked")


@blocked_movie.delete(schema=schemas.path_request_schema(schemas.TmdbIdPath), permission=ADMIN_WRITE,
                      error_codes=(401, 403, 404))
def unblock(request):
    request.find_service(IBlockedMovies).unblock(request.validated["path"]["tmdb_id"], request.identity.user, "api")
    return success(None, "Title unblocked")
