"""GET /api/openapi.json: a Swagger 2.0 document generated from the Cornice services.

The document is built from the same services and colander schemas that validate the
requests, so it cannot drift from the code.
"""
from __future__ import annotations

import re

import colander
from cornice.service import get_services
from pyramid.view import view_config

from ..authz import PUBLIC
from ..interfaces import IOpenAPIDocument
from .errors import HTTP_CODES
from .schemas import StrictDate, StrictInt

ERROR_DESCRIPTIONS = {
    400: "VALIDATION_ERROR: a field or parameter is missing or invalid, or the JSON is malformed",
    401: "AUTHENTICATION_REQUIRED, INVALID_TOKEN or INVALID_CREDENTIALS",
    403: "FORBIDDEN: authenticated but lacking the role",
    404: "NOT_FOUND, MOVIE_NOT_FOUND, USER_NOT_FOUND or INTERACTION_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "EMAIL_TAKEN or CONFLICT",
    413: "PAYLOAD_TOO_LARGE: the body is above the configured limit (1 MiB by default)",
    415: "UNSUPPORTED_MEDIA_TYPE: the body is not application/json in UTF-8",
    429: "RATE_LIMITED: see the Retry-After header",
    500: "INTERNAL_ERROR",
    503: "UPSTREAM_UNAVAILABLE or SERVICE_UNAVAILABLE",
}


def _validators(node) -> list:
    validator = node.validator
    if validator is None:
        return []
    if isinstance(validator, colander.All):
        return list(validator.validators)
    return [validator]


def node_schema(node) -> dict:
    """JSON schema (Swagger 2.0 subset) of one colander node."""
    typ = node.typ
    if isinstance(typ, colander.Mapping):
        props, required = {}, []
        for child in node.children:
            props[child.name] = node_schema(child)
            if child.required:
                required.append(child.name)
        schema = {"type": "object", "properties": props}
        if required:
            schema["required"] = required
        return schema
    if isinstance(typ, (colander.Sequence, colander.List)):
        schema = {"type": "array", "items": node_schema(node.children[0])}
        for validator in _validators(node):
            if isinstance(validator, colander.Length) and validator.max is not None:
                schema["maxItems"] = validator.max
        return schema
    if isinstance(typ, (StrictDate, colander.Date)):
        schema = {"type": "string", "format": "date"}
    elif isinstance(typ, (StrictInt, colander.Int)):
        schema = {"type": "integer"}
    elif isinstance(typ, colander.Float):
        schema = {"type": "number"}
    elif isinstance(typ, colander.Boolean):
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
    for validator in _validators(node):
        if isinstance(validator, colander.Length):
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
        elif validator is colander.uuid:
            schema["format"] = "uuid"
    if node.description:
        schema["description"] = str(node.description)
    if node.missing not in (colander.required, colander.drop, colander.null) and not callable(node.missing):
        schema["default"] = node.missing
    return schema


def _parameters(path: str, schema) -> list[dict]:
    typed = {}
    if schema is not None and "path" in schema:
        typed = {child.name: node_schema(child) for child in schema["path"].children}
    params = [
        {"name": name, "in": "path", "required": True, **typed.get(name, {"type": "string"})}
        for name in re.findall(r"{(\w+)}", path)
    ]
    if schema is None:
        return params
    for section in schema.children:
        if section.name == "querystring":
            for child in section.children:
                param = {"name": child.name, "in": "query", "required": bool(child.required)}
                param.update(node_schema(child))
                params.append(param)
        elif section.name == "body":
            params.append({"name": "body", "in": "body", "required": True, "schema": node_schema(section)})
    return params


def _nullable(schema: dict) -> dict:
    return {**schema, "x-nullable": True}


def _page(item_ref: str) -> dict:
    return {"type": "object", "required": ["results", "page", "per_page", "total_pages", "total_results"],
            "properties": {"results": {"type": "array", "items": {"$ref": item_ref}},
                           "page": {"type": "integer"}, "per_page": {"type": "integer"},
                           "total_pages": {"type": "integer"}, "total_results": {"type": "integer"}}}


STRING, INTEGER, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "number"}
DATE, DATETIME = {"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}
USER = {"id": {"type": "string", "format": "uuid"}, "name": STRING, "email": STRING,
        "date_of_birth": _nullable(DATE), "roles": {"type": "array", "items": STRING},
        "created_at": DATETIME, "updated_at": DATETIME}
MOVIE = {"tmdb_id": INTEGER, "title": STRING, "overview": _nullable(STRING), "release_date": _nullable(DATE),
         "release_year": _nullable(INTEGER), "poster_path": _nullable(STRING), "poster_url": _nullable(STRING),
         "popularity": NUMBER, "vote_average": NUMBER, "vote_count": INTEGER, "adult": {"type": "boolean"},
         "genres": {"type": "array", "items": {"$ref": "#/definitions/Genre"}}}
PERSON = {"type": "object", "properties": {"id": INTEGER, "name": _nullable(STRING)}}


def _object(properties: dict, required=None) -> dict:
    return {"type": "object", "required": list(required or properties), "properties": properties}


DEFINITIONS = {
    "Genre": _object({"id": INTEGER, "name": _nullable(STRING)}),
    "User": _object(USER),
    "Profile": _object({**USER, "preferences": {"$ref": "#/definitions/Preferences"}}),
    "AdminUser": _object({**USER, "interaction_counts": {
        "type": "object", "properties": {k: INTEGER for k in ("liked", "bookmarked", "watched")}}}),
    "Session": _object({"user": {"$ref": "#/definitions/User"}, "access_token": STRING, "refresh_token": STRING,
                        "token_type": {"type": "string", "enum": ["Bearer"]}, "expires_in": INTEGER}),
    "Movie": _object(MOVIE),
    "MovieDetail": _object({**MOVIE, "runtime": _nullable(INTEGER), "tagline": _nullable(STRING),
                            "cast": _nullable({"type": "array", "items": {"type": "object", "properties": {
                                "id": INTEGER, "name": STRING, "character": _nullable(STRING),
                                "profile_path": _nullable(STRING)}}}),
                            "directors": _nullable({"type": "array", "items": PERSON})}),
    "Preferences": _object({"genres": {"type": "array", "items": {"$ref": "#/definitions/Genre"}},
                            "actors": {"type": "array", "items": PERSON},
                            "movies": {"type": "array", "items": {"$ref": "#/definitions/Movie"}}}),
    "Interaction": _object({"id": INTEGER, "interaction_type": {"type": "string",
                                                                 "enum": ["liked", "bookmarked", "watched"]},
                            "created_at": DATETIME, "movie": {"$ref": "#/definitions/Movie"}}),
    "Recommendation": _object({"movie": {"$ref": "#/definitions/Movie"}, "score": NUMBER,
                               "reasons": {"type": "array", "items": STRING}}),
    "MoviePage": _page("#/definitions/Movie"),
    "UserPage": _page("#/definitions/User"),
    "InteractionPage": _page("#/definitions/Interaction"),
    "RecommendationPage": _page("#/definitions/Recommendation"),
    "GenreList": {"type": "array", "items": {"$ref": "#/definitions/Genre"}},
}


def _success(data_ref: str | None) -> dict:
    """The success envelope, with ``data`` typed when the operation says what it returns."""
    data = {"$ref": f"#/definitions/{data_ref}"} if data_ref else {"x-nullable": True}
    return {"type": "object", "required": ["status", "message", "data"],
            "properties": {"status": {"type": "string", "enum": ["success"]}, "message": STRING, "data": data,
                           "meta": {"type": "object"}}}


def build_document(request) -> dict:
    paths: dict = {}
    for service in get_services():
        if not service.path.startswith("/api/"):
            continue
        docs = getattr(service, "docs", {})
        operations = paths.setdefault(service.path, {})
        for method, _view, args in service.definitions:
            if method == "HEAD":
                continue
            info = docs.get(method, {})
            schema = args.get("schema")
            status = info.get("response_status", 200)
            responses = {str(status): {"description": "Success envelope", "schema": _success(info.get("returns"))}}
            if method == "POST" and status == 201:  # idempotent creations answer 200 with the existing one
                responses["200"] = responses[str(status)]
            codes = set(info.get("error_codes", ())) | {500}
            if schema is not None:
                codes.add(400)
            if method in ("POST", "PUT", "PATCH"):
                codes |= {413, 415}
            if args.get("permission") != PUBLIC:
                codes |= {401, 403} if "admin" in str(args.get("permission")) else {401}
            for code in sorted(codes):
                responses[str(code)] = {"description": ERROR_DESCRIPTIONS.get(code, HTTP_CODES.get(code, ("",))[0]),
                                        "schema": {"$ref": "#/definitions/Error"}}
            operation = {
                "operationId": f"{service.name}_{method.lower()}",
                "summary": info.get("summary") or service.description or service.name,
                "tags": [service.path.split("/")[2]],
                "parameters": _parameters(service.path, schema),
                "responses": responses,
            }
            if args.get("permission") != PUBLIC:
                operation["security"] = [{"bearer": []}]
            operations[method.lower()] = operation
    paths.update(_ops_paths())
    return {
        "swagger": "2.0",
        "info": {
            "title": "Nexus API",
            "version": "1.0",
            "description": "Movie recommendations. This product uses the TMDB API but is not endorsed or "
                           "certified by TMDB.",
        },
        "basePath": "/",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {
            "bearer": {"type": "apiKey", "in": "header", "name": "Authorization",
                       "description": "Bearer <access_token>"},
        },
        "paths": dict(sorted(paths.items())),
        "definitions": {
            **DEFINITIONS,
            "Error": {
                "type": "object",
                "required": ["status", "message", "code", "details"],
                "properties": {
                    "status": {"type": "string", "enum": ["error"]},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                    "details": {"type": "object"},
                },
            },
        },
    }


def _ops_paths() -> dict:
    error = {"description": "Error envelope", "schema": {"$ref": "#/definitions/Error"}}
    plain = {"description": "OK", "schema": {"type": "object"}}
    return {
        "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness", "tags": ["ops"], "parameters": [],
                             "responses": {"200": plain, "500": error}}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "Readiness: database, cache, movie source",
                            "tags": ["ops"], "parameters": [], "responses": {"200": plain, "503": error}}},
        "/api/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "tags": ["ops"],
                                      "parameters": [], "responses": {"200": plain, "500": error}}},
        "/api/docs": {"get": {"operationId": "api_docs", "summary": "Interactive documentation (HTML)",
                              "tags": ["ops"], "produces": ["text/html"], "parameters": [],
                              "responses": {"200": {"description": "HTML page"}, "500": error}}},
    }


class OpenAPIDocument:
    """The document, built once per process on first use (the routes are all known by then)."""

    def __init__(self):
        self._document = None

    def get(self, request) -> dict:
        if self._document is None:
            self._document = build_document(request)
        return self._document


@view_config(route_name="openapi", renderer="json", permission=PUBLIC, request_method="GET")
def openapi_view(request):
    return request.find_service(IOpenAPIDocument).get(request)


def includeme(config):
    config.add_route("openapi", "/api/openapi.json")
    config.register_service(OpenAPIDocument(), IOpenAPIDocument)
