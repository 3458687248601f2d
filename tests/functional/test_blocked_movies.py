"""Blocked titles (issue 15): gone for everyone from trending, search, details, recommendations
(the user's and a movie's), cached pages included, until unblocked; admin writes, moderators read;
audited."""
from __future__ import annotations

import pytest

from tests.conftest import assert_error

MATRIX = 2571  # the offline catalog's id


@pytest.fixture
def admin(api):
    return api.user(email="admin@example.com", name="Root Admin", roles=("user", "admin"))


def ids(response) -> list[int]:
    return [m["tmdb_id"] for m in response.json["data"]["results"]]


def block(app, admin, tmdb_id, reason="Take-down notice", status=201):
    return app.post_json("/api/admin/blocked-movies", {"tmdb_id": tmdb_id, "reason": reason},
                         headers={"Authorization": f"Bearer {admin['token']}"}, status=status)


def test_a_blocked_title_disappears_everywhere_until_unblocked(api, admin, dbsession):
    from nexus_pyramid.movie_source.genres import TMDB_GENRES
    from nexus_pyramid.services.movies import upsert_genres

    upsert_genres(dbsession, TMDB_GENRES)
    dbsession.commit()
    app = api.app
    headers = api.auth(admin["token"])
    found = ids(app.get("/api/movies/search", {"query": "matrix"}))
    assert MATRIX in found
    trending = ids(app.get("/api/movies/trending", {"window": "week"}))
    victim = trending[0]
    assert app.get("/api/movies/trending", {"window": "week"}).headers["X-Cache"] == "HIT"
    # A user whose recommendations include the victim (a newcomer gets the popular titles).
    recs = [r["movie"]["tmdb_id"] for r in app.get("/api/user/recommendations", {"per_page": 50},
                                                   headers=headers).json["data"]["results"]]
    assert recs
    rec_victim = recs[0]
    by_movie = ids(app.get(f"/api/movies/{MATRIX}/recommendations"))
    neighbour = by_movie[0]

    for tmdb_id in {MATRIX, victim, rec_victim, neighbour}:
        body = block(app, admin, tmdb_id).json["data"]
        assert body["tmdb_id"] == tmdb_id and body["reason"] == "Take-down notice"
        assert body["blocked_by"] == "admin@example.com" and body["title"]
    # Blocking again is idempotent: 200 with the row that exists.
    assert block(app, admin, MATRIX, "again", status=200).json["data"]["reason"] == "Take-down notice"

    # The cached pages are filtered too.
    assert MATRIX not in ids(app.get("/api/movies/search", {"query": "matrix"}))
    week = app.get("/api/movies/trending", {"window": "week"})
    assert week.headers["X-Cache"] == "HIT" and victim not in ids(week)
    assert_error(app.get(f"/api/movies/{MATRIX}", status=404), 404, "MOVIE_NOT_FOUND")
    assert_error(app.get(f"/api/movies/{MATRIX}/recommendations", status=404), 404, "MOVIE_NOT_FOUND")
    other = next(m for m in trending if m not in {MATRIX, victim, rec_victim, neighbour})
    assert not {MATRIX, victim, rec_victim, neighbour} & set(ids(app.get(f"/api/movies/{other}/recommendations")))
    recs_now = [r["movie"]["tmdb_id"] for r in app.get("/api/user/recommendations", {"per_page": 50},
                                                       headers=headers).json["data"]["results"]]
    assert rec_victim not in recs_now and recs_now

    listed = app.get("/api/admin/blocked-movies", headers=headers).json["data"]
    assert listed["total_results"] == len({MATRIX, victim, rec_victim, neighbour})

    app.delete(f"/api/admin/blocked-movies/{MATRIX}", headers=headers)
    assert MATRIX in ids(app.get("/api/movies/search", {"query": "matrix"}))
    app.get(f"/api/movies/{MATRIX}")
    assert_error(app.delete(f"/api/admin/blocked-movies/{MATRIX}", headers=headers, status=404), 404, "NOT_FOUND")

    from nexus_pyramid.models import AuditLogEntry

    dbsession.rollback()
    actions = [(e.action, e.details, e.actor_email) for e in dbsession.query(AuditLogEntry)]
    assert sum(1 for a in actions if a[0] == "movie.block") == len({MATRIX, victim, rec_victim, neighbour})
    assert any(a[0] == "movie.unblock" and f"tmdb_id {MATRIX} (The Matrix" in a[1] for a in actions)


def test_blocking_needs_admin_and_valid_input(api, admin):
    moderator = api.user(email="mod@example.com", roles=("user", "moderator"))
    app = api.app
    assert_error(block(app, moderator, MATRIX, status=403), 403, "FORBIDDEN")
    app.get("/api/admin/blocked-movies", headers=api.auth(moderator["token"]))
    assert_error(app.get("/api/admin/blocked-movies", status=401), 401, "AUTHENTICATION_REQUIRED")
    user = api.user(email="user@example.com")
    assert_error(app.get("/api/admin/blocked-movies", headers=api.auth(user["token"]), status=403), 403, "FORBIDDEN")
    assert_error(block(app, admin, MATRIX, "", status=400), 400, "VALIDATION_ERROR")
    assert_error(block(app, admin, "603", status=400), 400, "VALIDATION_ERROR")
    assert_error(block(app, admin, 0, status=400), 400, "VALIDATION_ERROR")
    # The source does not know this id: nothing to block.
    assert_error(block(app, admin, 9_999_999, status=404), 404, "MOVIE_NOT_FOUND")
    assert_error(app.delete("/api/admin/blocked-movies/abc", headers=api.auth(admin["token"]), status=400),
                 400, "VALIDATION_ERROR")


def test_blocked_on_the_tmdb_source_cached_in_redis(tmdb_testapp, api, fake_tmdb):
    from tests.conftest import Api

    tmdb = Api(tmdb_testapp, api.db)
    admin = tmdb.user(email="admin@example.com", roles=("user", "admin"))
    assert 603 in ids(tmdb_testapp.get("/api/movies/trending"))
    calls = fake_tmdb.calls["/3/trending/movie/day"]
    block(tmdb_testapp, admin, 603)
    page = tmdb_testapp.get("/api/movies/trending")
    assert page.headers["X-Cache"] == "HIT" and 603 not in ids(page) and ids(page)
    assert fake_tmdb.calls["/3/trending/movie/day"] == calls  # filtered from the cache, not refetched
    assert_error(tmdb_testapp.get("/api/movies/603", status=404), 404, "MOVIE_NOT_FOUND")
    assert 603 not in ids(tmdb_testapp.get("/api/movies/search", {"query": "matrix"}))


def test_blocking_changes_the_etag_of_cached_pages(api, admin):
    # A client holding a page's ETag must not keep showing a title blocked since: the rendered
    # bytes and their ETag depend on the blocklist's version.
    app = api.app
    app.get("/api/movies/trending", {"window": "week"})  # a miss: its body says "upstream"
    week = app.get("/api/movies/trending", {"window": "week"})
    etag, victim = week.headers["ETag"], ids(week)[0]
    app.get("/api/movies/trending", {"window": "week"}, headers={"If-None-Match": etag}, status=304)
    block(app, admin, victim)
    again = app.get("/api/movies/trending", {"window": "week"}, headers={"If-None-Match": etag}, status=200)
    assert again.headers["X-Cache"] == "HIT" and again.headers["ETag"] != etag and victim not in ids(again)
    app.delete(f"/api/admin/blocked-movies/{victim}", headers=api.auth(admin["token"]))
    back = app.get("/api/movies/trending", {"window": "week"}, headers={"If-None-Match": again.headers["ETag"]},
                   status=200)
    assert victim in ids(back)


def test_a_blocked_title_cannot_be_liked_and_an_earlier_like_can_be_undone(api, admin):
    app = api.app
    ann = api.user(email="ann@example.com")
    headers = api.auth(ann["token"])
    earlier = app.post_json("/api/user/interactions", {"tmdb_id": MATRIX, "interaction_type": "liked"},
                            headers=headers, status=201).json["data"]
    block(app, admin, MATRIX)
    for kind in ("liked", "watched", "bookmarked", "not_interested"):
        assert_error(app.post_json("/api/user/interactions", {"tmdb_id": MATRIX, "interaction_type": kind},
                                   headers=headers, status=404), 404, "MOVIE_NOT_FOUND")
    # What the user did before the block stays theirs, and they may still remove it.
    app.delete(f"/api/user/interactions/{earlier['id']}", headers=headers, status=200)
    app.delete(f"/api/admin/blocked-movies/{MATRIX}", headers=api.auth(admin["token"]))
    app.post_json("/api/user/interactions", {"tmdb_id": MATRIX, "interaction_type": "liked"},
                  headers=headers, status=201)


def test_a_blocked_title_cannot_be_saved_as_a_preference(api, admin):
    app = api.app
    headers = api.auth(api.user(email="bo@example.com")["token"])
    block(app, admin, MATRIX)
    response = app.post_json("/api/user/preferences", {"movie_ids": [MATRIX, 999_999_001, MATRIX]},
                             headers=headers, status=400)
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert details["unknown_movie_ids"] == [MATRIX, 999_999_001]  # as an unknown id: in the order given, once
    assert app.get("/api/user/preferences", headers=headers).json["data"]["movies"] == []
    app.delete(f"/api/admin/blocked-movies/{MATRIX}", headers=api.auth(admin["token"]))
    saved = app.post_json("/api/user/preferences", {"movie_ids": [MATRIX]}, headers=headers).json["data"]
    assert [m["tmdb_id"] for m in saved["movies"]] == [MATRIX]


def test_the_version_moves_by_one_per_bump_in_a_single_statement(dbsession):
    """The first bump creates the row, each later one adds one; each is one statement."""
    from sqlalchemy import delete, event

    from nexus_pyramid.models import AppMeta
    from nexus_pyramid.services.blocklist import VERSION_KEY, bump_version, read_version

    dbsession.execute(delete(AppMeta).where(AppMeta.key == VERSION_KEY))
    assert read_version(dbsession) == 0
    statements = []
    connection = dbsession.connection()
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(connection, "before_cursor_execute", listener)
    try:
        for expected in (1, 2, 3):
            statements.clear()
            bump_version(dbsession)
            assert len(statements) == 1, statements
            assert read_version(dbsession) == expected
    finally:
        event.remove(connection, "before_cursor_execute", listener)


def test_a_deleted_administrators_address_leaves_the_blocked_titles(api, admin, dbsession):
    """Whichever way an administrator's account is deleted (by another admin through the API or
    the console, or by themself), the titles they blocked stay blocked, and the list names them
    by id (as the audit log does), not by their address."""
    import uuid

    from nexus_pyramid.models import BlockedMovie
    from tests.conftest import PASSWORD
    from tests.functional.test_console import csrf, sign_in

    app = api.app
    headers = api.auth(admin["token"])
    titles = [MATRIX] + [t for t in ids(app.get("/api/movies/trending", {"window": "week"})) if t != MATRIX][:3]
    blockers = {how: api.user(email=f"{how}@example.com", name=f"Blocker {how}", roles=("user", "admin"))
                for how in ("by-api", "by-console", "by-self")}
    for tmdb_id, blocker in zip(titles, [*blockers.values(), admin]):
        assert block(app, blocker, tmdb_id).json["data"]["blocked_by"] == blocker["email"]
    app.delete(f"/api/admin/users/{blockers['by-api']['id']}", headers=headers)
    sign_in(app, "admin@example.com")
    app.post(f"/admin/users/{blockers['by-console']['id']}/delete", {"csrf_token": csrf(app), "confirm": "yes"},
             status=302).follow()  # the flash naming the address is shown here, once
    app.delete_json("/api/user/profile", {"current_password": PASSWORD},
                    headers=api.auth(blockers["by-self"]["token"]))

    labels = [f"(deleted user {blocker['id']})" for blocker in blockers.values()]
    listed = app.get("/api/admin/blocked-movies", headers=headers)
    assert {b["tmdb_id"]: b["blocked_by"] for b in listed.json["data"]["results"]} == dict(
        zip(titles, [*labels, "admin@example.com"]))
    page = app.get("/admin/movies").text
    for label in labels:
        assert f"<td>{label}</td>" in page
    assert "<td>admin@example.com</td>" in page
    for gone in blockers:
        assert f"{gone}@example.com" not in listed.text and f"{gone}@example.com" not in page
    # Still blocked; the link to the account went with it (ON DELETE SET NULL).
    assert_error(app.get(f"/api/movies/{MATRIX}", status=404), 404, "MOVIE_NOT_FOUND")
    dbsession.rollback()
    rows = {row.tmdb_id: (row.blocked_by_id, row.blocked_by_email) for row in dbsession.query(BlockedMovie)}
    assert rows == {**{t: (None, label) for t, label in zip(titles, labels)},
                    titles[3]: (uuid.UUID(admin["id"]), "admin@example.com")}
