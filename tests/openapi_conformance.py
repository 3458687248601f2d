"""Every response the functional tests receive is checked against /api/openapi.json.

The document is the one the app serves (``api.openapi.build_document``). For each request
made through WebTest to a documented path, the response must have a status the operation
documents, its documented required headers, and a JSON body valid against the documented
schema (closed objects: a field the document does not name fails). A method a path does
not document must be a 405 error envelope, an unknown /api path a 404 one.

Enabled for a test directory by importing ``responses_match_the_document`` into its conftest.py.
"""
from __future__ import annotations

import functools
import re

import pytest
import webtest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:nexus:openapi"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


class Conformance:
    def __init__(self, document: dict):
        self.document = document
        self.registry = Registry().with_resource(DOC_URI, Resource(document, specification=DRAFT202012))
        routes = []
        for template, operations in document["paths"].items():
            pattern = "^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$"
            routes.append((template.count("{"), re.compile(pattern), template, operations))
        self.routes = sorted(routes, key=lambda r: r[0])  # literal paths before templated ones
        self.checked = 0

    @functools.lru_cache(maxsize=None)
    def validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=self.registry,
                                    format_checker=Draft202012Validator.FORMAT_CHECKER)

    def resolve(self, obj: dict) -> tuple[dict, str | None]:
        if "$ref" in obj:
            pointer = obj["$ref"][1:]
            node = self.document
            for part in pointer.strip("/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            return node, pointer
        return obj, None

    def find(self, path: str):
        for _count, pattern, template, operations in self.routes:
            if pattern.match(path):
                return template, operations
        return None, None

    def check(self, method: str, path: str, response) -> None:
        if method in SKIPPED_METHODS or not (path.startswith("/api/") or path in ("/healthz", "/readyz")):
            return
        if path.startswith("/api/docs/"):  # static assets of the docs page
            return
        template, operations = self.find(path)
        if template is None:
            # Any path whose bytes are not UTF-8 is refused before routing (request_limits.py).
            status = 400 if response.status_int == 400 and "path" in response.json.get("details", {}) else 404
            assert response.status_int == status, f"{method} {path}: undocumented path answered {response.status}"
            self._check_response(method, path, response, {"$ref": f"#/components/responses/Error{status}"},
                                 f"/components/responses/Error{status}")
            return
        operation = operations.get(method.lower())
        if operation is None:
            assert response.status_int == 405, f"{method} {path}: undocumented method answered {response.status}"
            self._check_response(method, path, response, {"$ref": "#/components/responses/Error405"},
                                 "/components/responses/Error405")
            return
        key = str(response.status_int)
        escaped = template.replace("~", "~0").replace("/", "~1")
        assert key in operation["responses"], (
            f"{method} {path} ({template}): status {key} is not documented "
            f"(documented: {sorted(operation['responses'])}); body: {response.text[:300]}")
        self._check_response(method, path, response, operation["responses"][key],
                             f"/paths/{escaped}/{method.lower()}/responses/{key}")

    def _check_response(self, method, path, response, documented: dict, pointer: str) -> None:
        documented, ref_pointer = self.resolve(documented)
        pointer = ref_pointer or pointer
        for name, header in documented.get("headers", {}).items():
            header, _ = self.resolve(header)
            if header.get("required"):
                assert name in response.headers, f"{method} {path}: documented header {name} missing"
        content = documented.get("content", {})
        if "application/json" not in content:
            return
        assert response.content_type == "application/json", f"{method} {path}: {response.content_type}"
        errors = sorted(self.validator(pointer + "/content/application~1json/schema").iter_errors(response.json),
                        key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {path} {response.status}: the body does not match the document: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5])
        self.checked += 1


_conformance: Conformance | None = None


def conformance() -> Conformance:
    global _conformance
    if _conformance is None:
        from nexus_pyramid.api.openapi import build_document

        _conformance = Conformance(build_document())
    return _conformance


@pytest.fixture(autouse=True)
def responses_match_the_document():
    """For the tests of the directory whose conftest imports it (and no others)."""
    original = webtest.TestApp.do_request

    def do_request(self, req, status=None, expect_errors=None):
        response = original(self, req, status=status, expect_errors=expect_errors)
        conformance().check(req.method, req.path_info, response)
        return response

    webtest.TestApp.do_request = do_request
    yield
    webtest.TestApp.do_request = original
