"""Functional tests: every response is checked against the OpenAPI document (tests/openapi_conformance.py)."""
from tests.openapi_conformance import responses_match_the_document  # noqa: F401 (autouse fixture)
