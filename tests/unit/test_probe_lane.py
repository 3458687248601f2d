"""Liveness probes are answered by the server's event loop, not queued behind busy threads."""
from __future__ import annotations

from types import SimpleNamespace

from nexus_pyramid.server import ProbeLane


class Channel:
    def __init__(self, *requests):
        self.requests = [SimpleNamespace(command=method, path=path, error=None) for method, path in requests]
        self.served = 0

    def service(self):
        self.served += 1
        self.requests.pop(0)


def routed(*channels):
    queued = []
    listener = SimpleNamespace(add_task=queued.append)
    lane = ProbeLane()
    lane.route(listener)
    for channel in channels:
        listener.add_task(channel)
    return lane, queued


def test_probes_wait_for_the_loop_and_everything_else_for_a_thread():
    probe, page, mixed = Channel(("GET", "/healthz")), Channel(("GET", "/api/movies/trending")), Channel(
        ("GET", "/healthz"), ("POST", "/api/auth/login"))
    lane, queued = routed(probe, page, mixed)
    assert queued == [page, mixed]  # the thread pool gets what is not only probes
    assert lane.pending == [probe] and probe.served == 0  # never served inside the read
    lane.serve()
    assert probe.served == 1 and lane.pending == []


def test_a_probe_with_another_method_or_an_error_goes_to_the_threads():
    head = Channel(("HEAD", "/healthz"))
    broken = Channel(("GET", "/healthz"))
    broken.requests[0].error = ValueError("bad request")
    lane, queued = routed(head, broken)
    assert queued == [head, broken] and lane.pending == []
