"""The numbers and dates of an import file: only what the exports write is read as one.

``float`` alone also reads ``inf``, ``nan``, ``1e999``, ``1_000`` and other scripts' digits;
an infinite year made the upload a 500 (``int(inf)``), other spellings went through."""
from __future__ import annotations

import pytest

from nexus_pyramid.errors import ValidationError
from nexus_pyramid.jobs.imports import parse
from tests.conftest import assert_error
from tests.functional.test_library import user  # noqa: F401
from tests.functional.test_portability import state, upload

HUGE = "9" * 5000


def letterboxd(year="1999", rating="4", date="2020-01-01") -> bytes:
    return f"Date,Name,Year,Letterboxd URI,Rating\n{date},The Matrix,{year},https://boxd.it/x,{rating}\n".encode()


def imdb(year="1999", rating="8", date="2020-01-01") -> bytes:
    return f"Const,Your Rating,Date Rated,Title,Year\ntt0133093,{rating},{date},The Matrix,{year}\n".encode()


def problems(data: bytes) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse(data)
    return caught.value.details["file"]


@pytest.mark.parametrize("file", [letterboxd, imdb])
@pytest.mark.parametrize("year", ["inf", "-inf", "1e999", HUGE, "Infinity", "1_999", "１９９９", "1.999e3", "+1999"])
def test_a_year_not_written_as_one_is_a_400_naming_it(file, year):
    assert problems(file(year=year)) == [f"line 2: year {year[:20]!r} is not a year"]


@pytest.mark.parametrize("file, rating, scale", [(letterboxd, "0_5", 5), (letterboxd, "４", 5), (imdb, "1_0", 10),
                                                 (imdb, "１０", 10), (imdb, "1e1", 10), (imdb, "+8", 10)])
def test_a_rating_not_written_as_one_is_a_400_naming_it(file, rating, scale):
    assert problems(file(rating=rating)) == [f"line 2: rating {rating[:20]!r} is not between 0 and {scale}"]


@pytest.mark.parametrize("date", ["0001-01-01", "1869-12-31", "２０２０-01-01"])
def test_a_date_before_films_or_in_other_digits_is_not_kept(date):
    """A date in year 1 falls before year 1 in a time zone west of UTC: no driver reads it back."""
    assert parse(letterboxd(date=date))["rows"][0]["at"] is None
    assert parse(imdb(date=date))["rows"][0]["at"] is None
    assert parse(letterboxd(date="1870-01-01"))["rows"][0]["at"] == "1870-01-01T00:00:00+00:00"


def test_an_infinite_year_uploaded_is_a_400_as_nan_is(api, user):  # noqa: F811
    for year in ("inf", "-inf", "1e999", HUGE, "nan", "1e308", "1999.5"):
        body = assert_error(upload(api, user, letterboxd(year=year), fmt="letterboxd", status=400),
                            400, "VALIDATION_ERROR")
        assert body["details"]["file"] == [f"line 2: year {year[:20]!r} is not a year"]
        assert body["details"]["lines"] == ["2"]
    for rating in ("inf", "nan", HUGE):
        body = assert_error(upload(api, user, imdb(rating=rating), status=400), 400, "VALIDATION_ERROR")
        assert body["details"]["file"] == [f"line 2: rating {rating[:20]!r} is not between 0 and 10"]
    assert [(r["year"], r["kind"]) for r in parse(
        letterboxd(year=" 1999 ", rating=" 4.5") + b"2020-01-02,Other,,https://boxd.it/y,0.5\n")["rows"]] == [
        (1999, "liked"), (None, "watched")]
    assert parse(imdb(year="1999.0", rating="10"))["rows"][0]["year"] == 1999


def test_a_year_1_date_is_stored_as_the_import_time(api, user):  # noqa: F811
    done = state(api, user, upload(api, user, letterboxd(date="0001-01-01")).json["data"]["id"]).json["data"]
    assert done["imported"] == 1
    listed = api.app.get("/api/user/interactions", headers=user["headers"]).json["data"]["results"]
    assert [i["movie"]["title"] for i in listed] == ["The Matrix"]
    assert listed[0]["created_at"] >= "2020"  # as for a row without a date
