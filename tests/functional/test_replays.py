"""Replays (issue 13): a cached movie response asked again by an anonymous GET is answered by
the outermost tween from what the full path made, with the same bytes and headers, while
its cache entry, the blocked titles' version and the genre names are unchanged."""
from __future__ import annotations

import io
import json
import logging
import time

import pytest
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.api import cached
from nexus_pyramid.interfaces import IBlocklist, ICachedPages, IGenreNames, IMovieSource, find_service
from tests.conftest import fresh_services, make_settings

ROUTES = ["/api/movies/trending", "/api/movies/trending?window=week&page=1", "/api/movies/603",
          "/api/movies/603/recommendations", "/api/movies/search?query=matrix", "/api/genres",
          "/api/movies/discover?genre_ids=28&sort=rating"]
PER_REQUEST = {"X-Request-ID"}


@pytest.fixture
def full_path(monkeypatch):
    """Counts the responses the views make (every full-path movie response renders)."""
    made = []
    real = cached.render
    monkeypatch.setattr(cached, "render", lambda *a, **k: made.append(1) or real(*a, **k))
    return made


def same_headers(a, b) -> dict:
    """The headers of two responses that differ, besides the request id and max-age's second."""
    differ = {}
    for name in set(a.headers) | set(b.headers):
        if name in PER_REQUEST:
            continue
        left, right = a.headers.get(name), b.headers.get(name)
        if name == "Cache-Control" and left and right:
            left, right = left.rsplit("=", 1)[0], right.rsplit("=", 1)[0]
        if left != right:
            differ[name] = (left, right)
    return differ


@pytest.mark.parametrize("path", ROUTES)
def test_the_same_request_again_is_a_replay_with_the_same_bytes_and_headers(tmdb_testapp, tmdb_app, full_path,
                                                                           path):
    tmdb_testapp.get(path)  # from TMDb: a miss is never replayed (its body says "upstream")
    hit = tmdb_testapp.get(path)
    assert hit.headers["X-Cache"] == "HIT" and len(full_path) == 2
    stats = find_service(tmdb_app.registry, IMovieSource).stats
    hits = stats.hits
    again = tmdb_testapp.get(path)
    assert len(full_path) == 2  # no view ran
    assert again.body == hit.body and same_headers(again, hit) == {}
    assert again.headers["X-Request-ID"] != hit.headers["X-Request-ID"]
    assert stats.hits == hits + 1  # counted as the cache hit it is
    not_modified = tmdb_testapp.get(path, headers={"If-None-Match": hit.headers["ETag"]}, status=304)
    assert not_modified.body == b"" and not_modified.headers["ETag"] == hit.headers["ETag"]
    assert len(full_path) == 2


def test_only_anonymous_gets_without_a_body_are_replayed(tmdb_testapp, api, full_path):
    path = "/api/movies/trending"
    tmdb_testapp.get(path)
    tmdb_testapp.get(path)
    made = len(full_path)
    user = api.user()
    signed_in = tmdb_testapp.get(path, headers=api.auth(user["token"]))
    with_body = tmdb_testapp.get(path, extra_environ={"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")})
    head = tmdb_testapp.head(path)
    other_query = tmdb_testapp.get(path + "?page=1")
    assert len(full_path) == made + 4  # each went the full way
    assert signed_in.body == with_body.body == other_query.body and head.body == b""


def test_a_stale_copy_is_replayed_as_stale_while_the_failure_lasts(tmdb_testapp, tmdb_app, fake_tmdb, full_path,
                                                                   monkeypatch):
    path = "/api/movies/trending"
    fresh = tmdb_testapp.get(path)
    tmdb_testapp.get(path)
    source = find_service(tmdb_app.registry, IMovieSource)
    source.expire_all()
    fake_tmdb.set_mode("error", status=503)
    try:
        made = len(full_path)
        first = tmdb_testapp.get(path)  # the full path: TMDb fails, the copy is served stale
        assert len(full_path) == made + 1
        reads = []
        real_read = source.region.get_value_metadata
        monkeypatch.setattr(source.region, "get_value_metadata", lambda *a, **k: reads.append(1) or real_read(*a, **k))
        calls, stale_count = fake_tmdb.total_calls(), source.stats.stale
        for _ in range(3):
            again = tmdb_testapp.get(path)
            assert again.headers["X-Cache"] == "STALE" and again.json["meta"]["source"] == "stale"
            assert again.headers["Cache-Control"] == "public, max-age=0" and again.body == first.body
            assert again.json["data"] == fresh.json["data"]
        # Replayed: no view, no shared cache, no TMDb; counted as stale copies served.
        assert len(full_path) == made + 1 and reads == [] and fake_tmdb.total_calls() == calls
        assert source.stats.stale == stale_count + 3
        # Once the copy has had its moment (cache.local_ttl), the full path asks again.
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + source.local_ttl + 1)
        assert tmdb_testapp.get(path).headers["X-Cache"] == "STALE" and len(full_path) == made + 2 and reads
    finally:
        fake_tmdb.set_mode("ok")


def test_a_replay_ends_with_its_cache_entry_the_blocked_titles_or_the_genre_names(tmdb_testapp, tmdb_app, full_path,
                                                                                  monkeypatch):
    path = "/api/movies/trending"
    registry = tmdb_app.registry

    def replayed() -> bool:
        made = len(full_path)
        tmdb_testapp.get(path)
        return len(full_path) == made

    tmdb_testapp.get(path)
    tmdb_testapp.get(path)
    assert replayed()
    # The first level dropped the entry (expired, invalidated, purged): the full path.
    find_service(registry, IMovieSource).local.invalidate(hard=True)
    assert not replayed() and replayed()
    # The blocked titles' version is due for its check (once per interval): the full path checks it.
    blocklist = find_service(registry, IBlocklist)
    real_clock = blocklist.clock
    monkeypatch.setattr(blocklist, "clock", lambda: real_clock() + 3600)
    assert blocklist.peek() is None and not replayed()
    monkeypatch.setattr(blocklist, "clock", real_clock)
    blocklist.forget()  # this process changed the list
    assert not replayed() and replayed()
    # The genre names are due for a refresh.
    find_service(registry, IGenreNames).region.invalidate(hard=True)
    assert not replayed() and replayed()


def test_a_page_replays_while_the_genre_names_of_its_own_language_stay(tmdb_testapp, tmdb_app, full_path):
    english, french = "/api/movies/trending", "/api/movies/trending?language=fr-FR"

    def replayed(path) -> bool:
        made = len(full_path)
        tmdb_testapp.get(path)
        return len(full_path) == made

    for path in (english, french):
        tmdb_testapp.get(path)
        tmdb_testapp.get(path)
        assert replayed(path), path
    # New French names (as a refresh that brought other names): the French page is rendered
    # again, with them, then replayed; the English page goes on being replayed.
    names = find_service(tmdb_app.registry, IGenreNames)
    names.region.set("names:fr-FR", {**names.get("fr-FR"), 878: "SF"})
    assert replayed(english)
    assert not replayed(french) and replayed(french)
    sf = [g for m in tmdb_testapp.get(french).json["data"]["results"] for g in m["genres"] if g["id"] == 878]
    assert sf and all(g["name"] == "SF" for g in sf)


def test_a_first_level_refresh_takes_one_request_and_keeps_the_replay(tmdb_testapp, tmdb_app, full_path,
                                                                        monkeypatch):
    path = "/api/movies/trending"
    source = find_service(tmdb_app.registry, IMovieSource)
    tmdb_testapp.get(path)
    hit = tmdb_testapp.get(path)
    reads = []
    real_read = source.region.get_value_metadata
    monkeypatch.setattr(source.region, "get_value_metadata", lambda *a, **k: reads.append(1) or real_read(*a, **k))
    made = len(full_path)
    # Past half of cache.local_ttl: the entry is due for a refresh. One request goes to the
    # full path and reads the shared cache; the value there is the same generation, so the
    # entry is kept as it was, and the replays made from it stay good.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + source.local_ttl * 0.75)
    refreshing = tmdb_testapp.get(path)
    assert len(full_path) == made + 1 and len(reads) == 1 and refreshing.headers["X-Cache"] == "HIT"
    for _ in range(3):
        again = tmdb_testapp.get(path)
        assert again.body == hit.body and again.headers["X-Cache"] == "HIT"
    assert len(full_path) == made + 1 and len(reads) == 1


def test_a_blocked_title_leaves_replayed_pages_at_once(tmdb_testapp, api, full_path):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    first = tmdb_testapp.get("/api/movies/trending")
    victim = first.json["data"]["results"][0]["tmdb_id"]
    tmdb_testapp.get("/api/movies/trending")
    tmdb_testapp.post_json("/api/admin/blocked-movies", {"tmdb_id": victim, "reason": "Take-down"},
                           headers=api.auth(admin["token"]), status=201)
    after = tmdb_testapp.get("/api/movies/trending")
    assert victim not in [m["tmdb_id"] for m in after.json["data"]["results"]]
    tmdb_testapp.get(f"/api/movies/{victim}", status=404)


def test_a_replay_is_logged_and_carries_security_and_cors_headers(database_url, redis_url, committed, caplog):
    frontend = "https://app.example.com"
    app = make_app(make_settings(database_url, redis_url, **{"nexus.gc_freeze": "false"}),
                   environ={"NEXUS_CORS_ORIGINS": frontend})
    fresh_services(app)
    client = TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.31"})
    pages = find_service(app.registry, ICachedPages)
    answered = []
    real_answer = pages.answer
    pages.answer = lambda request, replay: answered.append(1) or real_answer(request, replay)
    client.get("/api/genres", headers={"Origin": frontend})
    full = client.get("/api/genres", headers={"Origin": frontend})
    with caplog.at_level(logging.INFO, logger="nexus.access"):
        replay = client.get("/api/genres", headers={"Origin": frontend, "X-Request-ID": "replay-1"})
        stranger = client.get("/api/genres", headers={"Origin": "https://evil.example.com"})
    assert len(answered) == 2
    assert same_headers(replay, full) == {}
    assert replay.headers["Access-Control-Allow-Origin"] == frontend and "Origin" in replay.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in stranger.headers
    assert replay.headers["X-Content-Type-Options"] == "nosniff" and replay.headers["X-Request-ID"] == "replay-1"
    assert "default-src 'none'" in replay.headers["Content-Security-Policy"]
    access = [r for r in caplog.records if r.name == "nexus.access" and "replay-1" in r.getMessage()]
    assert len(access) == 1 and access[0].route == "/api/genres" and access[0].status == 200
    assert json.loads(replay.body) == json.loads(full.body)
