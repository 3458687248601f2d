"""A user's own movie data: preferences, interaction, recommendation."""
from __future__ import annotations

import colander

from ..models import INTERACTION_TYPES
from .movies import Genre, Movie, Person, genres
from .schema import enum, integer, list_of, moment, number, page_of, string


class Preferences(colander.MappingSchema):
    ref = "Preferences"
    genres = list_of(Genre(name="genre"))
    actors = list_of(Person(name="actor"))
    movies = list_of(Movie(name="movie"))


class Interaction(colander.MappingSchema):
    ref = "Interaction"
    id = integer()
    interaction_type = enum(INTERACTION_TYPES)
    created_at = moment()
    movie = Movie()


class Recommendation(colander.MappingSchema):
    ref = "Recommendation"
    movie = Movie()
    score = number()
    reasons = list_of(string(name="reason"), description='Why, e.g. "Because you liked The Matrix"')


InteractionPage = page_of(Interaction, "InteractionPage")
RecommendationPage = page_of(Recommendation, "RecommendationPage")


class LanguageFacts(colander.MappingSchema):
    """``meta`` of a list of the user's movies asked for in a ``language``."""
    ref = "LanguageFacts"
    language = string(description="The language of titles and overviews (BCP 47)")
    notes = list_of(string(name="note"), missing=colander.drop,
                    description="Movies that could not be had in that language, or a source that has one only")


def preferences(prefs, movies) -> dict:
    """``services.library.Preferences`` (rows); ``movies``: a ``MoviePresenter``."""
    return {
        "genres": genres(prefs.genres),
        "actors": [{"id": a.person_id, "name": a.name} for a in prefs.actors],
        "movies": [movies.record(m) for m in prefs.movies],
    }


def interaction(item, movies) -> dict:
    """A ``models.UserMovieInteraction`` with its movie; ``movies``: a ``MoviePresenter``."""
    return {"id": item.id, "interaction_type": item.interaction_type, "created_at": item.created_at,
            "movie": movies.record(item.movie)}


def recommendation(movie: dict, score: float, reasons: list[str]) -> dict:
    """One ranked pick; ``movie`` already presented (the recommender shapes whole pages at once)."""
    return {"movie": movie, "score": score, "reasons": reasons}


_SCORE_TYPES = frozenset((int, float))  # a score as JSON gives it back


def sound_recommendations(value) -> bool:
    """Is ``value`` (read from the cache) a list of what ``recommendation`` makes, as far as the
    recommendations page reads it: each pick's movie by its id, its score, its reasons? By exact
    type, as JSON gives them: 100 picks are checked in some 35 µs (30 for a page of 20 movies)."""
    if type(value) is not list:
        return False
    for pick in value:
        if type(pick) is not dict:
            return False
        movie, score, reasons = pick.get("movie"), pick.get("score"), pick.get("reasons")
        if (type(movie) is not dict or type(movie.get("tmdb_id")) is not int or type(score) not in _SCORE_TYPES
                or type(reasons) is not list):
            return False
        for reason in reasons:
            if type(reason) is not str:
                return False
    return True
