"""CORS for /api/*, as the API contract describes it.

- Only origins listed in ``nexus.cors_origins`` (env ``NEXUS_CORS_ORIGINS``) get CORS headers;
  none by default, never ``*``. Entries are exact origins (``scheme://host[:port]``), checked
  at start-up.
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) on an /api
  route is answered here, by the outermost tween: no authentication, no database. 204 with the
  route's methods, the request headers the contract allows and a max-age.
- Every other /api response to a listed origin (errors included, so that a browser app can read
  the envelope) carries ``Access-Control-Allow-Origin`` and exposes the headers the contract
  names. No credentials mode: bearer tokens only, no cookies.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from pyramid.interfaces import IRoutesMapper
from pyramid.response import Response

from .api.errors import render_error
from .settings import ConfigurationError

API_PREFIX = "/api/"
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match"
EXPOSED_HEADERS = "ETag, Retry-After, X-Request-ID, X-Cache"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Used only when a route's views accept any method.
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def parse_origins(value) -> frozenset[str]:
    """The allowed origins of a comma-separated setting, normalized as browsers send them.

    Raises ConfigurationError for ``*``, ``null``, a path, a query, credentials or a scheme
    other than http/https: a typo here would otherwise silently open or close the API.
    """
    origins = set()
    for entry in str(value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        problem = None
        if "*" in entry:
            problem = "wildcards are not allowed; list each origin"
        else:
            parts = urlsplit(entry)
            try:
                port = parts.port
            except ValueError:
                port, problem = None, "the port is not a number"
            if problem is None:
                if parts.scheme not in DEFAULT_PORTS:
                    problem = "the scheme must be http or https"
                elif not parts.hostname:
                    problem = "a host is required"
                elif parts.username is not None or parts.password is not None:
                    problem = "credentials are not allowed"
                elif parts.path not in ("", "/") or parts.query or parts.fragment or entry.endswith(("?", "#")):
                    problem = "an origin has no path, query or fragment"
        if problem:
            raise ConfigurationError(
                f"nexus.cors_origins: {entry!r} is not an origin ({problem}); expected scheme://host[:port], "
                "e.g. https://app.example.com")
        host = parts.hostname
        if ":" in host:  # IPv6
            host = f"[{host}]"
        origin = f"{parts.scheme}://{host}"
        if port is not None and port != DEFAULT_PORTS[parts.scheme]:
            origin += f":{port}"
        origins.add(origin)
    return frozenset(origins)


def parse_max_age(value) -> int:
    try:
        max_age = int(str(value).strip())
    except ValueError:
        max_age = -1
    if not 0 <= max_age <= 86400:
        raise ConfigurationError(f"nexus.cors_max_age must be seconds from 0 to 86400, got {value!r}.")
    return max_age


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def is_preflight(request) -> bool:
    return (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers)


class Cors:
    def __init__(self, registry):
        settings = registry.settings
        self.registry = registry
        self.origins = parse_origins(settings["nexus.cors_origins"])
        self.max_age = str(parse_max_age(settings["nexus.cors_max_age"]))
        self._methods: dict[str, str] = {}

    def allowed_origin(self, request) -> str | None:
        origin = request.headers.get("Origin")
        return origin if origin in self.origins else None

    def route_methods(self, path: str) -> str | None:
        """The methods of the first route matching ``path`` ("GET, POST"), None if none matches."""
        mapper = self.registry.queryUtility(IRoutesMapper)
        route = next((r for r in (mapper.get_routes() if mapper else []) if r.match(path) is not None), None)
        if route is None:
            return None
        if route.name not in self._methods:
            methods, any_method = set(), False
            for item in self.registry.introspector.get_category("views"):
                view = item["introspectable"]
                if view["route_name"] != route.name:
                    continue
                declared = view["request_methods"]
                if declared is None:
                    any_method = True
                else:
                    methods.update((declared,) if isinstance(declared, str) else declared)
            if not methods and any_method:
                methods = set(ANY_METHOD)
            methods.discard("OPTIONS")
            self._methods[route.name] = ", ".join(m for m in ANY_METHOD if m in methods)
        return self._methods[route.name]

    def preflight(self, request):
        """The answer to a preflight on an /api path: 204 on a route, 404 elsewhere."""
        methods = self.route_methods(request.path_info)
        if methods is None:
            response = render_error(request, 404, "NOT_FOUND", "The resource was not found.")
        else:
            response = Response(status=204)
            del response.content_type
            if self.allowed_origin(request):
                response.headers["Access-Control-Allow-Methods"] = methods
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = self.max_age
        return response

    def decorate(self, request, response) -> None:
        """CORS headers on an /api response (preflights included) for a listed origin; only ``Vary`` for others."""
        preflight = is_preflight(request)
        if not self.origins:
            return  # same origin only: nothing varies by Origin
        vary = ["Origin"]
        if preflight:
            vary += ["Access-Control-Request-Method", "Access-Control-Request-Headers"]
        for name in vary:
            if name.lower() not in {v.strip().lower() for v in (response.vary or ())}:
                response.vary = (*(response.vary or ()), name)
        origin = self.allowed_origin(request)
        if origin is None:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        if not preflight:
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
