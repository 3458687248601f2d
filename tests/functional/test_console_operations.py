"""The console's operations forms through webtest: CSRF on every one, admins only, the console
session of a suspended user ends, a suspended admin cannot sign in to the console."""
from __future__ import annotations

from tests.conftest import PASSWORD
from tests.functional.test_console import csrf, people, sign_in  # noqa: F401 (fixture)

MATRIX = 2571


def forms(user_id):
    return [(f"/admin/users/{user_id}/suspend", {"reason": "Spam"}), (f"/admin/users/{user_id}/reinstate", {}),
            ("/admin/movies/block", {"tmdb_id": str(MATRIX), "reason": "Take-down"}),
            ("/admin/movies/unblock", {"tmdb_id": str(MATRIX)}),
            ("/admin/cache/purge", {"kind": "genres"}),
            (f"/admin/users/{user_id}/roles", {"role": "admin", "action": "assign", "confirm": "yes"}),
            (f"/admin/users/{user_id}/sessions/end", {"session_id": "00000000-0000-4000-8000-000000000000"})]


def test_every_operations_form_needs_the_csrf_token(testapp, people, dbsession):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    for path, fields in forms(people["member"]["id"]):
        page = testapp.post(path, fields, status=400)
        assert "The form was not accepted" in page.text
        wrong = testapp.post(path, {**fields, "csrf_token": "forged"}, status=400)
        assert "The form was not accepted" in wrong.text
    from nexus_pyramid.models import BlockedMovie, User

    dbsession.rollback()
    assert dbsession.query(BlockedMovie).count() == 0
    assert dbsession.query(User).filter_by(email="member@example.com").one().suspended_at is None


def test_moderators_read_every_operations_page_and_change_nothing(testapp, people):  # noqa: F811
    sign_in(testapp, "mod@example.com")
    for path in ("/admin", "/admin/movies?q=matrix", "/admin/cache", f"/admin/users/{people['member']['id']}"):
        page = testapp.get(path)
        assert "Suspend</button>" not in page.text and "Purge" not in page.text and ">Block<" not in page.text
    token = csrf(testapp)
    for path, fields in forms(people["member"]["id"]):
        testapp.post(path, {**fields, "csrf_token": token}, status=403)


def test_granting_admin_needs_the_confirmation_step(testapp, people, dbsession):  # noqa: F811
    from tests.functional.test_console import roles_of

    sign_in(testapp, "admin@example.com")
    token = csrf(testapp)
    page = testapp.post(f"/admin/users/{people['member']['id']}/roles",
                        {"role": "admin", "action": "assign", "csrf_token": token}, status=200)
    assert "Make Mel Member an admin?" in page.text
    assert roles_of(dbsession, "member@example.com") == ["user"]
    # A moderator role needs no confirmation.
    testapp.post(f"/admin/users/{people['member']['id']}/roles",
                 {"role": "moderator", "action": "assign", "csrf_token": token}, status=302)
    assert roles_of(dbsession, "member@example.com") == ["user", "moderator"]


def test_a_suspended_admin_is_signed_out_of_the_console_and_cannot_sign_in(testapp, api, people):  # noqa: F811
    second = api.user(email="second@example.com", name="Second Admin", roles=("user", "admin"))
    sign_in(testapp, "second@example.com")
    testapp.get("/admin")
    # The first admin suspends the second through the API: the second's console session ends.
    api.app.post_json(f"/api/admin/users/{second['id']}/suspend", {"reason": "Compromised"},
                      headers=api.auth(people["admin"]["token"]))
    assert "/admin/login" in testapp.get("/admin", status=302).location
    page = sign_in(testapp, "second@example.com", PASSWORD, status=403)
    assert "This account is suspended." in page.text


def test_an_admin_ends_one_session_of_a_user_from_their_page(testapp, api, people, dbsession):  # noqa: F811
    from tests.functional.test_console import audit_rows

    phone = api.login(email="member@example.com", headers={"User-Agent": "NexusPhone/2.1"}).json["data"]
    laptop = api.login(email="member@example.com", headers={"User-Agent": "NexusLaptop/7"}).json["data"]
    sign_in(testapp, "admin@example.com")
    page = testapp.get(f"/admin/users/{people['member']['id']}")
    assert "NexusPhone/2.1" in page.text and "NexusLaptop/7" in page.text
    sessions = api.app.get("/api/user/sessions", headers=api.auth(phone["access_token"])).json["data"]
    phone_session = next(s["id"] for s in sessions if s["user_agent"] == "NexusPhone/2.1")
    form = next(f for f in page.forms.values() if f.fields.get("session_id")
                and f["session_id"].value == phone_session)
    form.submit(status=302)
    page = testapp.get(f"/admin/users/{people['member']['id']}")
    assert "NexusPhone/2.1" not in page.text and "NexusLaptop/7" in page.text
    assert "A session of member@example.com was ended" in page.text
    # The ended session's refresh token fails at once; the other one still refreshes.
    api.app.post_json("/api/auth/refresh", {"refresh_token": phone["refresh_token"]}, status=401)
    api.app.post_json("/api/auth/refresh", {"refresh_token": laptop["refresh_token"]}, status=200)
    assert ("admin@example.com", "session.end", "member@example.com", phone_session, "console") in audit_rows(dbsession)
    # Ending it again says so and changes nothing.
    page = testapp.post(f"/admin/users/{people['member']['id']}/sessions/end",
                        {"session_id": phone_session, "csrf_token": csrf(testapp)}, status=302).follow()
    assert "had already ended" in page.text


def test_moderators_see_sessions_without_the_end_button(testapp, api, people):  # noqa: F811
    api.login(email="member@example.com", headers={"User-Agent": "NexusPhone/2.1"})
    sign_in(testapp, "mod@example.com")
    page = testapp.get(f"/admin/users/{people['member']['id']}")
    assert "NexusPhone/2.1" in page.text and "End session</button>" not in page.text


def test_the_jobs_page_lists_runs_and_only_admins_start_them(testapp, api, people, dbsession):  # noqa: F811
    from tests.functional.test_console import audit_rows

    sign_in(testapp, "mod@example.com")
    page = testapp.get("/admin/jobs")
    assert "No jobs yet." in page.text and "Start</button>" not in page.text
    testapp.post("/admin/jobs/start", {"kind": "train_recommender", "csrf_token": csrf(testapp)}, status=403)
    testapp.post("/admin/logout", {"csrf_token": csrf(testapp)}, status=302)
    sign_in(testapp, "admin@example.com")
    testapp.post("/admin/jobs/start", {"kind": "train_recommender"}, status=400)  # no CSRF token
    unknown = testapp.post("/admin/jobs/start", {"kind": "format_disk", "csrf_token": csrf(testapp)},
                           status=302).follow()
    assert "Unknown job kind" in unknown.text and "No jobs yet." in unknown.text
    # jobs.mode = sync in the tests: the training ran when the form's transaction committed.
    done = testapp.post("/admin/jobs/start", {"kind": "train_recommender", "csrf_token": csrf(testapp)},
                        status=302).follow()
    assert "Job train_recommender queued." in done.text
    row = done.html.select("#jobs tbody tr")[0]
    assert row.select_one("td.state").text == "done" and "model_version" in row.text
    assert '<meta http-equiv="refresh"' not in done.text  # nothing under way: no refreshing
    assert testapp.get("/admin/jobs", {"kind": "import"}).html.select("#jobs tbody tr")[0].text.strip() == "No jobs yet."
    assert any(action == "job.start" and details.startswith("train_recommender ")
               for _actor, action, _target, details, _channel in audit_rows(dbsession))
