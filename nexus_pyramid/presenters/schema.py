"""Building blocks for response schemas (colander), read by the OpenAPI generator.

Colander has no notion of JSON ``null``, references or string formats; these helpers set
plain attributes on the nodes (``nullable``, ``format``, ``ref``) that the generator
(``api/openapi.py``) turns into JSON Schema. A mapping schema class with a ``ref``
becomes one named component, referred to wherever it is used.
"""
from __future__ import annotations

import colander


def field(typ, nullable: bool = False, **kw) -> colander.SchemaNode:
    """One field of a response object: always present, ``null`` allowed when ``nullable``."""
    return colander.SchemaNode(typ, nullable=nullable, **kw)


def string(**kw):
    return field(colander.String(), **kw)


def integer(**kw):
    return field(colander.Int(), **kw)


def number(**kw):
    return field(colander.Float(), **kw)


def boolean(**kw):
    return field(colander.Boolean(), **kw)


def day(**kw):
    return field(colander.Date(), **kw)


def moment(**kw):
    return field(colander.DateTime(), **kw)


def enum(choices, **kw):
    return field(colander.String(), validator=colander.OneOf(list(choices)), **kw)


def list_of(item: colander.SchemaNode, **kw) -> colander.SchemaNode:
    return colander.SchemaNode(colander.Sequence(), item, nullable=kw.pop("nullable", False), **kw)


def page_of(item_schema, ref: str):
    """The page schema (``paging.page``) of a list of ``item_schema``."""

    class Page(colander.MappingSchema):
        results = list_of(item_schema(name="item"))
        page = integer(description="This page's number, from 1")
        per_page = integer(description="Items per page")
        total_pages = integer()
        total_results = integer()

    Page.ref = ref
    Page.__name__ = ref
    return Page
