"""Request limits: body size before reading, content types, and JSON bodies (request_limits.py)."""
from __future__ import annotations

import io
import json

import pytest
from webob import Request

from nexus_pyramid import settings as nexus_settings
from nexus_pyramid.request_limits import DEFAULT_MAX_BODY_SIZE

LIMIT = DEFAULT_MAX_BODY_SIZE


class ExplodingInput(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = readinto = read


class CountingInput(io.RawIOBase):
    """An endless body that counts what was read from it."""

    def __init__(self, size: int):
        self.size, self.taken = size, 0

    def read(self, n=-1):
        n = self.size - self.taken if n is None or n < 0 else min(n, self.size - self.taken)
        self.taken += n
        return b" " * n


def raw_request(app, path, environ, method="POST", content_type="application/json"):
    request = Request.blank(path, method=method, environ={"REMOTE_ADDR": "192.0.2.10", **environ})
    request.environ["CONTENT_TYPE"] = content_type
    request.environ.update(environ)
    return request.get_response(app)


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_int == status, response.body[:300]
    assert response.content_type == "application/json"
    body = json.loads(response.body)
    assert body["status"] == "error" and body["code"] == code, body
    return body


def login_body_of_size(size: int) -> bytes:
    head = b'{"email": "nobody@example.com", "password": "wrong password", "pad": "'
    return head + b"a" * (size - len(head) - 2) + b'"}'


# -- body size ----------------------------------------------------------------------------
def test_a_declared_length_over_the_limit_is_refused_without_reading(app, committed):
    response = raw_request(app, "/api/auth/login", {"CONTENT_LENGTH": str(LIMIT + 1), "wsgi.input": ExplodingInput()})
    body = assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert body["details"]["max_bytes"] == LIMIT


def test_a_chunked_body_over_the_limit_is_read_only_to_the_limit(app, committed):
    stream = CountingInput(50 * LIMIT)
    response = raw_request(app, "/api/auth/login", {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream,
                                                    "wsgi.input_terminated": True})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert stream.taken == LIMIT + 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_of_exactly_the_limit_is_served(app, committed, chunked):
    body = login_body_of_size(LIMIT)
    assert len(body) == LIMIT
    environ = {"wsgi.input": io.BytesIO(body)}
    if chunked:
        environ.update(HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    response = raw_request(app, "/api/auth/login", environ)
    assert_envelope(response, 401, "INVALID_CREDENTIALS")  # parsed and checked, not refused


@pytest.mark.parametrize("declared", ["12a", "-1", "\u00b2", "1\u00b9"])
def test_a_content_length_that_is_not_a_number_of_bytes_is_400(app, declared):
    # Superscript digits pass str.isdigit but are not a length: a 400, never a 500.
    response = raw_request(app, "/api/auth/login", {"CONTENT_LENGTH": declared, "wsgi.input": io.BytesIO(b"{}")})
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "Content-Length" in body["details"]


def test_one_byte_over_the_limit_is_refused(testapp):
    response = testapp.post("/api/auth/login", login_body_of_size(LIMIT + 1),
                            headers={"Content-Type": "application/json"}, status=413)
    assert response.json["code"] == "PAYLOAD_TOO_LARGE"


def test_the_console_forms_have_the_same_limit(testapp):
    response = testapp.post("/admin/login", {"email": "a@example.com", "password": "x" * (LIMIT + 10)}, status=413)
    assert response.content_type == "text/html"


def test_the_limit_is_configurable_and_checked():
    base = {"sqlalchemy.url": "sqlite://", "jwt.secret": "x" * 40}
    assert nexus_settings.load(base, {})["nexus.max_body_size"] == 1024 * 1024
    assert nexus_settings.load(base, {"NEXUS_MAX_BODY_SIZE": "2048"})["nexus.max_body_size"] == 2048
    for bad in ("lots", "10", str(2 * 1024 ** 3)):
        with pytest.raises(nexus_settings.ConfigurationError, match="max_body_size"):
            nexus_settings.load(base, {"NEXUS_MAX_BODY_SIZE": bad})
    with pytest.raises(nexus_settings.ConfigurationError, match="json_max_depth"):
        nexus_settings.load({**base, "nexus.json_max_depth": "0"}, {})


# -- content types and JSON ----------------------------------------------------------------
def nested(depth: int) -> bytes:
    return ('{"email": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()


MALFORMED = [
    # (name, method, path, content type, body, status, code)
    ("nested 1000 deep", "POST", "/api/auth/login", "application/json", nested(1000), 400, "VALIDATION_ERROR"),
    ("nested 33 deep", "POST", "/api/auth/register", "application/json", nested(33), 400, "VALIDATION_ERROR"),
    ("nonsense charset", "POST", "/api/auth/login", "application/json; charset=nonsense", b"{}", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("latin-1 charset", "POST", "/api/auth/login", "application/json; charset=latin-1", b'{"email": "\xe9"}', 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("not UTF-8", "POST", "/api/auth/login", "application/json", b'{"email": "\xff\xfe"}', 400, "VALIDATION_ERROR"),
    ("NaN", "POST", "/api/auth/login", "application/json", b'{"email": NaN, "password": "x"}', 400,
     "VALIDATION_ERROR"),
    ("unpaired surrogate", "POST", "/api/auth/register", "application/json",
     b'{"email": "s@example.com", "name": "\\ud800", "password": "correct horse battery"}', 400, "VALIDATION_ERROR"),
    ("multipart without boundary", "POST", "/api/auth/login", "multipart/form-data", b"--x\r\n", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("multipart without boundary on DELETE", "DELETE", "/api/user/interactions/1", "multipart/form-data", b"", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("form with a nonsense charset on DELETE", "DELETE", "/api/user/interactions/1",
     "application/x-www-form-urlencoded; charset=nonsense", b"a=b", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("text", "POST", "/api/auth/login", "text/plain", b"{}", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("deep JSON on DELETE", "DELETE", "/api/user/interactions/1", "application/json", nested(1000), 400,
     "VALIDATION_ERROR"),
]


@pytest.mark.parametrize("name, method, path, content_type, body, status, code", MALFORMED,
                         ids=[case[0] for case in MALFORMED])
def test_malformed_bodies_get_a_4xx_envelope(api, name, method, path, content_type, body, status, code):
    headers = {"Content-Type": content_type}
    if path.startswith("/api/user"):
        headers.update(api.auth(api.user()["token"]))
    response = api.app.request(path, method=method, body=body, headers=headers, expect_errors=True)
    assert_envelope(response, status, code)


def test_an_encoded_body_is_refused_not_read_as_plain(api):
    """A JSON body sent with ``Content-Encoding: gzip`` was read as if it were not encoded."""
    import gzip
    import json

    credentials = {"email": "nobody@example.com", "password": "correct horse battery"}
    for coding, body in (("gzip", gzip.compress(json.dumps(credentials).encode())),
                         ("gzip", json.dumps(credentials).encode()), ("br, identity", b"{}")):
        response = api.app.post("/api/auth/login", body, headers={"Content-Type": "application/json",
                                                                   "Content-Encoding": coding}, expect_errors=True)
        assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert response.json["details"]["Content-Encoding"] == [f"Not supported: {coding}"]
    plain = api.app.post_json("/api/auth/login", credentials, headers={"Content-Encoding": "identity"},
                              expect_errors=True)
    assert_envelope(plain, 401, "INVALID_CREDENTIALS")


def test_nesting_up_to_the_limit_is_parsed(testapp):
    deep = testapp.post("/api/auth/login", nested(33), headers={"Content-Type": "application/json"}, status=400)
    assert "Nested" in deep.json["details"]["body"][0]
    allowed = testapp.post("/api/auth/login", nested(32), headers={"Content-Type": "application/json"}, status=400)
    assert "body" not in allowed.json["details"]  # parsed; only the schema objects
    assert allowed.json["details"]["email"] == ["Must be a string"]


def test_utf8_charset_in_any_spelling_is_accepted(api):
    api.register()
    for charset in ("utf-8", "UTF-8", "utf8", '"utf-8"'):
        body = json.dumps({"email": "ann@example.com", "password": "correct horse battery"}).encode()
        api.app.post("/api/auth/login", body, headers={"Content-Type": f"application/json; charset={charset}"},
                     status=200)


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=",
                                          "application/x-www-form-urlencoded; charset=nonsense"])
def test_the_console_refuses_malformed_forms_with_a_page(testapp, content_type):
    response = testapp.post("/admin/login", b"email=a", headers={"Content-Type": content_type}, status=415)
    assert response.content_type == "text/html"


def test_an_overlong_list_is_refused_before_its_items_are_checked():
    import colander

    from nexus_pyramid.api import schemas

    with pytest.raises(colander.Invalid) as exc:
        schemas.PreferencesBody().deserialize({"genre_ids": ["not an id"] * (schemas.MAX_IDS_PER_LIST + 1)})
    assert exc.value.asdict() == {"genre_ids": f"Longer than maximum length {schemas.MAX_IDS_PER_LIST}"}


# -- text in the URL (found by fuzzing: each was a 500) ------------------------------------
UNDECODABLE_QUERIES = ["/api/genres?x=%FF", "/api/movies/trending?page=%FF", "/api/movies/search?query=%C0%AF",
                       "/api/movies/search?query=%2B%FF", "/api/movies/trending?language=%FF",
                       "/api/movies/discover?sort=%ED%A0%80"]


@pytest.mark.parametrize("path", UNDECODABLE_QUERIES)
def test_a_query_string_that_is_not_utf8_is_a_400(testapp, path):
    body = assert_envelope(testapp.get(path, status=400), 400, "VALIDATION_ERROR")
    assert body["details"]["query"] == ["Not valid UTF-8 once percent-decoded"] and body["details"]["request_id"]


def test_a_query_string_that_is_not_utf8_is_a_400_for_signed_in_callers_and_the_console(api):
    from tests.functional.test_console import sign_in

    user = api.user()
    response = api.app.get("/api/user/interactions?type=%FF", headers=api.auth(user["token"]), status=400)
    assert_envelope(response, 400, "VALIDATION_ERROR")
    api.user(email="admin@example.com", roles=("user", "admin"))
    sign_in(api.app, "admin@example.com")
    for path in ("/admin/users?q=%FF", "/admin/users?page=%FF", "/admin/movies?page=%FF", "/admin/jobs?q=%FF"):
        page = api.app.get(path, status=400)
        assert page.content_type == "text/html" and "not valid UTF-8" in page.text
    # Valid UTF-8, percent-encoded or not, is read as before.
    assert api.app.get("/api/movies/search?query=%C3%A9t%C3%A9", status=200).json["status"] == "success"


@pytest.mark.parametrize("path", ["/api/movies/%FF", "/api/%C3%28", "/api/movies/603%FF"])
def test_a_path_that_is_not_utf8_is_a_400_with_the_usual_headers(testapp, path):
    response = testapp.get(path, status=400)
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert body["details"]["path"] == ["Not valid UTF-8 once percent-decoded"]
    assert response.headers["X-Request-ID"] == body["details"]["request_id"]
    assert response.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("path", ["/admin/%FF", "/admin/users/%FF"])
def test_a_console_path_that_is_not_utf8_is_a_400_page(testapp, path):
    page = testapp.get(path, status=400)
    assert page.content_type == "text/html" and "not valid UTF-8" in page.text


@pytest.mark.parametrize("path", ["/api/movies/%20603", "/api/movies/603%0A", "/api/movies/6_03", "/api/movies/+603",
                                  "/api/movies/%D9%A6%D9%A0%D9%A3", "/api/movies/trending?page=1_0",
                                  "/api/movies/trending?page=+1", "/api/movies/trending?page=%201"])
def test_integers_in_the_url_are_decimal_digits_only(testapp, path):
    body = assert_envelope(testapp.get(path, status=400), 400, "VALIDATION_ERROR")
    assert "Must be an integer" in json.dumps(body["details"])


def test_integers_in_the_url_in_digits_are_read(testapp):
    assert testapp.get("/api/movies/603").json["data"]["tmdb_id"] == 603
    assert testapp.get("/api/movies/trending?page=2").json["status"] == "success"
    low = assert_envelope(testapp.get("/api/movies/trending?page=-1", status=400), 400, "VALIDATION_ERROR")
    assert "page" in low["details"]


def test_a_body_sent_to_the_api_without_a_content_type_is_415(testapp):
    body = json.dumps({"email": "nobody@example.com", "password": "wrong password"}).encode()
    for content_type in ("", " "):
        response = raw_request(testapp.app, "/api/auth/login", {"wsgi.input": io.BytesIO(body),
                                                                 "CONTENT_LENGTH": str(len(body))},
                               content_type=content_type)
        assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    # No body and no type: read as an empty body (the schema's errors), not refused for its type.
    empty = raw_request(testapp.app, "/api/auth/login", {"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"},
                        content_type="")
    assert empty.status_int != 415


def test_a_route_that_reads_no_parameters_is_not_refused_for_its_query(testapp):
    assert testapp.get("/healthz?x=%FF", status=200).json == {"status": "ok"}
