"""GET /api/openapi.json: the OpenAPI 3.1 document, generated.

Nothing in it is written by hand twice: the paths and methods come from the Cornice
services (``api/*.py``), parameters and request bodies from their colander request
schemas (``api/schemas.py``), the success bodies from the presenters' response schemas
(``presenters/``), the error codes from the application's error classes (``errors.py``)
and the headers from what the code sends (``X-Cache`` on movie routes, ``Cache-Control:
no-store`` on private ones, ``Retry-After`` on 429/503, ``WWW-Authenticate`` on 401).
The tests validate the document and check every response they get against it.

OpenAPI 3.1 (JSON Schema 2020-12): Swagger UI 5 (``swagger-ui-py``) renders it at
/api/docs, schemathesis 4 tests the API against it.
"""
from __future__ import annotations

import functools
import json
import re
import uuid
from datetime import date, datetime, timezone
from types import SimpleNamespace

import colander
from cornice.service import get_services
from pyramid.httpexceptions import HTTPMethodNotAllowed
from pyramid.view import view_config

from .. import errors
from ..authz import PUBLIC
from ..presenters import library as present_library, movies as present_movies, users as present_users
from ..presenters.movies import CacheFacts, MoviePresenter
from ..tweens import carries_private_data
from .auth import StrictBoolean
from .envelope import iso_datetime
from .errors import HTTP_CODES
from .schemas import StrictDate, StrictInt, StrictString

OPENAPI_VERSION = "3.1.0"
SCHEMAS = "#/components/schemas/"

ERROR_WHEN = {
    400: "A field, parameter or header is missing or invalid, or the JSON is malformed.",
    401: "No valid access token (or wrong email or password at sign-in).",
    403: "Signed in, but the role does not allow this.",
    404: "No such resource.",
    405: "The method is not allowed here (see Allow).",
    409: "Conflicts with the current state.",
    413: "The body is larger than the configured limit (1 MiB by default).",
    415: "The body is not application/json in UTF-8.",
    429: "Too many attempts; retry after Retry-After seconds.",
    500: "Unexpected error; details.request_id traces it in the logs.",
    503: "A dependency (database, cache, movie source) is unavailable; retry after Retry-After seconds.",
}


# -- colander -> JSON Schema ----------------------------------------------------------
def _validators(node) -> list:
    validator = node.validator
    if validator is None:
        return []
    if isinstance(validator, colander.All):
        return list(validator.validators)
    return [validator]


def _may_be_null(node) -> bool:
    """Response fields say so (``nullable``); an optional request field of a strict type takes null
    as absent."""
    if getattr(node, "nullable", False):
        return True
    optional = node.missing is not colander.required
    return optional and isinstance(node.typ, (StrictString, StrictInt, StrictDate, StrictBoolean))


def node_schema(node, top: bool = False) -> dict:
    """JSON Schema (2020-12) of one colander node; named presenter schemas become ``$ref``s."""
    ref = getattr(node, "ref", None)
    if ref and not top:
        schema = {"$ref": SCHEMAS + ref}
        return {"anyOf": [schema, {"type": "null"}]} if getattr(node, "nullable", False) else schema
    typ = node.typ
    response = getattr(node, "nullable", None) is not None or ref is not None
    if isinstance(typ, colander.Mapping):
        props, required = {}, []
        for child in node.children:
            props[child.name] = node_schema(child)
            if child.required:
                required.append(child.name)
        schema = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        if response:  # what we send is exactly what the schema says (request bodies may carry more)
            schema["additionalProperties"] = False
    elif isinstance(typ, (colander.Sequence, colander.List)):
        schema = {"type": "array", "items": node_schema(node.children[0])}
        for validator in _validators(node):
            if isinstance(validator, colander.Length) and validator.max is not None:
                schema["maxItems"] = validator.max
    elif isinstance(typ, colander.DateTime):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(typ, (StrictDate, colander.Date)):
        schema = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    elif isinstance(typ, (StrictInt, colander.Int)):
        schema = {"type": "integer"}
    elif isinstance(typ, colander.Float):
        schema = {"type": "number"}
    elif isinstance(typ, colander.Boolean):
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
    if getattr(node, "format", None):
        schema["format"] = node.format
    for validator in _validators(node):
        if isinstance(validator, colander.Length) and schema["type"] == "string":
            if validator.min is not None:
                schema["minLength"] = validator.min
            if validator.max is not None:
                schema["maxLength"] = validator.max
        elif isinstance(validator, colander.Range):
            if validator.min is not None:
                schema["minimum"] = validator.min
            if validator.max is not None:
                schema["maximum"] = validator.max
        elif isinstance(validator, colander.OneOf):
            schema["enum"] = list(validator.choices)
        elif isinstance(validator, colander.Email):
            schema["format"] = "email"
    if _may_be_null(node):
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = schema["enum"] + [None]
    if getattr(node, "examples", None):
        schema["examples"] = list(node.examples)
    if getattr(node, "json_schema", None):  # what colander cannot say (a field required unless another is set)
        schema.update(node.json_schema)
    if node.description:
        schema["description"] = str(node.description)
    if node.missing not in (colander.required, colander.drop, colander.null) and not callable(node.missing):
        schema["default"] = node.missing
    return schema


def response_examples() -> dict[str, dict]:
    """Examples of the main resources, made by their presenters (so they cannot drift from them)."""
    movies_ = MoviePresenter("https://image.tmdb.org/t/p/")
    raw = {"id": 603, "title": "The Matrix", "release_date": "1999-03-30", "poster_path": "/matrix.jpg",
           "overview": "A hacker learns what the world really is.", "popularity": 80.5, "vote_average": 8.2,
           "vote_count": 24000, "adult": False, "genres": [{"id": 28, "name": "Action"},
                                                            {"id": 878, "name": "Science Fiction"}],
           "credits": {"cast": [{"id": 6384, "name": "Keanu Reeves", "character": "Neo", "order": 0,
                                 "profile_path": "/keanu.jpg"}],
                       "crew": [{"id": 9339, "name": "Lilly Wachowski", "job": "Director"}]},
           "runtime": 136, "tagline": "Welcome to the Real World."}
    at = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    person = SimpleNamespace(id=uuid.UUID("4f7a2a7e-3c1b-4f0e-9a55-1d2c3b4a5f60"), name="Ann",
                             email="ann@example.com", email_verified=True, date_of_birth=date(1990, 5, 17), role_names=["user"],
                             created_at=at, updated_at=at)
    movie = movies_.from_source(raw, {})
    examples = {
        "Genre": present_movies.genre(28, "Action"),
        "Movie": movie,
        "MovieDetail": movies_.detail(raw, {}),
        "User": present_users.user(person),
        "Session": present_users.session(person, {"access_token": "eyJhbGciOiJIUzI1NiJ9.e30.signature",
                                                  "refresh_token": "opaque-refresh-token", "token_type": "Bearer",
                                                  "expires_in": 900}),
        "Interaction": {"id": 1, "interaction_type": "liked", "created_at": at, "movie": movie},
        "Recommendation": present_library.recommendation(movie, 0.87, ["Because you liked The Matrix"]),
    }
    return json.loads(json.dumps(examples, default=lambda v: iso_datetime(v) if isinstance(v, datetime)
                                 else v.isoformat()))


def component_schemas(roots) -> dict:
    """Every named schema reachable from ``roots`` (schema classes), by name, with examples."""
    found: dict = {}
    examples = response_examples()

    def visit(node):
        ref = getattr(node, "ref", None)
        if ref and ref not in found:
            found[ref] = node_schema(node, top=True)
            if ref in examples:
                found[ref]["examples"] = [examples[ref]]
        for child in node.children:
            visit(child)

    for root in roots:
        visit(root())
    return dict(sorted(found.items()))


# -- errors -----------------------------------------------------------------------
def _error_classes(cls=errors.AppError):
    for sub in cls.__subclasses__():
        yield sub
        yield from _error_classes(sub)


def error_codes_by_status() -> dict[int, list[str]]:
    """Every ``code`` the API can answer with, per HTTP status (error classes + HTTP errors)."""
    codes: dict[int, set] = {500: {"INTERNAL_ERROR"}}
    for cls in _error_classes():
        codes.setdefault(cls.status, set()).add(cls.code)
    for status, (code, _message) in HTTP_CODES.items():
        codes.setdefault(status, set()).add(code)
    return {status: sorted(found) for status, found in sorted(codes.items())}


def _header(ref: str) -> dict:
    return {"$ref": f"#/components/headers/{ref}"}


HEADERS = {
    "X-Request-ID": {"description": "This response's id (an incoming sane one is kept); in the logs too.",
                     "required": True, "schema": {"type": "string"}},
    "X-Cache": {"description": "HIT (fresh from the cache), MISS (fetched now) or STALE (the source failed; "
                               "an expired copy was served)",
                "required": True, "schema": {"type": "string", "enum": ["HIT", "MISS", "STALE"]}},
    "Cache-Control": {"description": "Personal data and tokens are never stored by caches.", "required": True,
                      "schema": {"type": "string", "const": "no-store"}},
    "ETag": {"description": "Strong validator of this body; send it back in If-None-Match to get a 304.",
             "required": True, "schema": {"type": "string"}},
    "PublicCacheControl": {"description": "public (private for a signed-in search), max-age = seconds of "
                                          "freshness the cached entry has left (0 for a stale copy)",
                           "required": True, "schema": {"type": "string",
                                                        "pattern": "^(public|private), max-age=[0-9]+$"}},
    "Retry-After": {"description": "Seconds to wait before trying again.", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "WWW-Authenticate": {"description": 'Bearer, or Bearer error="invalid_token"', "required": True,
                         "schema": {"type": "string", "pattern": "^Bearer"}},
    "Allow": {"description": "The methods this path allows.", "required": True, "schema": {"type": "string"}},
}
ERROR_HEADERS = {401: ["WWW-Authenticate"], 405: ["Allow"], 429: ["Retry-After"], 503: ["Retry-After"]}


ERROR_EXAMPLE_DETAILS = {400: {"password": ["Shorter than minimum length 8"]},
                         413: {"max_bytes": 1048576}, 429: {"retry_after": 60}, 503: {"retry_after": 5},
                         500: {"request_id": "3f2c9a0e5b8d4e6f9a1b2c3d4e5f6a7b"}}


def error_responses(codes_by_status: dict) -> dict:
    responses = {}
    for status, codes in codes_by_status.items():
        headers = {"X-Request-ID": _header("X-Request-ID")}
        headers.update({name: _header(name) for name in ERROR_HEADERS.get(status, ())})
        if status == 401 and "INVALID_CREDENTIALS" in codes:
            # A wrong password at sign-in is a 401 without a token challenge.
            headers["WWW-Authenticate"] = {**HEADERS["WWW-Authenticate"], "required": False}
        code, message = HTTP_CODES.get(status, ("INTERNAL_ERROR", "An unexpected error occurred."))
        example = {"status": "error", "message": message, "code": code if code in codes else codes[0],
                   "details": ERROR_EXAMPLE_DETAILS.get(status, {})}
        responses[f"Error{status}"] = {
            "description": ERROR_WHEN.get(status, message),
            "headers": headers,
            "content": {"application/json": {
                "schema": {"allOf": [{"$ref": SCHEMAS + "Error"}], "properties": {"code": {"enum": codes}}},
                "examples": {code: {"value": example}}}},
        }
    return responses


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every non-2xx response.",
    "required": ["status", "message", "code", "details"],
    "additionalProperties": False,
    "properties": {
        "status": {"const": "error"},
        "message": {"type": "string", "description": "A sentence for people."},
        "code": {"type": "string", "pattern": "^[A-Z][A-Z_]*$", "description": "For programs."},
        "details": {
            "type": "object",
            "description": "Validation errors: one entry per field (a list of problems). Otherwise facts "
                           "such as request_id, retry_after, max_bytes, or the readiness checks.",
            "properties": {"request_id": {"type": ["string", "null"]}, "retry_after": {"type": "number"},
                           "max_bytes": {"type": "integer"}, "checks": {"type": "object"},
                           "unknown_movie_ids": {"type": "array", "items": {"type": "integer"}}},
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "examples": [{"status": "error", "message": "The request is not valid.", "code": "VALIDATION_ERROR",
                  "details": {"password": ["Shorter than minimum length 8"]}}],
}


# -- operations ---------------------------------------------------------------------
def _envelope(data: dict, meta: dict | None) -> dict:
    props = {"status": {"const": "success"}, "message": {"type": "string"}, "data": data}
    if meta is not None:
        props["meta"] = meta
    return {"type": "object", "required": ["status", "message", "data"], "properties": props,
            "additionalProperties": False}


def _parameters(path: str, schema) -> list[dict]:
    typed = {}
    if schema is not None and "path" in schema:
        typed = {child.name: node_schema(child) for child in schema["path"].children}
    params = [{"name": name, "in": "path", "required": True, "schema": typed.get(name, {"type": "string"})}
              for name in re.findall(r"{(\w+)}", path)]
    if schema is not None and "querystring" in schema:
        for child in schema["querystring"].children:
            param_schema = node_schema(child)
            param = {"name": child.name, "in": "query", "required": bool(child.required),
                     "schema": param_schema}
            if "description" in param_schema:
                param["description"] = param_schema.pop("description")
            params.append(param)
    return params


def _statuses(method: str, args: dict, info: dict) -> set[int]:
    """Every error status the operation can answer."""
    # 400/413: the Content-Length checks of any request; 503: every operation reads the database or
    # the movie source (or its cache), each of which may be unavailable.
    statuses = set(info.get("error_codes", ())) | {400, 413, 500, 503}
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses |= {409, 415}  # 409: a write that lost a race (api/errors.integrity_error_view)
    if args.get("permission") != PUBLIC:
        statuses |= {401, 403} if "admin" in str(args.get("permission")) else {401}
    return statuses


def _operation(service, method: str, args: dict, info: dict) -> dict:
    schema = args.get("schema")
    public = args.get("permission") == PUBLIC
    returns, meta = info.get("returns"), info.get("meta")
    data = node_schema(returns()) if returns is not None else {"type": "null"}
    headers = {"X-Request-ID": _header("X-Request-ID")}
    not_modified = None
    if meta is CacheFacts:
        headers["X-Cache"] = _header("X-Cache")
        headers["ETag"] = _header("ETag")
        headers["Cache-Control"] = _header("PublicCacheControl")
        not_modified = {"description": "Not modified: the If-None-Match header names this response's ETag "
                                       "(no body)", "headers": dict(headers)}
    if carries_private_data(service.path):
        headers["Cache-Control"] = _header("Cache-Control")
    success = {"description": info.get("success") or "Success envelope", "headers": headers,
               "content": {"application/json": {"schema": _envelope(
                   data, node_schema(meta()) if meta is not None else None)}}}
    status = info.get("response_status", 200)
    responses = {str(status): success}
    if not_modified is not None:
        responses["304"] = not_modified
    if method == "POST" and status == 201:  # idempotent creations answer 200 with the existing one
        responses["200"] = {**success, "description": "Already there: the existing one"}
    for code in sorted(_statuses(method, args, info)):
        responses[str(code)] = {"$ref": f"#/components/responses/Error{code}"}
    operation = {
        "operationId": f"{service.name}_{method.lower()}",
        "summary": info.get("summary") or service.description or service.name,
        "tags": [service.path.split("/")[2]],
        "parameters": _parameters(service.path, schema),
        "responses": responses,
        "security": [{}, {"bearer": []}] if public else [{"bearer": []}],
    }
    if schema is not None and "body" in schema:
        body = node_schema(schema["body"])
        # A body whose fields are all optional may be left out: no body is the empty object.
        required = "required" in body or "anyOf" in body
        operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": body}}}
    if info.get("request_body"):
        operation["requestBody"] = info["request_body"]
    return operation


def _ops_paths() -> dict:
    def plain(description, schema, *errors_):
        responses = {"200": {"description": description, "headers": {"X-Request-ID": _header("X-Request-ID")},
                             "content": {"application/json": {"schema": schema}}}}
        responses.update({str(c): {"$ref": f"#/components/responses/Error{c}"} for c in errors_})
        return responses

    ok = {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}},
          "additionalProperties": False}
    ready = {"type": "object", "required": ["status", "checks"],
             "properties": {"status": {"const": "ok"}, "checks": {
                 "type": "object", "description": "One entry per dependency: database, cache, movie_source",
                 "additionalProperties": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}},
             "additionalProperties": False}
    return {
        "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness: touches no dependency",
                             "tags": ["ops"], "security": [{}], "responses": plain("Alive", ok, 500)}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness: database, cache, movie source",
                            "tags": ["ops"], "security": [{}], "responses": plain("Ready", ready, 500, 503)}},
        "/api/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "tags": ["ops"],
                                      "security": [{}],
                                      "responses": plain("OpenAPI 3.1", {"type": "object"}, 500)}},
        "/metrics": {"get": {"operationId": "metrics", "tags": ["ops"], "security": [{}, {"bearer": []}],
                             "summary": "Prometheus exposition, summed over every worker process; 404 unless "
                                        "metrics.enabled, bearer metrics.token when set",
                             "responses": {
                                 "200": {"description": "Prometheus text format", "headers": {
                                     "X-Request-ID": _header("X-Request-ID")},
                                     "content": {"text/plain": {"schema": {"type": "string"}}}},
                                 **{str(c): {"$ref": f"#/components/responses/Error{c}"} for c in (401, 404, 500)}}}},
        "/api/docs": {"get": {"operationId": "api_docs", "summary": "Interactive documentation (HTML)",
                              "tags": ["ops"], "security": [{}], "responses": {
                                  "200": {"description": "HTML page", "headers": {
                                      "X-Request-ID": _header("X-Request-ID")},
                                      "content": {"text/html": {"schema": {"type": "string"}}}},
                                  "500": {"$ref": "#/components/responses/Error500"}}}},
    }


def build_document() -> dict:
    paths: dict = {}
    roots: list = []
    for service in get_services():
        if not service.path.startswith("/api/"):
            continue
        docs = getattr(service, "docs", {})
        operations = paths.setdefault(service.path, {})
        for method, _view, args in service.definitions:
            if method == "HEAD":
                continue
            info = docs.get(method, {})
            operations[method.lower()] = _operation(service, method, args, info)
            roots += [s for s in (info.get("returns"), info.get("meta")) if s is not None]
    paths.update(_ops_paths())
    codes = error_codes_by_status()
    codes.pop(406, None)  # never answered: no view declares what it accepts
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Nexus API",
            "version": "1.0",
            "description": "Movie recommendations. JSON in, JSON out; every non-2xx response is the error "
                           "envelope. This product uses the TMDB API but is not endorsed or certified by TMDB.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**component_schemas(roots), "Error": ERROR_SCHEMA},
            "responses": error_responses(codes),
            "headers": HEADERS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "The access_token of register, login or refresh."}},
        },
    }


@view_config(route_name="openapi", renderer="json", permission=PUBLIC, request_method="GET")
def openapi_view(request):
    return served_document()


@functools.lru_cache(maxsize=1)
def served_document() -> dict:
    """Built once per process: it depends only on the code (Cornice's services are process-wide)."""
    return build_document()


# Routes outside Cornice that the document lists with GET only: any other method is a 405 with
# Allow, as on the Cornice services (not a 404 for a view predicate that did not match).
GET_ONLY_ROUTES = ("openapi", "api_docs", "healthz", "readyz", "metrics")


def method_not_allowed(context, request):
    raise HTTPMethodNotAllowed(headers={"Allow": "GET, HEAD"})


def includeme(config):
    config.add_route("openapi", "/api/openapi.json")
    for route_name in GET_ONLY_ROUTES:
        # No request_method predicate: tried only after the route's GET view did not match.
        config.add_view(method_not_allowed, route_name=route_name, permission=PUBLIC)
