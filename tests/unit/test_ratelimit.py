"""The rate-limit counters' Redis policy: no call while the breaker is open, local counters meanwhile."""
from __future__ import annotations

import socket

from nexus_pyramid.dependencies.redis import RedisDependency
from nexus_pyramid.services.ratelimit import Counters
from limits import parse

from tests.faults import FakeClock


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_open_breaker_keeps_calls_away_from_redis_and_the_local_counters_decide(caplog):
    clock = FakeClock()
    redis = RedisDependency(f"redis://127.0.0.1:{closed_port()}/0", breaker_threshold=2, cooldown=5, clock=clock)
    counters = Counters(redis)
    calls = []
    shared_hit = counters._shared.hit

    def counting_hit(*args):
        calls.append(1)
        return shared_hit(*args)

    counters._shared.hit = counting_hit
    limit = parse("3/minute")
    assert [counters.hit(limit, "k") for _ in range(4)] == [True, True, True, False]  # never "allow all"
    assert len(calls) == 2  # then the breaker opened: no more calls to Redis
    clock.now += 5
    counters.hit(limit, "k")
    assert len(calls) == 3  # one trial after the cool-down
    lines = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
    assert len(lines) == 1
