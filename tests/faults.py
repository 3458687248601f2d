"""Shared pieces of the fault tests: Redis behind a TCP proxy, and a clock the test moves."""
from __future__ import annotations

import pytest
from sqlalchemy import make_url

from tests.conftest import TEST_REDIS_URL
from tests.reliability.tcp_proxy import TcpProxy


class FakeClock:
    """A monotonic clock that moves only when the test says so (breakers, outage logs)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def redis_proxy():
    """Redis behind a proxy the test can cut or black-hole: ``(proxy, redis URL through it)``."""
    if not TEST_REDIS_URL:
        pytest.skip("needs NEXUS_TEST_REDIS_URL (set in CI)")
    url = make_url(TEST_REDIS_URL.replace("redis://", "postgresql://", 1))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 6379).start()
    yield proxy, f"redis://127.0.0.1:{proxy.port}/{url.database or 0}"
    proxy.stop()
