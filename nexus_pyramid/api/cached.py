"""Cached movie responses rendered to their final bytes once per cache generation.

A movie route asks the cached source for a ``Result`` (a hit costs a dictionary look-up),
then calls ``cached_response`` with a function that shapes it. The bytes of the success
envelope are kept under the cache entry's key and generation (its creation time), where
the value came from (``meta.source``: a stale copy stays marked stale), the variant of the
rendering (e.g. with adult titles or not) and the movie service's ``render_epoch()``; they
are shaped and encoded only when that key is new. Every such response carries a strong
``ETag`` and ``Cache-Control`` with the freshness the entry has left, and a request whose
``If-None-Match`` names the ETag is answered ``304 Not Modified`` with no body.

Any cached route gets this by calling ``cached_response``: nothing here knows the routes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pyramid.response import Response

from ..movie_source.cache import X_CACHE
from .envelope import encode, success


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str
    names: object  # the genre names the body was shaped with (re-rendered when they change)


def etag_matches(header: str | None, etag: str) -> bool:
    """Does an ``If-None-Match`` header name ``etag`` (weak comparison, as RFC 9110 says for it)?"""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag[2:] if etag.startswith("W/") else etag
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == bare:
            return True
    return False


def render(movies, result, variant: str, shape) -> Rendered:
    """The rendered bytes of ``result`` (shaped by ``shape()`` -> (data, meta)) from the memo, or made now."""
    epoch = movies.render_epoch()
    names = movies.genre_names.get()
    memo = movies.source.rendered
    # The notes say what the asked-for language got (e.g. English only): part of the body.
    key = (variant, result.key, result.source, result.created, result.notes, epoch)
    rendered = memo.get(key)
    if rendered is None or rendered.names is not names:
        data, meta = shape()
        body = encode(success(data, meta=meta))
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        rendered = Rendered(body, f'"{epoch}-{digest}"', names)
        memo[key] = rendered
    return rendered


def cached_response(request, movies, result, variant: str, shape, private: bool = False) -> Response:
    """The response for a cached movie ``result``: 200 with the rendered bytes, or 304.

    ``private``: the body depends on who asks (a signed-in adult's search), so only the
    caller's own cache may keep it.
    """
    rendered = render(movies, result, variant, shape)
    cache_control = f"{'private' if private else 'public'}, max-age={result.max_age()}"
    if etag_matches(request.headers.get("If-None-Match"), rendered.etag):
        response = Response(status=304, content_type=None)
    else:
        response = Response(body=rendered.body, content_type="application/json", charset=None)
    headers = response.headers
    headers["ETag"] = rendered.etag
    headers["Cache-Control"] = cache_control
    headers["X-Cache"] = X_CACHE[result.source]
    return response
