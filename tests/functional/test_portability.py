"""Imports of Letterboxd / IMDb CSV exports (background jobs, sync mode here) and the JSON export."""
from __future__ import annotations

from tests.conftest import assert_error
from tests.functional.test_library import ALIENS, MATRIX, TOY_STORY, like, user  # noqa: F401

TOY_STORY2 = 3114
LETTERBOXD = (
    "Date,Name,Year,Letterboxd URI,Rating\n"
    "2024-01-02,Toy Story,1995,https://boxd.it/a,5\n"
    "2024-01-03,The Matrix,1999,https://boxd.it/b,4.5\n"
    "2024-01-04,Aliens,1986,https://boxd.it/c,3\n"
    "2024-01-05,A Film That Does Not Exist Anywhere,2001,https://boxd.it/d,4\n"
)
IMDB = (
    "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,"
    "Release Date,Directors\n"
    "tt0120363,9,2023-05-01,Toy Story 2,https://www.imdb.com/title/tt0120363/,movie,7.9,92,1999,"
    "\"Animation, Adventure\",600000,1999-11-24,John Lasseter\n"
    "tt0090605,6,2023-05-02,Aliens,https://www.imdb.com/title/tt0090605/,movie,8.4,137,1986,Action,750000,"
    "1986-07-18,James Cameron\n"
)


BOUNDARY = "----NexusFormBoundary7MA4YWxkTrZu0gW"


def multipart(fields: dict, files: dict) -> bytes:
    """A multipart/form-data body as browsers send it (webtest's boundary ends in '$', which RFC 2046 forbids)."""
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content) in files.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f'Content-Type: text/csv\r\n\r\n'.encode() + content + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def upload(api, who, content, filename="ratings.csv", fmt=None, status=202, with_file=True):
    if isinstance(content, str):
        content = content.encode()
    body = multipart({"format": fmt} if fmt else {}, {"file": (filename, content)} if with_file else {})
    return api.app.post("/api/user/imports", body, headers={**who.get("headers", {}),
                        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, status=status)


def state(api, who, import_id, status=200):
    return api.app.get(f"/api/user/imports/{import_id}", headers=who["headers"], status=status)


def interactions(api, who):
    """(title, type) of the user's interactions (titles: the suite's database may also hold TMDb's ids)."""
    data = api.app.get("/api/user/interactions", {"per_page": 100}, headers=who["headers"]).json["data"]
    return sorted((i["movie"]["title"], i["interaction_type"]) for i in data["results"])


def test_letterboxd_ratings_import_matches_by_title_and_year_and_is_idempotent(api, user):  # noqa: F811
    def recommended():
        page = api.app.get("/api/user/recommendations", {"per_page": 100}, headers=user["headers"]).json
        return {r["movie"]["tmdb_id"] for r in page["data"]["results"]}

    before = recommended()  # cached for this user until their data changes
    queued = upload(api, user, LETTERBOXD).json["data"]
    assert queued["state"] == "queued"
    done = state(api, user, queued["id"]).json["data"]
    assert done["state"] == "done" and done["progress"] == 1.0 and done["format"] == "letterboxd"
    assert (done["rows"], done["matched"], done["imported"]) == (4, 3, 3)
    assert done["unmatched"] == [{"line": 5, "title": "A Film That Does Not Exist Anywhere", "year": 2001}]
    assert interactions(api, user) == [("Aliens", "watched"), ("The Matrix", "liked"), ("Toy Story", "liked")]

    again = state(api, user, upload(api, user, LETTERBOXD).json["data"]["id"]).json["data"]
    assert (again["state"], again["matched"], again["imported"]) == ("done", 3, 0)
    assert len(interactions(api, user)) == 3
    # The imported likes drive the recommendations at once: the page cached before is stale.
    listed = api.app.get("/api/user/interactions", headers=user["headers"]).json["data"]["results"]
    imported = {i["movie"]["tmdb_id"] for i in listed}
    assert before & imported  # popular titles, recommended before the import
    assert not recommended() & imported


def test_a_blocked_title_is_not_imported_and_its_row_is_reported_unmatched(api, user, dbsession):  # noqa: F811
    from sqlalchemy import select

    from nexus_pyramid.models import Movie
    from tests.functional.test_blocked_movies import block

    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    # The catalog's id, and any other the suite's database holds the title under (TMDb's).
    matrix = {MATRIX, *dbsession.execute(select(Movie.tmdb_id).where(Movie.title == "The Matrix")).scalars()}
    for tmdb_id in matrix:
        block(api.app, admin, tmdb_id)
    done = state(api, user, upload(api, user, LETTERBOXD).json["data"]["id"]).json["data"]
    assert (done["state"], done["rows"], done["matched"], done["imported"]) == ("done", 4, 2, 2)
    assert done["unmatched"] == [{"line": 3, "title": "The Matrix", "year": 1999},
                                 {"line": 5, "title": "A Film That Does Not Exist Anywhere", "year": 2001}]
    assert interactions(api, user) == [("Aliens", "watched"), ("Toy Story", "liked")]
    # Once unblocked, the same file brings it in.
    for tmdb_id in matrix:
        api.app.delete(f"/api/admin/blocked-movies/{tmdb_id}", headers=api.auth(admin["token"]))
    again = state(api, user, upload(api, user, LETTERBOXD).json["data"]["id"]).json["data"]
    assert (again["matched"], again["imported"]) == (3, 1)
    assert ("The Matrix", "liked") in interactions(api, user)


def test_imdb_ratings_and_a_letterboxd_watchlist(api, user):  # noqa: F811
    done = state(api, user, upload(api, user, IMDB, fmt="imdb").json["data"]["id"]).json["data"]
    assert (done["format"], done["matched"], done["imported"]) == ("imdb", 2, 2)
    watchlist = "Date,Name,Year,Letterboxd URI\n2024-02-01,The Matrix,1999,https://boxd.it/b\n"
    listed = state(api, user, upload(api, user, watchlist, filename="watchlist.csv").json["data"]["id"]).json["data"]
    assert listed["imported"] == 1
    assert interactions(api, user) == [("Aliens", "watched"), ("The Matrix", "bookmarked"), ("Toy Story 2", "liked")]


def test_malformed_files_are_400_with_the_lines_at_fault(api, user):  # noqa: F811
    bad_year = LETTERBOXD.replace("1986", "nineteen").replace(",4\n", ",11\n")
    body = assert_error(upload(api, user, bad_year, status=400), 400, "VALIDATION_ERROR")
    assert body["details"]["lines"] == ["4", "5"]
    assert "line 4: year 'nineteen' is not a year" in body["details"]["file"]
    body = assert_error(upload(api, user, b"\x89PNG\r\n\x1a\n\x00\x00binary", status=400), 400, "VALIDATION_ERROR")
    assert body["details"]["lines"] == ["1"]
    body = assert_error(upload(api, user, "title,when\nx,y\n", status=400), 400, "VALIDATION_ERROR")
    assert body["details"]["lines"] == ["1"]
    assert_error(upload(api, user, IMDB, fmt="letterboxd", status=400), 400, "VALIDATION_ERROR")
    assert_error(upload(api, user, LETTERBOXD, fmt="netflix", status=400), 400, "VALIDATION_ERROR")
    assert_error(upload(api, user, "Date,Name,Year,Letterboxd URI,Rating\n", status=400), 400, "VALIDATION_ERROR")
    assert_error(upload(api, user, "", fmt="auto", with_file=False, status=400), 400, "VALIDATION_ERROR")
    assert_error(api.app.post_json("/api/user/imports", {"file": "x"}, headers=user["headers"], status=415),
                 415, "UNSUPPORTED_MEDIA_TYPE")
    assert interactions(api, user) == []


def test_import_size_limit_and_ownership(api, user):  # noqa: F811
    big = LETTERBOXD + "2024-01-05,Filler,2001,https://boxd.it/d,4\n" * (5 * 1024 * 1024 // 40)
    body = assert_error(upload(api, user, big, status=413), 413, "PAYLOAD_TOO_LARGE")
    assert body["details"]["max_bytes"] >= 5 * 1024 * 1024
    mine = upload(api, user, LETTERBOXD).json["data"]["id"]
    other = api.user(email="other@example.com")
    assert_error(state(api, {"headers": api.auth(other["token"])}, mine, status=404), 404, "NOT_FOUND")
    assert_error(state(api, user, "4f7a2a7e-3c1b-4f0e-9a55-1d2c3b4a5f60", status=404), 404, "NOT_FOUND")
    assert_error(state(api, user, "nope", status=400), 400, "VALIDATION_ERROR")
    assert_error(upload(api, {}, LETTERBOXD, status=401), 401, "AUTHENTICATION_REQUIRED")


def test_a_body_of_many_parts_is_refused_before_it_is_parsed(api, user, dbsession):  # noqa: F811
    """The form parser costs tens of microseconds a part: 5 MiB of tiny parts held a thread for seconds."""
    from nexus_pyramid.models.jobs import Job
    from nexus_pyramid.request_limits import MAX_MULTIPART_PARTS

    fields = {f"x{n}": "y" for n in range(MAX_MULTIPART_PARTS)}
    body = multipart(fields, {"file": ("ratings.csv", LETTERBOXD.encode())})
    response = api.app.post("/api/user/imports", body, headers={**user["headers"],
                            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, status=400)
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["details"]["body"] == [f"{MAX_MULTIPART_PARTS + 1} parts"]
    dbsession.rollback()
    assert dbsession.query(Job).count() == 0
    # As many parts as allowed (unknown fields are ignored): taken.
    fields.pop("x0")
    body = multipart(fields, {"file": ("ratings.csv", LETTERBOXD.encode())})
    api.app.post("/api/user/imports", body, headers={**user["headers"],
                 "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, status=202)


def test_export_holds_profile_preferences_and_every_interaction(api, user):  # noqa: F811
    like(api, user, MATRIX)
    like(api, user, ALIENS, kind="not_interested")
    api.app.post_json("/api/user/preferences", {"genre_ids": [878]}, headers=user["headers"])
    response = api.app.get("/api/user/export", headers=user["headers"])
    assert response.headers["Cache-Control"] == "no-store"
    data = response.json["data"]
    assert data["user"]["email"] == "ann@example.com" and data["exported_at"]
    assert [g["id"] for g in data["preferences"]["genres"]] == [878]
    assert [(i["movie"]["tmdb_id"], i["interaction_type"]) for i in data["interactions"]] == [
        (ALIENS, "not_interested"), (MATRIX, "liked")]
    assert_error(api.app.get("/api/user/export", status=401), 401, "AUTHENTICATION_REQUIRED")
