"""Cached movie responses rendered to their final bytes once per cache generation, and
served again without the framework while that generation lasts.

A movie route asks the cached source for a ``Result`` (a hit costs a dictionary look-up),
then calls ``cached_response`` with a function that shapes it. The bytes of the success
envelope are kept under the cache entry's key and generation (its creation time), where
the value came from (``meta.source``: a stale copy stays marked stale), the variant of the
rendering (e.g. with adult titles or not) and the movie service's ``render_epoch()``; they
are shaped and encoded only when that key is new. Every such response carries a strong
``ETag`` and ``Cache-Control`` with the freshness the entry has left, and a request whose
``If-None-Match`` names the ETag is answered ``304 Not Modified`` with no body.

**Replays.** A cache hit answered to an anonymous ``GET`` is also remembered by its path and
query string (``CachedPages``). The same request again is answered from there by the outermost
tween (tweens.py), before routing, validation, security and the transaction: the same bytes
and headers, while the in-process cache entry it came from is still the same object, the
blocked titles' version is the one it was rendered with and was checked within its interval,
and the genre names of its language are the same. Each of those checks is a look-up that never
waits, so the production server may answer a replay on its event loop, as it does ``/healthz``
(server.py). The entry is the first level's fresh value, or a stale copy the source keeps
in-process for a moment after a failure (``CachedMovieSource.first_level``): a stale replay
stays marked stale (``X-Cache: STALE``, ``meta.source``, ``max-age=0``).
Anything else (a miss, a token, a body, a check due) takes the full path, which remembers
the request again. Nothing here knows the routes.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from pyramid.response import Response

from ..interfaces import IBlocklist, ICachedPages, IGenreNames, IMovieSource, provide
from ..movie_source.cache import CACHE, RENDERED_ENTRIES, STALE, X_CACHE, BoundedDict, Result
from .envelope import encode, success

REPLAY_ENTRIES = RENDERED_ENTRIES  # (path, query string) pairs remembered per process; each holds its value
# Where the production server leaves the replay it found, for the tween (server.py).
REPLAY_ENVIRON_KEY = "nexus.replay"


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str
    names: object  # the genre names the body was shaped with (re-rendered when they change)


@dataclass(frozen=True)
class Replay:
    """A response that can be answered again, and what it is good for as long as it is unchanged."""
    rendered: Rendered
    result: Result  # its cache entry's facts (created, TTL, kind), without the value
    first_level: tuple  # the first-level entry the body came from (compared with ``is``)
    epoch: int  # the blocked titles' version it was rendered with
    vary: str | None
    route: object  # the matched route, for the access log and the metrics


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


def render(movies, result, variant: str, shape) -> tuple[Rendered, int]:
    """The rendered bytes of ``result`` (shaped by ``shape()`` -> (data, meta)) from the memo, or
    made now; and the render epoch they belong to."""
    epoch = movies.render_epoch()
    names = movies.genre_names.get(result.language)
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
    return rendered, epoch


def respond(request, rendered: Rendered, result: Result, private: bool = False, vary: str | None = None) -> Response:
    """200 with the rendered bytes, or 304 when ``If-None-Match`` names them."""
    if etag_matches(request.headers.get("If-None-Match"), rendered.etag):
        response = Response(status=304, content_type=None)
    else:
        response = Response(body=rendered.body, content_type="application/json", charset=None)
    headers = response.headers
    headers["ETag"] = rendered.etag
    headers["Cache-Control"] = f"{'private' if private else 'public'}, max-age={result.max_age()}"
    headers["X-Cache"] = X_CACHE[result.source]
    if vary:
        headers["Vary"] = vary
    return response


def cached_response(request, movies, result, variant: str, shape, private: bool = False,
                    vary: str | None = None) -> Response:
    """The response for a cached movie ``result``: 200 with the rendered bytes, or 304.

    ``private``: the body depends on who asks (a signed-in adult's search), so only the
    caller's own cache may keep it. ``vary``: the request headers, besides the URL, it depends on.
    """
    rendered, epoch = render(movies, result, variant, shape)
    if not private and result.source in (CACHE, STALE):
        first_level = movies.source.first_level(result.key)
        if first_level is not None and first_level[0] is result.value:
            pages = request.find_service(ICachedPages)
            facts = dataclasses.replace(result, value=None)  # the first level's tuple holds the value
            pages.remember(request, Replay(rendered, facts, first_level, epoch, vary, request.matched_route))
    return respond(request, rendered, result, private, vary)


class CachedPages:
    """This process's replays, by (path, query string): see the module's docstring."""

    def __init__(self, source, blocklist, genre_names, max_entries: int = REPLAY_ENTRIES):
        self.source = source  # movie_source.cache.CachedMovieSource
        self.blocklist = blocklist  # services.blocklist.Blocklist
        self.genre_names = genre_names  # services.movies.GenreNames
        self._replays = BoundedDict(max_entries)

    @staticmethod
    def eligible(environ: dict) -> bool:
        """An anonymous GET without a body (whatever its answer would be)."""
        return (environ["REQUEST_METHOD"] == "GET" and "HTTP_AUTHORIZATION" not in environ
                and environ.get("CONTENT_LENGTH", "") in ("", "0") and "HTTP_TRANSFER_ENCODING" not in environ)

    def clear(self) -> None:
        self._replays.clear()

    def remember(self, request, replay: Replay) -> None:
        environ = request.environ
        if self.eligible(environ):
            self._replays[(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))] = replay

    def find_for(self, environ: dict) -> Replay | None:
        """The replay for this request if there is one and it is still good, else None.

        Never waits: dictionary look-ups and in-process regions only, no I/O."""
        if not self.eligible(environ):
            return None
        replay = self._replays.get((environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
        if replay is None:
            return None
        if (self.source.first_level(replay.result.key, claim=True) is not replay.first_level
                or self.blocklist.peek() != replay.epoch
                or self.genre_names.peek(replay.result.language) is not replay.rendered.names):
            return None
        return replay

    def answer(self, request, replay: Replay) -> Response:
        """The replay's response to ``request``, counted as what it is (a hit, or a stale copy)."""
        self.source.count_served(replay.result)
        request.matched_route = replay.route
        return respond(request, replay.rendered, replay.result, vary=replay.vary)


def includeme(config):
    registry = config.registry
    provide(config, CachedPages(registry.getUtility(IMovieSource), registry.getUtility(IBlocklist),
                                registry.getUtility(IGenreNames)), ICachedPages)
