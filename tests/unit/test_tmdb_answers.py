"""TMDb's answers, field by field, as the client keeps them (movie_source/tmdb_answers.py)."""
from __future__ import annotations

import math

import pytest

from nexus_pyramid.movie_source import tmdb_answers as answers
from tests.fake_tmdb import MOVIES


@pytest.mark.parametrize("value,kept", [
    (603, 603), (1, 1), (2**31 - 1, 2**31 - 1),
    (0, None), (-5, None), (2**31, None), (True, None), (603.0, None), ("603", None), (None, None),
])
def test_an_id_is_a_positive_integer_that_fits_the_columns(value, kept):
    assert answers.identifier(value) == kept


def test_text_loses_what_postgresql_and_utf8_cannot_hold():
    assert answers.text("Amélie") == "Amélie"
    assert answers.text("a\x00b") == "ab"
    assert answers.text("a\ud800b") == "a?b"
    assert answers.text("a\ud800b").encode("utf-8") == b"a?b"
    assert answers.text("") == ""
    assert [answers.text(v) for v in (5, ["x"], {"a": 1}, None, b"x")] == [None] * 5
    assert answers.text("/p.jpg", answers.MAX_PATH) == "/p.jpg"
    assert answers.text("/" + "p" * 300, answers.MAX_PATH) is None


@pytest.mark.parametrize("value,kept", [
    (12, 12), (12.9, 12), (-3, 0), (10**30, 2**31 - 1), (1.5e300, 2**31 - 1),
    (math.nan, 0), (math.inf, 0), (True, 0), ("12", 0), ([1], 0), (None, 0),
])
def test_counts(value, kept):
    assert answers.count(value) == kept


def test_a_count_that_is_not_one_can_be_unknown():
    assert answers.count("90", None) is None and answers.count(90, None) == 90


@pytest.mark.parametrize("value,high,kept", [
    (7.5, 10, 7.5), (8, 10, 8.0), (99, 10, 10.0), (-1, 10, 0.0), (1e300, math.inf, 1e300),
    (math.inf, math.inf, 0.0), (math.nan, 10, 0.0), (10**400, math.inf, 0.0), ("7", 10, 0.0), (True, 10, 0.0),
    (None, 10, 0.0),
])
def test_scores_are_finite(value, high, kept):
    assert answers.score(value, high) == kept


@pytest.mark.parametrize("value,kept", [
    ("1999-03-30", "1999-03-30"), ("1999-03-30T00:00:00Z", "1999-03-30"), ("", None), ("0000-01-01", None),
    ("²⁰²⁰-01-01", None), ("1999-13-01", None), (1999, None), (["1999-03-30"], None), (None, None),
])
def test_dates_are_iso_or_unknown(value, kept):
    assert answers.day(value) == kept


def test_a_movie_of_a_page_keeps_what_the_app_reads_in_the_contract_s_types():
    raw = {**MOVIES[603], "title": 5, "overview": "a\x00b", "popularity": "high", "vote_average": 99,
           "vote_count": "many", "genre_ids": [28, "878", None, True, 2**40, 18], "adult": None,
           "release_date": "²⁰²⁰-01-01", "backdrop_path": "/b.jpg", "video": False, "media_type": "movie"}
    assert answers.movie_item(raw) == {
        "id": 603, "title": None, "original_title": "The Matrix", "overview": "ab", "release_date": None,
        "poster_path": "/poster603.jpg", "popularity": 0.0, "vote_average": 10.0, "vote_count": 0,
        "adult": False, "genre_ids": [28, 18]}


def test_an_adult_flag_that_is_not_a_boolean_hides_the_title():
    assert answers.movie_item({"id": 1, "adult": "no"})["adult"] is True
    assert answers.movie_item({"id": 1, "adult": 0})["adult"] is False
    assert answers.movie_item({"id": 1})["adult"] is False


def test_a_page_drops_items_without_a_usable_id_and_types_its_counts():
    data = {"page": "x", "total_pages": 1200, "total_results": "y",
            "results": [MOVIES[603], {"id": True}, {"id": 2**31}, {"id": "550"}, 5, None, {"title": "no id"},
                        MOVIES[550]]}
    page = answers.movie_page(data)
    assert [m["id"] for m in page["results"]] == [603, 550]
    assert (page["page"], page["total_pages"], page["total_results"]) == (1, 500, 0)


@pytest.mark.parametrize("data", [None, [], "x", {"results": "x"}, {"results": None}, {"page": 1}])
def test_what_is_not_a_page_is_unusable(data):
    with pytest.raises(answers.Unusable):
        answers.movie_page(data)


def test_a_movie_detail_types_its_genres_credits_runtime_and_tagline():
    raw = {**MOVIES[603], "genres": [{"id": 28, "name": "Action"}, {"id": 878}, {"name": "no id"}, "Drama"],
           "runtime": "136", "tagline": 7,
           "credits": {"cast": [{"id": 6384, "name": "Keanu Reeves", "character": "Neo", "order": 0},
                                {"id": "x", "name": 5, "order": "first"}, "nobody"],
                       "crew": [{"id": 9339, "name": "Lana Wachowski", "job": "Director"}, {"job": ["Director"]}]}}
    movie = answers.movie(raw)
    assert movie["genres"] == [{"id": 28, "name": "Action"}, {"id": 878, "name": None}]
    assert (movie["runtime"], movie["tagline"]) == (None, None)
    assert movie["credits"]["cast"] == [
        {"id": 6384, "name": "Keanu Reeves", "character": "Neo", "profile_path": None, "order": 0},
        {"id": None, "name": None, "character": None, "profile_path": None, "order": 999}]
    assert movie["credits"]["crew"] == [{"id": 9339, "name": "Lana Wachowski", "job": "Director"},
                                        {"id": None, "name": None, "job": None}]
    assert "genres" not in answers.movie({**MOVIES[603], "genres": "Action"})  # the page's genre_ids then
    assert "credits" not in answers.movie({**MOVIES[603], "credits": ["x"]})  # no credits: null cast


@pytest.mark.parametrize("data", [None, {"id": True}, {"id": 0}, {"title": "no id"}, [MOVIES[603]]])
def test_a_movie_without_a_usable_id_is_unusable(data):
    with pytest.raises(answers.Unusable):
        answers.movie(data)


def test_genre_lists_and_people():
    assert answers.genre_list({"genres": [{"id": 28, "name": "Action"}, {"id": 18}, {"name": "x"}, 3]}) == [
        {"id": 28, "name": "Action"}, {"id": 18, "name": None}]
    with pytest.raises(answers.Unusable):
        answers.genre_list({"genres": "Action"})
    people = answers.person_page({"results": [{"id": 6384, "name": "Keanu Reeves", "known_for_department": 1},
                                              {"id": False, "name": "x"}]})
    assert people["results"] == [{"id": 6384, "name": "Keanu Reeves", "known_for_department": None,
                                  "profile_path": None}]


# -- the shapes read back from the shared cache -----------------------------------------------
def test_what_the_client_and_the_catalog_make_is_of_the_shape_the_app_reads():
    from nexus_pyramid.movie_source.catalog import CatalogSource

    detail = answers.movie({**MOVIES[603], "genres": [{"id": 28, "name": "Action"}], "runtime": 136,
                            "credits": {"cast": [{"id": 6384, "name": "Keanu Reeves", "order": 0}],
                                        "crew": [{"id": 9339, "name": "Lana Wachowski", "job": "Director"}]}})
    assert answers.sound_movie(detail) and answers.sound_movie(answers.movie(MOVIES[550]))
    assert answers.sound_movie_page(answers.movie_page({"page": 1, "results": list(MOVIES.values())}))
    assert answers.sound_genre_list(answers.genre_list({"genres": [{"id": 28, "name": "Action"}, {"id": 18}]}))
    assert answers.sound_person_page(answers.person_page({"results": [{"id": 6384, "name": "Keanu Reeves"}]}))
    catalog = CatalogSource()
    first = catalog.trending("week", 1)
    assert first["results"] and answers.sound_movie_page(first)
    assert answers.sound_movie(catalog.movie(first["results"][0]["id"]))
    assert answers.sound_movie_page(catalog.search_movies("matrix", 1))
    assert answers.sound_genre_list(catalog.genres()) and answers.sound_person_page(catalog.search_people("x", 1))


PAGE = answers.movie_page({"page": 1, "results": [MOVIES[603]]})
ITEM = PAGE["results"][0]


@pytest.mark.parametrize("value", [
    None, [], "x", 3, {}, {"results": 3}, {"results": [1]}, {"results": [{}]}, {"results": [{"id": "603"}]},
    {**PAGE, "page": "1"}, {**PAGE, "total_pages": 1.5}, {**PAGE, "results": [{**ITEM, "title": 5}]},
    {**PAGE, "results": [{**ITEM, "popularity": "high"}]}, {**PAGE, "results": [{**ITEM, "vote_count": True}]},
    {**PAGE, "results": [{**ITEM, "poster_path": ["/p.jpg"]}]}, {**PAGE, "results": [{**ITEM, "genre_ids": [[28]]}]},
    {**PAGE, "results": [{**ITEM, "genre_ids": "28"}]}, {**PAGE, "results": [{**ITEM, "genres": [{"name": "x"}]}]},
], ids=repr)
def test_a_page_of_another_shape_is_not_read(value):
    assert not answers.sound_movie_page(value)


@pytest.mark.parametrize("value", [
    None, [], {}, PAGE, {**ITEM, "id": 0}, {**ITEM, "credits": "x"}, {**ITEM, "credits": {"cast": [{"order": "1"}]}},
    {**ITEM, "credits": {"cast": "x"}}, {**ITEM, "credits": {"crew": [3]}}, {**ITEM, "notes": "x"},
    {**ITEM, "notes": [3]}, {**ITEM, "runtime": "136"}, {**ITEM, "tagline": 7},
], ids=repr)
def test_a_movie_of_another_shape_is_not_read(value):
    assert not answers.sound_movie(value)


@pytest.mark.parametrize("value", [None, {}, {"genres": []}, [{"id": 28}], [{"id": "28", "name": "Action"}],
                                   [{"id": 28, "name": 5}], ["Action"]], ids=repr)
def test_a_genre_list_of_another_shape_is_not_read(value):
    assert not answers.sound_genre_list(value)


def test_a_user_s_cached_recommendations_of_another_shape_are_not_read():
    from nexus_pyramid.presenters.library import recommendation, sound_recommendations

    pick = recommendation({"tmdb_id": 603, "title": "The Matrix"}, 0.75, ["Because you liked Alien"])
    assert sound_recommendations([pick, {**pick, "score": 1}]) and sound_recommendations([])
    for wrong in (None, {}, [None], [{**pick, "movie": None}], [{**pick, "movie": {"tmdb_id": "603"}}],
                  [{**pick, "score": True}], [{**pick, "score": "0.7"}], [{**pick, "reasons": "x"}],
                  [{**pick, "reasons": [3]}], [pick, 5]):
        assert not sound_recommendations(wrong), wrong
