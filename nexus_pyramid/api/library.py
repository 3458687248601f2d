"""/api/user/preferences, /api/user/interactions, /api/user/recommendations (token required)."""
from __future__ import annotations

from ..authz import SELF
from ..errors import ValidationError
from ..interfaces import ILibraryService, IMovieService
from ..presenters import jobs as present_jobs, library as present, paging
from ..services.online_eval import OnlineEvaluation
from . import schemas
from .envelope import success
from .service import ApiService

preferences = ApiService(name="user_preferences", path="/api/user/preferences",
                         description="Favorite genres, actors and movies")
interactions = ApiService(name="user_interactions", path="/api/user/interactions",
                          description="Liked, bookmarked and watched movies")
interaction = ApiService(name="user_interaction", path="/api/user/interactions/{interaction_id}",
                         description="One interaction")
recommendations = ApiService(name="user_recommendations", path="/api/user/recommendations",
                             description="Personalized recommendations")


def _preferences(request, user) -> dict:
    return present.preferences(request.find_service(ILibraryService).preferences(user),
                               request.find_service(IMovieService).presenter)


def _interaction(request):
    movies = request.find_service(IMovieService).presenter
    return lambda item: present.interaction(item, movies)


@preferences.get(returns=present.Preferences, permission=SELF, error_codes=(401,))
def get_preferences(request):
    return success(_preferences(request, request.identity.caller))


@preferences.post(schema=schemas.request_schema(schemas.PreferencesBody), returns=present.Preferences,
                  permission=SELF, error_codes=(401, 429, 503))
def save_preferences(request):
    body = request.validated["body"]
    if "actor_ids" in body and "actors" in body:
        raise ValidationError.field("actors", "Give actor_ids or actors, not both.")
    actors = None
    if "actors" in body:
        actors = [(a["id"], a["name"] or None) for a in body["actors"]]
    elif "actor_ids" in body:
        actors = [(a, None) for a in body["actor_ids"]]
    # The caller the token check read: the service needs only its id (no ORM entity loaded).
    caller = request.identity.caller
    request.find_service(ILibraryService).save_preferences(caller, body.get("genre_ids"), actors,
                                                           body.get("movie_ids"))
    return success(_preferences(request, caller), "Preferences saved")


@interactions.get(schema=schemas.request_schema(querystring=schemas.InteractionsQuery),
                  returns=present.InteractionPage, permission=SELF, error_codes=(401,))
def list_interactions(request):
    query = request.validated["querystring"]
    page = request.find_service(ILibraryService).interactions(request.identity.caller, query.get("type"),
                                                              query["page"], query["per_page"])
    return success(paging.of(page, _interaction(request)))


@interactions.post(schema=schemas.request_schema(schemas.InteractionBody), returns=present.Interaction,
                   permission=SELF, response_status=201, error_codes=(401, 404, 429, 503))
def add_interaction(request):
    body = request.validated["body"]
    library = request.find_service(ILibraryService)
    item, created = library.add_interaction(request.identity.caller, body["tmdb_id"], body["interaction_type"])
    request.response.status_int = 201 if created else 200
    return success(_interaction(request)(item), "Interaction recorded" if created else "Already recorded")


@interaction.delete(schema=schemas.path_request_schema(schemas.InteractionPath), permission=SELF,
                    error_codes=(401, 404))
def delete_interaction(request):
    library = request.find_service(ILibraryService)
    library.remove_interaction(request.identity.caller, request.validated["path"]["interaction_id"])
    return success(None, "Interaction deleted")


@recommendations.get(schema=schemas.request_schema(querystring=schemas.RecommendationsQuery),
                     returns=present.RecommendationPage, meta=present_jobs.RecommendationMeta, permission=SELF,
                     error_codes=(401, 503))
def get_recommendations(request):
    query = request.validated["querystring"]
    page, per_page = query["page"], query["per_page"]
    user = request.identity.caller
    ranked, model = request.find_service(ILibraryService).recommendations(user)
    start = (page - 1) * per_page
    shown = ranked[start:start + per_page]
    settings = request.registry.settings
    # Ranked once per user (cached) on the mirror's default language; the page follows the caller's.
    movies, meta = request.find_service(IMovieService).localize(
        [r["movie"] for r in shown], query.get("language"), settings["library.fetch_concurrency"],
        settings["library.fetch_budget"])
    shown = [{**r, "movie": m} for r, m in zip(shown, movies)]
    if page == 1:  # the first picks a user sees: recorded (sampled) for the online evaluation.
        # Last: the record holds the user's lock on their picks until the commit that follows,
        # not through the language look-ups above (they may wait for TMDb).
        OnlineEvaluation(request.dbsession, settings["online_eval.sample_rate"],
                         settings["online_eval.window"]).record(user, ranked, model["version"])
    return success(paging.page(shown, page, per_page, len(ranked)), meta={**meta, "model": model})
