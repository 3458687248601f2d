"""Requests of the app are of one class made at start-up, not a new class per request
(Pyramid's way of applying ``add_request_method`` properties)."""
from __future__ import annotations

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from webtest import TestApp

from nexus_pyramid import make_app
from tests.conftest import make_settings


def test_every_request_is_of_the_one_folded_class_with_every_extension():
    app = make_app(make_settings("sqlite://"), environ={})
    seen = []
    router_call = app.invoke_request

    def spy(request, *args, **kwargs):
        seen.append(request)
        return router_call(request, *args, **kwargs)

    app.invoke_request = spy
    client = TestApp(app)
    client.get("/healthz")
    client.get("/api/movies/abc", status=400)
    assert len(seen) == 2 and type(seen[0]) is type(seen[1])
    folded = app.registry.getUtility(IRequestFactory)
    assert type(seen[0]) is folded and app.request_factory is folded
    assert app.request_extensions is None  # nothing applied per request by the router
    # Kept in the registry, for requests made elsewhere (pyramid.scripting.prepare applies them).
    extensions = app.registry.getUtility(IRequestExtensions)
    assert "find_service" in extensions.methods and "dbsession" in extensions.descriptors
    # Ours, pyramid_tm's and pyramid_services' are on the class: reified properties and methods.
    for name in ("dbsession", "auth_state", "client_address", "json_body", "tm", "find_service"):
        assert name in vars(folded), name
    request = folded.blank("/")
    request.registry = app.registry
    assert request.client_address is request.client_address  # reified: once per request
