"""Every service is registered by interface and found by what it is (nexus_pyramid/interfaces.py)."""
from __future__ import annotations

from pyramid.request import Request
from pyramid.scripting import prepare
from zope.interface.interface import InterfaceClass

from nexus_pyramid import interfaces
from nexus_pyramid.interfaces import IRedis, IThrottles, IUserService, find_service
from nexus_pyramid.services.ratelimit import Throttles
from nexus_pyramid.services.users import UserService
from tests.conftest import TEST_REDIS_URL, swap_service

PER_REQUEST = {"ITokenService", "IUserService", "IMovieService", "ILibraryService", "IAccountService",
               "IBlockedMovies", "IJobService"}
ALL = {name: value for name, value in vars(interfaces).items()
       if isinstance(value, InterfaceClass) and value.__module__ == interfaces.__name__}


def test_every_interface_has_its_service_and_no_string_keys_remain(app):
    for name, iface in ALL.items():
        if name in PER_REQUEST:
            continue
        if iface is IRedis and not TEST_REDIS_URL:
            assert find_service(app.registry, IRedis, None) is None  # no Redis: nothing pretends to be one
            continue
        assert find_service(app.registry, iface) is not None, name
        assert name in interfaces.__doc__, f"{name} is missing from the module's table"
    # The registry holds no singletons by name.
    assert not [key for key in app.registry if isinstance(key, str)]


def test_per_request_services_are_built_for_each_request(app, testapp):
    env = prepare(request=Request.blank("/", environ={"REMOTE_ADDR": "192.0.2.99"}), registry=app.registry)
    try:
        users = env["request"].find_service(IUserService)
        assert isinstance(users, UserService) and users.guard.address == "192.0.2.99"
        assert env["request"].find_service(IUserService) is users  # one per request
    finally:
        env["closer"]()


def test_a_test_swaps_a_service_through_the_registry(app, testapp, api):
    strict = Throttles.from_settings({**app.registry.settings, "auth.register_limit_per_address": "1/minute"})
    swap_service(app, strict, IThrottles)
    api.register(email="one@example.com")
    api.register(email="two@example.com", status=429)
