"""Defects a probe found, each checked through the API."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from nexus_pyramid.models import AccountToken, User
from nexus_pyramid.services.accounts import RESET, VERIFY, issue_link
from nexus_pyramid.services.tokens import hash_refresh_token
from tests.conftest import PASSWORD, assert_error
from tests.functional.test_library import user  # noqa: F401 (fixture)
from tests.functional.test_portability import BOUNDARY, LETTERBOXD, multipart

NEW_PASSWORD = "second password 22"
ATTACKER_PASSWORD = "attacker password 1"


# -- a password-reset link ends with every session of its user ------------------------------------
def link(api, email: str, purpose: str = RESET) -> str:
    """A link token as the mailer's job issues it (``issue_link``), committed for the app to see."""
    api.db.rollback()
    user = api.db.execute(select(User).where(User.email == email)).scalar_one()
    token = issue_link(api.db, user, purpose, 1800)
    api.db.commit()
    return token


def confirm(api, token: str, status: int):
    body = {"token": token, "password": ATTACKER_PASSWORD}
    return api.app.post_json("/api/auth/password-reset/confirm", body, status=status)


def change_password(api, ann):
    api.app.put_json("/api/user/profile", {"password": NEW_PASSWORD, "current_password": PASSWORD},
                     headers=api.auth(ann["token"]))


def sign_out_everywhere(api, ann):
    api.app.post_json("/api/auth/logout", {"all": True}, headers=api.auth(ann["token"]))


def suspend(api, ann):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    api.app.post_json(f"/api/admin/users/{ann['id']}/suspend", {"reason": "Spam"},
                      headers=api.auth(admin["token"]))
    api.app.post_json(f"/api/admin/users/{ann['id']}/reinstate", {}, headers=api.auth(admin["token"]))


@pytest.mark.parametrize("end_sessions", [change_password, sign_out_everywhere, suspend])
def test_a_reset_link_stops_when_every_session_of_its_user_ends(api, end_sessions):
    ann = api.user(email="ann@example.com")
    token = link(api, "ann@example.com")
    end_sessions(api, ann)
    assert_error(confirm(api, token, 400), 400, "INVALID_TOKEN")
    # The password the attacker chose was never set.
    assert_error(api.login(email="ann@example.com", password=ATTACKER_PASSWORD, status=401), 401,
                 "INVALID_CREDENTIALS")


def test_a_reset_ends_every_other_reset_link_of_the_user(api):
    api.user(email="ann@example.com")
    first = link(api, "ann@example.com")
    # A second live link (issue_link ends the older ones when it issues; added by hand here, as a
    # link issued while the reset below runs would be).
    api.db.rollback()
    user = api.db.execute(select(User).where(User.email == "ann@example.com")).scalar_one()
    live = api.db.execute(select(AccountToken).where(AccountToken.user_id == user.id)
                          .where(AccountToken.used_at.is_(None), AccountToken.purpose == RESET)).scalar_one()
    api.db.add(AccountToken(id=uuid.uuid4(), user_id=user.id, purpose=RESET, email=user.email,
                            token_hash=hash_refresh_token("other-link"), created_at=live.created_at,
                            expires_at=live.expires_at))
    api.db.commit()
    confirm(api, first, 200)
    assert_error(confirm(api, "other-link", 400), 400, "INVALID_TOKEN")


def test_a_verification_link_outlives_a_password_change(api):
    ann = api.user(email="ann@example.com")
    token = link(api, "ann@example.com", VERIFY)
    change_password(api, ann)
    verified = api.app.post_json("/api/auth/verify-email", {"token": token}).json["data"]
    assert verified["email_verified"] is True


# -- right passwords are not guesses: they spend no throttle budget -------------------------------
def test_signing_in_again_and_again_is_never_throttled(api):
    """The suite's limits: 10 guesses per account, 20 per address, 5 per (address, account)."""
    emails = [f"{name}@example.com" for name in ("ann", "bob", "cy")]
    for email in emails:
        api.register(email=email)
    for _ in range(11):  # past the account's limit, and 33 in all from one address: past its cap
        for email in emails:
            api.login(email=email)
    # Guesses still count as before.
    for _ in range(5):
        api.login(password="wrong password", status=401)
    assert_error(api.login(status=429), 429, "RATE_LIMITED")


# -- an import's form fields, each of the kind it must be ------------------------------------------
def post_import(api, who, body: bytes, status: int):
    return api.app.post("/api/user/imports", body, status=status, headers={
        **who["headers"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


def test_an_import_whose_format_is_a_file_is_a_400_naming_the_field(api, user):  # noqa: F811
    body = multipart({}, {"file": ("ratings.csv", LETTERBOXD.encode()), "format": ("fmt.txt", b"letterboxd")})
    error = assert_error(post_import(api, user, body, 400), 400, "VALIDATION_ERROR")
    assert "file" not in error["details"]
    assert "not a file" in error["details"]["format"][0]


def test_an_import_whose_file_is_a_text_field_is_told_to_upload_a_file(api, user):  # noqa: F811
    response = post_import(api, user, multipart({"file": LETTERBOXD}, {}), 400)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "format" not in error["details"]
    assert "file upload" in error["details"]["file"][0] and "filename" in error["details"]["file"][0]
    # With a filename, the same content is imported; an empty format is "auto", as before.
    body = multipart({"format": ""}, {"file": ("ratings.csv", LETTERBOXD.encode())})
    assert post_import(api, user, body, 202).json["data"]["id"]


# -- a form in another charset than UTF-8 is a 415, not a 500 --------------------------------------
FORMS_IN_OTHER_CHARSETS = [
    ("multipart/form-data; boundary=x; charset=latin-1", b"--x--\r\n"),
    ("application/x-www-form-urlencoded; charset=utf-16", "format=auto".encode("utf-16")),
    ("application/x-www-form-urlencoded; charset=iso-8859-1", b"name=\xe9"),
    # UTF-8, by a name WebOb does not read as such
    ("application/x-www-form-urlencoded; charset=utf_8", b"a=b"),
]
CHARSET_IDS = [content_type for content_type, _ in FORMS_IN_OTHER_CHARSETS]


@pytest.mark.parametrize("content_type, body", FORMS_IN_OTHER_CHARSETS, ids=CHARSET_IDS)
def test_a_form_in_another_charset_is_a_415_in_the_envelope(api, user, content_type, body):  # noqa: F811
    for path in ("/api/user/imports", "/api/auth/login"):
        headers = {**user["headers"], "Content-Type": content_type}
        response = api.app.post(path, body, headers=headers, status=415)
        error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert error["details"]["Content-Type"] == ["Charset must be utf-8"]


@pytest.mark.parametrize("content_type, body", FORMS_IN_OTHER_CHARSETS, ids=CHARSET_IDS)
def test_the_console_refuses_a_form_in_another_charset_with_a_page(testapp, content_type, body):
    response = testapp.post("/admin/login", body, headers={"Content-Type": content_type}, status=415)
    assert response.content_type == "text/html"


def test_a_form_in_utf8_is_read_as_before(api, user):  # noqa: F811
    for charset in ("utf-8", "UTF8", '"utf-8"'):
        body = multipart({"format": "auto"}, {"file": ("r.csv", LETTERBOXD.encode())})
        content_type = f"multipart/form-data; boundary={BOUNDARY}; charset={charset}"
        headers = {**user["headers"], "Content-Type": content_type}
        api.app.post("/api/user/imports", body, headers=headers, status=202)


# -- a name is shown as written: no control or invisible formatting characters ----------------------
HIDDEN_NAMES = {
    "line feeds": "Victim\n\nYour account is locked. Visit https://evil.example",
    "carriage return": "Ann\rBcc",
    "tab": "Ann\tLee",
    "delete": "Ann\x7f",
    "C1 control": "Ann\x85Lee",
    "bidi override": "Ann \u202egnp.exe",
    "zero-width space": "A\u200bnn",
    "byte order mark": "\ufeffAnn",
    "line separator": "Ann\u2028Lee",
    "paragraph separator": "Ann\u2029Lee",
}


@pytest.mark.parametrize("name", HIDDEN_NAMES.values(), ids=HIDDEN_NAMES.keys())
def test_a_name_with_control_or_format_characters_is_refused(api, name):
    registered = api.register(email="victim@example.com", name=name, status=400)
    assert "formatting characters" in assert_error(registered, 400, "VALIDATION_ERROR")["details"]["name"][0]
    ann = api.user(email="ann@example.com", name="Ann")
    headers = api.auth(ann["token"])
    updated = api.app.put_json("/api/user/profile", {"name": name}, headers=headers, status=400)
    assert "formatting characters" in assert_error(updated, 400, "VALIDATION_ERROR")["details"]["name"][0]
    assert api.app.get("/api/user/profile", headers=headers).json["data"]["name"] == "Ann"


def test_names_in_any_script_with_spaces_and_punctuation_are_accepted(api):
    ann = api.user(email="ann@example.com", name="  Zoë O'Brien-Łukasz  ")
    assert ann["name"] == "Zoë O'Brien-Łukasz"  # trimmed, as before
    # with a zero-width non-joiner (Persian) and joiner (an emoji sequence): how those are written
    for name in ("李小龍", "Анна Каренина", "José  María", "\u0645\u062d\u0645\u062f",
                 "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "Ann \U0001f469\u200d\U0001f4bb"):
        updated = api.app.put_json("/api/user/profile", {"name": name}, headers=api.auth(ann["token"]))
        assert updated.json["data"]["name"] == name
