"""Cached movie responses as rendered bytes: ETag, 304, Cache-Control, truthful cache facts."""
from __future__ import annotations

import re

import pytest

from nexus_pyramid.interfaces import IBlocklist, IMovieSource, find_service
from nexus_pyramid.services.blocklist import bump_version
from nexus_pyramid.services.movies import MovieService

ROUTES = ["/api/movies/trending", "/api/movies/603", "/api/movies/603/recommendations",
          "/api/movies/search?query=matrix", "/api/genres"]


def max_age(response) -> int:
    match = re.fullmatch(r"public, max-age=(\d+)", response.headers["Cache-Control"])
    assert match, response.headers["Cache-Control"]
    return int(match.group(1))


@pytest.mark.parametrize("path", ROUTES)
def test_every_cached_route_has_a_strong_etag_and_answers_304_with_no_body(tmdb_testapp, fake_tmdb, path):
    first = tmdb_testapp.get(path)
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9]+-[0-9a-f]{32}"', etag)
    assert first.headers["X-Cache"] == "MISS" and first.json["meta"]["source"] == "upstream"
    hit = tmdb_testapp.get(path)
    assert hit.headers["X-Cache"] == "HIT" and hit.json["meta"]["source"] == "cache"
    assert hit.json["data"] == first.json["data"]
    # The body says "cache" now, not "upstream": another body, another tag.
    assert hit.headers["ETag"] != etag
    calls = sum(fake_tmdb.calls.values())
    not_modified = tmdb_testapp.get(path, headers={"If-None-Match": hit.headers["ETag"]}, status=304)
    assert not_modified.body == b"" and "Content-Type" not in not_modified.headers
    assert not_modified.headers["ETag"] == hit.headers["ETag"] and not_modified.headers["X-Cache"] == "HIT"
    assert max_age(not_modified) > 0
    # A list of tags, a weak form of ours, or "*" match too; another tag does not.
    tmdb_testapp.get(path, headers={"If-None-Match": f'"nope", W/{hit.headers["ETag"]}'}, status=304)
    tmdb_testapp.get(path, headers={"If-None-Match": "*"}, status=304)
    again = tmdb_testapp.get(path, headers={"If-None-Match": '"0-00000000000000000000000000000000"'}, status=200)
    assert again.body == hit.body
    assert sum(fake_tmdb.calls.values()) == calls  # all served from the cache


def test_max_age_is_the_freshness_left(tmdb_testapp, tmdb_app, monkeypatch):
    source = find_service(tmdb_app.registry, IMovieSource)
    response = tmdb_testapp.get("/api/movies/trending")
    ttl = source.ttls["trending"]
    assert ttl - 2 <= max_age(response) <= ttl
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 600)  # ten minutes later, still fresh
    later = tmdb_testapp.get("/api/movies/trending")
    assert later.headers["X-Cache"] == "HIT"
    assert ttl - 602 <= max_age(later) <= ttl - 600


def test_the_same_bytes_are_served_until_the_entry_changes(tmdb_testapp, tmdb_app, monkeypatch):
    """A hit renders nothing: the page is shaped and encoded once per cache generation."""
    tmdb_testapp.get("/api/movies/trending")
    shaped = []
    real_page = MovieService.page_body
    monkeypatch.setattr(MovieService, "page_body", lambda self, *a, **k: shaped.append(1) or real_page(self, *a, **k))
    bodies = {tmdb_testapp.get("/api/movies/trending").body for _ in range(5)}
    assert len(bodies) == 1 and len(shaped) == 1  # the first hit renders the "cache" body once
    find_service(tmdb_app.registry, IMovieSource).expire_all()
    tmdb_testapp.get("/api/movies/trending")  # regenerated: a new generation, rendered again
    assert len(shaped) == 2


def test_a_stale_copy_is_still_marked_stale_and_never_fresh(tmdb_testapp, tmdb_app, fake_tmdb):
    hit = tmdb_testapp.get("/api/movies/trending")
    find_service(tmdb_app.registry, IMovieSource).expire_all()
    fake_tmdb.set_mode("error", status=503)
    try:
        for _ in range(2):  # the second one from the rendered bytes
            stale = tmdb_testapp.get("/api/movies/trending")
            assert stale.headers["X-Cache"] == "STALE" and stale.json["meta"]["source"] == "stale"
            assert stale.headers["Cache-Control"] == "public, max-age=0"
            assert stale.headers["ETag"] != hit.headers["ETag"]
        # A client holding the fresh copy's tag is told it changed (the copy is now stale).
        changed = tmdb_testapp.get("/api/movies/trending", headers={"If-None-Match": hit.headers["ETag"]})
        assert changed.status_int == 200 and changed.json["meta"]["source"] == "stale"
    finally:
        fake_tmdb.set_mode("ok")


def test_a_new_render_epoch_renders_again_with_new_etags(tmdb_testapp, tmdb_app, dbsession):
    """The hook for data that filters pages (the blocked titles' version): every tag changes with it,
    replays included."""
    tmdb_testapp.get("/api/movies/trending")
    before = tmdb_testapp.get("/api/movies/trending")
    assert before.headers["ETag"] == tmdb_testapp.get("/api/movies/trending").headers["ETag"]  # a replay
    bump_version(dbsession)
    find_service(tmdb_app.registry, IBlocklist).forget()  # as a change in this process does
    after = tmdb_testapp.get("/api/movies/trending")
    assert after.headers["ETag"].startswith('"1-') and before.headers["ETag"].startswith('"0-')
    tmdb_testapp.get("/api/movies/trending", headers={"If-None-Match": before.headers["ETag"]}, status=200)


def test_a_signed_in_search_is_private_and_varies_on_authorization(tmdb_testapp, api):
    anonymous = tmdb_testapp.get("/api/movies/search?query=matrix")
    assert anonymous.headers["Vary"] == "Authorization"
    user = api.user()
    signed_in = tmdb_testapp.get("/api/movies/search?query=matrix", headers=api.auth(user["token"]))
    assert re.fullmatch(r"private, max-age=\d+", signed_in.headers["Cache-Control"])


def test_a_cache_hit_writes_nothing_to_the_mirror(tmdb_testapp, monkeypatch):
    tmdb_testapp.get("/api/movies/trending")
    tmdb_testapp.get("/api/movies/603")
    writes = []
    monkeypatch.setattr(MovieService, "mirror_best_effort", lambda self, raws: writes.append(raws))
    monkeypatch.setattr(MovieService, "mirror", lambda self, raws: writes.append(raws))
    for path in ("/api/movies/trending", "/api/movies/603"):
        assert tmdb_testapp.get(path).headers["X-Cache"] == "HIT"
    assert writes == []


def test_error_bodies_and_json_bodies_keep_the_envelope(testapp):
    missing = testapp.get("/api/nope", status=404)
    assert set(missing.json) == {"status", "message", "code", "details"}
    assert missing.content_type == "application/json"
