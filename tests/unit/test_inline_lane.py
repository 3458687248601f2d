"""Liveness probes and replays of cached pages are answered by the server's event loop, not
queued behind busy threads; everything else goes to the threads."""
from __future__ import annotations

from types import SimpleNamespace

from waitress.task import WSGITask

from nexus_pyramid.api.cached import CachedPages
from nexus_pyramid.server import InlineLane, NexusTask

REPLAY = object()


class Pages:
    """Stands for api.cached.CachedPages: one replayable page, and the environs it was asked with."""

    def __init__(self):
        self.asked = []

    def find_for(self, environ):
        self.asked.append(environ)
        replayable = CachedPages.eligible(environ) and environ["QUERY_STRING"] == "page=2"
        return REPLAY if replayable and environ["PATH_INFO"] == "/api/movies/trending" else None


def parsed(method, path, query="", headers=None, error=None):
    return SimpleNamespace(command=method, path=path, query=query, headers=headers or {}, error=error)


class Channel:
    def __init__(self, *requests):
        self.requests = list(requests)
        self.served = 0

    def service(self):
        self.served += 1
        self.requests.pop(0)


def routed(*channels, pages=None):
    queued = []
    listener = SimpleNamespace(add_task=queued.append)
    lane = InlineLane(pages)
    lane.route(listener)
    for channel in channels:
        listener.add_task(channel)
    return lane, queued


def test_probes_wait_for_the_loop_and_everything_else_for_a_thread():
    probe, page = Channel(parsed("GET", "/healthz")), Channel(parsed("GET", "/api/movies/trending"))
    mixed = Channel(parsed("GET", "/healthz"), parsed("POST", "/api/auth/login"))
    lane, queued = routed(probe, page, mixed)
    assert queued == [page, mixed]  # the thread pool gets what is not only probes
    assert lane.pending == [probe] and probe.served == 0  # never served inside the read
    lane.serve()
    assert probe.served == 1 and lane.pending == []


def test_a_probe_with_another_method_or_an_error_goes_to_the_threads():
    head = Channel(parsed("HEAD", "/healthz"))
    broken = Channel(parsed("GET", "/healthz", error=ValueError("bad request")))
    lane, queued = routed(head, broken)
    assert queued == [head, broken] and lane.pending == []


def test_a_replay_is_answered_by_the_loop_with_the_replay_handed_to_the_app(monkeypatch):
    pages = Pages()
    replayed = Channel(parsed("GET", "//api/movies/trending", "page=2", {"IF_NONE_MATCH": '"0-x"'}))
    other_page = Channel(parsed("GET", "/api/movies/trending", "page=3"))
    signed_in = Channel(parsed("GET", "/api/movies/trending", "page=2", {"AUTHORIZATION": "Bearer x"}))
    lane, queued = routed(replayed, other_page, signed_in, pages=pages)
    assert lane.pending == [replayed] and queued == [other_page, signed_in]
    assert replayed.requests[0].replay is REPLAY
    assert not hasattr(other_page.requests[0], "replay") and not hasattr(signed_in.requests[0], "replay")
    # Asked with the environ the app will get: path as waitress makes it, headers as HTTP_*.
    assert pages.asked[0] == {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/movies/trending", "QUERY_STRING": "page=2",
                              "CONTENT_LENGTH": "", "HTTP_IF_NONE_MATCH": '"0-x"'}
    task = NexusTask.__new__(NexusTask)  # only its environment is looked at
    task.request = replayed.requests[0]
    monkeypatch.setattr(WSGITask, "get_environment", lambda self: {"PATH_INFO": self.request.path})
    assert NexusTask.get_environment(task)["nexus.replay"] is REPLAY


def test_a_channel_with_a_replay_and_another_request_goes_to_the_threads_replay_forgotten():
    pages = Pages()
    pipelined = Channel(parsed("GET", "/api/movies/trending", "page=2"), parsed("GET", "/api/user/profile"))
    with_body = Channel(parsed("GET", "/api/movies/trending", "page=2", {"CONTENT_LENGTH": "5"}))
    lane, queued = routed(pipelined, with_body, pages=pages)
    assert queued == [pipelined, with_body] and lane.pending == []
    # A replay found now would be stale by the time a thread takes it.
    assert not any(hasattr(r, "replay") for r in pipelined.requests)
    assert pages.asked[-1]["CONTENT_LENGTH"] == "5"  # CachedPages.eligible refuses a body
