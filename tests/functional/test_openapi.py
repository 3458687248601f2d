"""The OpenAPI 3.1 document: valid, generated from the presenters, and enforced on responses."""
from __future__ import annotations

import json

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from nexus_pyramid.presenters import library, movies, users
from tests.openapi_conformance import Conformance


@pytest.fixture
def document(testapp):
    return testapp.get("/api/openapi.json").json


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()  # raises on the first error


def test_response_schemas_are_the_presenters_schemas(document):
    schemas = document["components"]["schemas"]
    for schema in (movies.Movie, movies.MovieDetail, users.User, users.Session, library.Interaction,
                   library.Recommendation, library.Preferences):
        component = schemas[schema.ref]
        assert set(component["properties"]) == {child.name for child in schema().children}, schema.ref
        assert component["additionalProperties"] is False  # closed: an extra field is a failure
        assert set(component["required"]) == set(component["properties"])


def test_the_presenters_fill_exactly_their_schemas(api):
    user = api.user()
    headers = api.auth(user["token"])
    created = api.app.post_json("/api/user/interactions", {"tmdb_id": 2571, "interaction_type": "liked"},
                                headers=headers, status=201).json["data"]
    assert set(created) == {c.name for c in library.Interaction().children}
    assert set(created["movie"]) == {c.name for c in movies.Movie().children}
    profile = api.app.get("/api/user/profile", headers=headers).json["data"]
    assert set(profile) == {c.name for c in users.Profile().children}
    detail = api.app.get("/api/movies/2571").json["data"]
    assert set(detail) == {c.name for c in movies.MovieDetail().children}


def test_errors_document_every_code_with_their_headers(document):
    responses = document["components"]["responses"]

    def codes(status):
        return responses[f"Error{status}"]["content"]["application/json"]["schema"]["properties"]["code"]["enum"]

    assert {"EMAIL_TAKEN", "CONFLICT"} <= set(codes(409))
    assert {"MOVIE_NOT_FOUND", "USER_NOT_FOUND", "INTERACTION_NOT_FOUND", "NOT_FOUND"} <= set(codes(404))
    assert {"UPSTREAM_UNAVAILABLE", "SERVICE_UNAVAILABLE"} <= set(codes(503))
    assert codes(413) == ["PAYLOAD_TOO_LARGE"] and codes(415) == ["UNSUPPORTED_MEDIA_TYPE"]
    assert "Retry-After" in responses["Error429"]["headers"] and "Retry-After" in responses["Error503"]["headers"]
    assert "WWW-Authenticate" in responses["Error401"]["headers"] and "Allow" in responses["Error405"]["headers"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "The access_token of register, login or refresh."}
    profile = document["paths"]["/api/user/profile"]["get"]
    assert profile["security"] == [{"bearer": []}]
    assert "Cache-Control" in profile["responses"]["200"]["headers"]
    trending = document["paths"]["/api/movies/trending"]["get"]["responses"]["200"]
    assert "X-Cache" in trending["headers"]
    assert trending["content"]["application/json"]["schema"]["properties"]["meta"] == {
        "$ref": "#/components/schemas/CacheFacts"}


def test_a_response_that_differs_from_the_document_is_caught(testapp, document):
    """The check every functional test's responses go through (tests/openapi_conformance.py)."""
    conformance = Conformance(document)
    response = testapp.get("/api/genres")
    conformance.check("GET", "/api/genres", response)  # as served: conforms

    body = response.json
    body["data"][0]["slug"] = "action"  # a field the document does not name
    response.body = json.dumps(body).encode()
    with pytest.raises(AssertionError, match="does not match the document"):
        conformance.check("GET", "/api/genres", response)

    response.status_int = 418  # a status the operation does not document
    with pytest.raises(AssertionError, match="418 is not documented"):
        conformance.check("GET", "/api/genres", response)

    missing = testapp.get("/api/genres")
    del missing.headers["X-Cache"]
    with pytest.raises(AssertionError, match="documented header X-Cache missing"):
        conformance.check("GET", "/api/genres", missing)


def test_an_empty_query_parameter_is_a_400_not_the_default(api):
    """The document's enums and integer types hold for ``?page=`` and ``?window=`` (found by schemathesis)."""
    for query in ({"window": ""}, {"page": ""}):
        body = api.app.get("/api/movies/trending", query, status=400).json
        assert body["code"] == "VALIDATION_ERROR" and [k for k in body["details"] if k != "request_id"] == list(query)
    user = api.user()
    body = api.app.get("/api/user/interactions", {"type": "", "per_page": ""}, headers=api.auth(user["token"]),
                       status=400).json
    assert set(body["details"]) == {"type", "per_page", "request_id"}
    assert api.app.get("/api/movies/trending", {"window": "week", "page": 2}).json["data"]["page"] == 2


def test_every_example_matches_its_schema(document):
    """Examples of responses are made by the presenters, those of request bodies written once: both checked."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:doc", Resource(document, specification=DRAFT202012))
    checked = 0

    def check(pointer, schema):
        nonlocal checked
        for example in schema.get("examples", []):
            Draft202012Validator({"$ref": f"urn:doc#{pointer}"}, registry=registry,
                                 format_checker=Draft202012Validator.FORMAT_CHECKER).validate(example)
            checked += 1

    for name, schema in document["components"]["schemas"].items():
        check(f"/components/schemas/{name}", schema)
    for name, response in document["components"]["responses"].items():
        media = response["content"]["application/json"]
        check(f"/components/responses/{name}/content/application~1json/schema",
              {"examples": [e["value"] for e in media["examples"].values()]})
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):  # not the uploads
                escaped = path.replace("/", "~1")
                check(f"/paths/{escaped}/{method}/requestBody/content/application~1json/schema",
                      operation["requestBody"]["content"]["application/json"]["schema"])
    assert checked >= 25
    assert document["components"]["schemas"]["Movie"]["examples"][0]["poster_url"] == (
        "https://image.tmdb.org/t/p/w500/matrix.jpg")


def test_every_functional_test_response_goes_through_the_check(testapp):
    from tests.openapi_conformance import conformance

    before = conformance().checked
    testapp.get("/api/genres")
    testapp.get("/api/user/profile", status=401)
    assert conformance().checked == before + 2
