"""The Cornice ``Service`` the API is built from: our errors, our contexts, JSON bodies."""
from __future__ import annotations

import json
from collections import Counter

from cornice import Service
from cornice.validators import colander_validator

from ..authz import Root
from .errors import render_error

JSON_TYPE = "application/json"


def validation_error_handler(request):
    """Render Cornice's collected errors (validation, content type) as our envelope."""
    errors = request.errors
    if errors.status == 415:
        return render_error(request, 415, "UNSUPPORTED_MEDIA_TYPE", "Request bodies must be application/json.")
    # Malformed bodies never get here: request.json_body (request_limits.py) raises its own 4xx.
    details: dict[str, list[str]] = {}
    for error in errors:
        name = error.get("name") or error.get("location") or "body"
        description = error.get("description")
        details.setdefault(name, []).append(description if isinstance(description, str) else json.dumps(description))
    return render_error(request, 400, "VALIDATION_ERROR", "The request is not valid.", details)


def validate_request(request, schema=None, **kwargs):
    """Cornice's colander validation, after a look for query parameters given more than once
    (``?page=1&page=2``): no parameter of the API takes several values, and colander would
    describe the list it got as Python writes it (``"['1', '2']" is not a number``). Names the
    route does not take are ignored, once or not, as they always are."""
    names = list(request.GET.keys())
    if len(names) > len(set(names)) and schema is not None:
        query = (schema() if isinstance(schema, type) else schema).get("querystring")
        taken = {child.name for child in query.children} if query is not None else set()
        repeated = {name: count for name, count in Counter(names).items() if count > 1 and name in taken}
        for name, count in repeated.items():
            request.errors.add("querystring", name, f"Given {count} times; give it once.")
        if repeated:
            return
    colander_validator(request, schema=schema, **kwargs)


class ApiService(Service):
    """A Cornice service with the project's defaults.

    - errors rendered by our envelope (not Cornice's ``{"status": "error", "errors": [...]}``);
    - the root context factory unless given, so every view is checked against an ``__acl__``;
    - bodies must be JSON (415 otherwise) for methods that take one.
    """

    def __init__(self, name, path, factory=Root, **kw):
        kw.setdefault("cors_enabled", False)
        # depth=2: venusian must attach the service to the module that creates it, not this one.
        super().__init__(name=name, path=path, factory=factory, depth=2, **kw)

    def error_handler(self, request):
        return validation_error_handler(request)

    def _decorate(self, method, **kw):
        # Documentation-only arguments, read by the OpenAPI generator.
        self.docs = getattr(self, "docs", {})
        self.docs[method] = {
            "response_status": kw.pop("response_status", 200),
            "error_codes": kw.pop("error_codes", ()),
            "summary": kw.pop("summary", None),
            "returns": kw.pop("returns", None),  # the presenter's schema (class) that describes ``data``
            "meta": kw.pop("meta", None),  # the schema of ``meta``, if the view sends one
            "request_body": kw.pop("request_body", None),  # an OpenAPI requestBody that is not JSON
        }
        if "permission" not in kw:
            raise ValueError(f"{self.name} {method}: every API view must declare a permission")
        if method in ("POST", "PUT", "PATCH"):
            kw.setdefault("content_type", JSON_TYPE)
        if "schema" in kw:
            kw.setdefault("validators", (validate_request,))
        kw.setdefault("renderer", "json")
        return super().decorator(method, **kw)

    def get(self, **kw):
        return self._decorate("GET", **kw)

    def post(self, **kw):
        return self._decorate("POST", **kw)

    def put(self, **kw):
        return self._decorate("PUT", **kw)

    def delete(self, **kw):
        return self._decorate("DELETE", **kw)
