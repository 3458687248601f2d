"""An entry in the shared cache that this app did not write is a miss, never a 500.

Something else writing into the Redis database, or a release that framed its entries
otherwise, left values dogpile could not read: every request for the key failed, on every
worker, until the entry's hard limit (30 days). Here every string key the app wrote is
overwritten, and a second app (another worker: nothing of its own in memory) is asked.
"""
from __future__ import annotations

import time

import pytest
import redis as redis_lib
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IDatabaseEngine, IMovieSource, find_service
from nexus_pyramid.movie_source.cache import readable
from tests.conftest import TEST_REDIS_URL, Api, assert_error, tmdb_settings

pytestmark = [pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (the shared cache)"),
              pytest.mark.usefixtures("committed")]
ROUTES = ["/api/movies/trending", "/api/movies/603", "/api/movies/search?query=matrix", "/api/genres",
          "/api/movies/603/recommendations", "/api/movies/discover?genre=28"]
GARBAGE = [b"not json", b"\xff\xfe", b"{}", b"[1, 2, 3]", b"null", b"|", b'{"ct": "x", "v": 2}|[]',
           b'{"ct": 1e999, "v": 2}|[]', b'{"ct": 1.0}|{}', b'{"ct": 1.0, "v": 2}|not json',
           b'{"ct": 1.0, "v": 2}|\xff',
           # made in the year 33658: fresh until its hard limit, whatever it holds
           b'{"ct": 1e12, "v": 2}|{"results": []}']
# Framed as this app frames its entries, made a moment ago, of another shape than any key's value
# (an empty list is one: no genres, or a user's recommendations when there are none).
NOW = int(time.time())
WRONG_SHAPES = [b'{"ct": %d, "v": 2}|%s' % (NOW, payload) for payload in (
    b"{}", b'[{"movie": 1}]', b'"x"', b"null", b"3", b'{"results": 3}', b'{"results": [1]}',
    b'[{"movie": {"tmdb_id": 603}, "score": "high", "reasons": []}]',
    b'{"results": [{"id": "603", "title": "x"}], "page": 1}', b'[{"id": 28}]')]


@pytest.fixture
def spoiled(tmdb_testapp, dbsession, redis_url, database_url, fake_tmdb, request):
    """Every cache entry overwritten by ``request.param``; a fresh app and a user's headers."""
    api = Api(tmdb_testapp, dbsession)
    user = api.user()
    headers = api.auth(user["token"])
    for path in ROUTES:
        tmdb_testapp.get(path)
    tmdb_testapp.get("/api/user/recommendations", headers=headers)
    client = redis_lib.Redis.from_url(redis_url)
    keys = [k for k in client.keys("nexus:*") if client.type(k) == b"string"]
    assert any(k.startswith(b"nexus:movies:") for k in keys) and any(k.startswith(b"nexus:recs:") for k in keys)
    for key in keys:
        client.set(key, request.param)
    app = make_app(tmdb_settings(database_url, redis_url, fake_tmdb.base_url), environ={})
    yield TestApp(app), headers, client, keys
    client.close()
    # Its pool's connections go now, not when the collector finds the app: this module builds
    # two dozen of them, and PostgreSQL's max_connections (100) is shared by the whole suite.
    find_service(app.registry, IDatabaseEngine).dispose()


@pytest.mark.parametrize("spoiled", GARBAGE, indirect=True, ids=[repr(g)[2:20] for g in GARBAGE])
def test_an_unreadable_entry_is_made_again_and_replaced(spoiled):
    other, headers, client, keys = spoiled
    # Made again from TMDb (genres: already made again for the pages before it).
    assert [other.get(path).headers["X-Cache"] for path in ROUTES] == ["MISS"] * 3 + ["HIT"] + ["MISS"] * 2
    assert other.get("/api/user/recommendations", headers=headers).json["data"]["results"]
    rewritten = [k for k in keys if readable(client.get(k))]
    assert {k for k in rewritten if k.startswith(b"nexus:movies:")} == {k for k in keys if k.startswith(b"nexus:movies:")
                                                                       and not k.startswith(b"nexus:movies:404:")}


@pytest.mark.parametrize("spoiled", GARBAGE[:3] + WRONG_SHAPES[:2], indirect=True,
                         ids=["text", "bytes", "empty", "object of another shape", "list of another shape"])
def test_with_tmdb_down_an_unreadable_entry_is_a_503_envelope(spoiled, fake_tmdb):
    other, headers, _client, _keys = spoiled
    fake_tmdb.set_mode("error", status=503)
    for path in ROUTES:
        assert_error(other.get(path, status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert other.get("/api/user/recommendations", headers=headers).status_int == 200  # from the database


@pytest.mark.parametrize("spoiled", WRONG_SHAPES, indirect=True, ids=[repr(g)[22:50] for g in WRONG_SHAPES])
def test_an_entry_of_another_shape_is_made_again_and_replaced(spoiled):
    other, headers, client, keys = spoiled
    garbage = client.get(keys[0])
    assert [other.get(path).headers["X-Cache"] for path in ROUTES] == ["MISS"] * 3 + ["HIT"] + ["MISS"] * 2
    assert other.get("/api/user/recommendations", headers=headers).json["data"]["results"]
    replaced = {k for k in keys if client.get(k) != garbage}
    assert {k for k in keys if not k.startswith(b"nexus:movies:404:")} == replaced


@pytest.fixture
def racing(redis_url, database_url, fake_tmdb, request):
    """A fresh app whose cache region, each time a request gets to the key's lock, first has
    "another process" write ``request.param`` entries of another shape into that key: what the
    request then gets was read after its own check of the entry."""
    app = make_app(tmdb_settings(database_url, redis_url, fake_tmdb.base_url), environ={})
    region = find_service(app.registry, IMovieSource).region
    client = redis_lib.Redis.from_url(redis_url)
    original, written = region.get_or_create, []

    def meanwhile(key, creator, *args, **kwargs):
        if len(written) < request.param:
            written.append(region.key_mangler(key))
            client.set(written[-1], WRONG_SHAPES[0])
        return original(key, creator, *args, **kwargs)

    region.get_or_create = meanwhile
    yield TestApp(app), written, client
    client.close()
    find_service(app.registry, IDatabaseEngine).dispose()


@pytest.mark.parametrize("racing", [1], indirect=True)
def test_an_entry_written_while_a_request_waited_is_checked_too(racing):
    app, written, client = racing
    movie = app.get("/api/movies/603")
    assert movie.json["data"]["tmdb_id"] == 603 and movie.headers["X-Cache"] == "MISS"  # made again
    assert len(written) == 1 and readable(client.get(written[0])) and client.get(written[0]) != WRONG_SHAPES[0]


@pytest.mark.parametrize("racing", [2], indirect=True)
def test_a_key_written_over_again_and_again_is_a_503_envelope(racing):
    app, written, _client = racing
    assert_error(app.get("/api/movies/603", status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert len(written) == 2
