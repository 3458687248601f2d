"""The production server (`pserve production.ini`, server.py) over real HTTP.

Each test runs a real gunicorn master with two workers as a subprocess, on a free port, on
the test database (PostgreSQL and Redis when the test environment names them) with the
fake TMDb as the movie source.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nexus_pyramid.request_limits import DEFAULT_MAX_BODY_SIZE
from tests.conftest import ROOT, clean_database, forget_movie_id_space
from tests.fake_tmdb import API_KEY, FakeTMDb

PSERVE = Path(sys.executable).with_name("pserve")


class ProductionServer:
    def __init__(self, tmp_path: Path, database_url: str, redis_url: str, fake: FakeTMDb, env: dict | None = None,
                 **server_options):
        ini = (ROOT / "production.ini").read_text()
        # The ini names a Redis; the tests use theirs, or none (process-local cache).
        ini = re.sub(r"(?m)^nexus\.redis_url = .*$", f"nexus.redis_url = {redis_url}", ini)
        for key, value in server_options.items():
            ini, replaced = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", ini)
            if not replaced:
                ini = ini.replace("[server:main]\n", f"[server:main]\n{key} = {value}\n")
        (tmp_path / "production.ini").write_text(ini)
        self.log_path = tmp_path / "server.log"
        # A new app on the suite's database, as the suite's other apps (see forget_movie_id_space).
        forget_movie_id_space(database_url)
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "JWT_SECRET": secrets.token_urlsafe(40), "SESSION_SECRET": secrets.token_urlsafe(40),
               "NEXUS_MOVIE_SOURCE": "tmdb", "TMDB_BASE_URL": fake.base_url, "TMDB_API_KEY": API_KEY,
               "WEB_CONCURRENCY": "2", "BIND": "127.0.0.1:0", **(env or {})}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(PSERVE), "production.ini"], cwd=tmp_path, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.port = self._wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)")
            self.url = f"http://127.0.0.1:{self.port}"
            self._wait_for(r"Booting worker", count=int(env["WEB_CONCURRENCY"]))
            for _ in range(150):
                try:
                    urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                raise RuntimeError("the server does not answer:\n" + self.log())
        except BaseException:
            self.stop()  # a server that failed to start is not left running
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_for(self, pattern: str, count: int = 1, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return int(found[0]) if found[0].isdigit() else found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"server log never showed {pattern!r}:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def empty_database_after(engine):
    """The servers' processes commit for real (like the committed fixture, for the whole module)."""
    yield
    clean_database(engine)


@pytest.fixture(scope="module")
def fake_tmdb():
    fake = FakeTMDb()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, database_url, redis_url, fake_tmdb):
    """One server for the tests that leave it running."""
    running = ProductionServer(tmp_path_factory.mktemp("server"), database_url, redis_url, fake_tmdb)
    yield running
    running.stop()


@pytest.fixture
def own_server(tmp_path, database_url, redis_url, fake_tmdb):
    running = ProductionServer(tmp_path, database_url, redis_url, fake_tmdb)
    yield running
    running.stop()
    fake_tmdb.reset()


def get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return repr(exc)


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict]:
    """Send raw bytes; the status and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            head, sep, body = received.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head) if sep else None
            if length and len(body) >= int(length.group(1)):
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return int(head.split()[1]), json.loads(body)


def test_64_clients_trickling_bodies_do_not_starve_the_others(server):
    """gthread gave every thread to slow bodies; now waitress buffers them outside the threads."""
    slow = []
    for _ in range(64):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"POST /api/auth/login HTTP/1.1\r\nHost: nexus\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n")
        slow.append(sock)
    stop = threading.Event()

    def trickle():
        while not stop.wait(1.0):
            for sock in slow:
                try:
                    sock.send(b" ")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.5)  # every slow request is now being received
        answers = []
        for _ in range(15):
            for path in ("/healthz", "/api/movies/trending"):
                answers.append((path, get(server.url + path, timeout=5)))
            time.sleep(0.3)
    finally:
        stop.set()
        trickler.join(timeout=5)
        for sock in slow:
            sock.close()
    assert [a for a in answers if a[1] != 200] == []


def test_the_server_refuses_a_large_body_before_receiving_it(server):
    status, body = raw_exchange(server.port, b"POST /api/auth/login HTTP/1.1\r\nHost: nexus\r\n"
                                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                % (DEFAULT_MAX_BODY_SIZE + 1))
    assert status == 413
    assert body["code"] == "PAYLOAD_TOO_LARGE" and body["details"]["max_bytes"] == DEFAULT_MAX_BODY_SIZE


def test_the_import_route_has_its_own_larger_limit(server):
    """Uploads (imports.max_size, 5 MiB) pass the server's framing limit; above theirs, 413 at once."""
    from nexus_pyramid.request_limits import MULTIPART_OVERHEAD

    boundary = "----NexusFormBoundary7MA4YWxkTrZu0gW"
    head = (f"POST /api/user/imports HTTP/1.1\r\nHost: nexus\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n").encode()
    status, body = raw_exchange(server.port, head + b"Content-Length: %d\r\n\r\n"
                                % (5 * 1024 * 1024 + MULTIPART_OVERHEAD + 1))
    assert status == 413 and body["code"] == "PAYLOAD_TOO_LARGE"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ratings.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + b"x" * (2 * DEFAULT_MAX_BODY_SIZE) + \
        f"\r\n--{boundary}--\r\n".encode()
    status, body = raw_exchange(server.port, head + b"Content-Length: %d\r\n\r\n" % len(form) + form)
    assert status == 401 and body["code"] == "AUTHENTICATION_REQUIRED"  # read whole, then refused for no token


@pytest.mark.parametrize("extra, status", [(0, 401), (1, 413)], ids=["exactly-the-limit", "one-byte-more"])
def test_chunked_bodies_are_counted_once_decoded(server, extra, status):
    head = b'{"email": "nobody@example.com", "password": "wrong password", "pad": "'
    body = head + b"a" * (DEFAULT_MAX_BODY_SIZE + extra - len(head) - 2) + b'"}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000]) for i in range(0, len(body), 1000))
    answer = raw_exchange(server.port, b"POST /api/auth/login HTTP/1.1\r\nHost: nexus\r\n"
                          b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert answer[0] == status


@pytest.mark.parametrize("size", [b"ZZ", b"-1", b"1x"])
def test_a_chunked_body_that_cannot_be_decoded_is_refused_at_once(server, size):
    """A chunk size that is not hex: 400 in the envelope, not a client left waiting (the
    wrapper that counts decoded bytes used to hide the receiver's error from waitress)."""
    status, body = raw_exchange(server.port, b"POST /api/auth/login HTTP/1.1\r\nHost: nexus\r\n"
                                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                + size + b"\r\nabc\r\n0\r\n\r\n", timeout=5.0)
    assert status == 400 and body["code"] == "VALIDATION_ERROR", body


def test_a_path_that_is_not_utf8_gets_the_envelope_from_the_server(server):
    status, body = raw_exchange(server.port, b"GET /api/movies/%FF HTTP/1.1\r\nHost: nexus\r\n\r\n")
    assert status == 400 and body["details"]["path"] == ["Not valid UTF-8 once percent-decoded"], body


def test_a_304_keeps_the_connection_for_the_next_request(server):
    """waitress closes a connection after any answer without Content-Length, 304s included
    (server.NexusTask keeps it): a client revalidating its copies would reconnect every time."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(2):
            connection.request("GET", "/api/movies/trending")
            first = connection.getresponse()
            first.read()
        sock = connection.sock
        for _ in range(3):
            connection.request("GET", "/api/movies/trending", headers={"If-None-Match": first.getheader("ETag")})
            answer = connection.getresponse()
            assert answer.status == 304 and answer.read() == b"" and answer.getheader("Connection") is None
            assert not answer.will_close and connection.sock is sock  # the same connection, still open
        connection.request("GET", "/api/movies/trending", headers={"If-None-Match": first.getheader("ETag"),
                                                                  "Connection": "close"})
        closing = connection.getresponse()
        assert closing.status == 304 and closing.getheader("Connection") == "close" and closing.will_close
    finally:
        connection.close()


def test_a_cached_page_asked_again_is_answered_while_every_thread_waits(tmp_path, database_url, redis_url,
                                                                       fake_tmdb):
    """Replays (api/cached.py) are answered by the event loop, as /healthz is (server.InlineLane)."""
    fake_tmdb.reset()
    server = ProductionServer(tmp_path, database_url, redis_url, fake_tmdb, env={"WEB_CONCURRENCY": "1"}, threads=1)
    try:
        page = f"{server.url}/api/movies/trending"
        assert [get(page), get(page)] == [200, 200]  # a miss, then a hit the worker remembers
        fake_tmdb.set_mode("slow", delay=4.0)
        calls = fake_tmdb.total_calls()
        outcome = []
        hog = threading.Thread(target=lambda: outcome.append(get(page + "?page=9", timeout=30)))
        hog.start()  # a cold page: the only thread waits on TMDb
        deadline = time.monotonic() + 10
        while fake_tmdb.total_calls() == calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake_tmdb.total_calls() > calls, "the cold page never reached TMDb"
        with urllib.request.urlopen(page, timeout=10) as response:
            assert response.status == 200 and response.headers["X-Cache"] == "HIT"
            assert json.loads(response.read())["meta"]["source"] == "cache"
        assert get(server.url + "/healthz") == 200
        assert outcome == [] and hog.is_alive()  # answered while the thread was still taken
        hog.join(timeout=30)
        assert outcome == [200]
    finally:
        fake_tmdb.set_mode("ok")
        server.stop()


def test_the_master_rehearses_before_forking_and_calls_out_to_nothing(tmp_path, database_url, redis_url, fake_tmdb):
    """memory.rehearse: a few requests served in the master, none of them calling TMDb or logged."""
    fake_tmdb.reset()
    server = ProductionServer(tmp_path, database_url, redis_url, fake_tmdb)
    try:
        log = server.log()
        rehearsal = re.search(r"start-up rehearsal: /healthz 200, /api/user/profile 401, "
                              r"/api/movies/trending (200|503), /api/genres (200|503), /api/no-such-route 404", log)
        assert rehearsal, log
        assert log.index("start-up rehearsal") < log.index("Booting worker")
        assert fake_tmdb.total_calls() == 0
        assert get(server.url + "/api/movies/trending") == 200  # the workers ask TMDb as always
        assert fake_tmdb.total_calls() > 0 or rehearsal.group(1) == "200"
        # An access line for the workers' request, none for the rehearsal's.
        server._wait_for(r"GET /api/movies/trending")
        assert not re.search(r"GET /(api/user/profile|api/genres|api/no-such-route)", server.log())
    finally:
        server.stop()


def test_sigterm_answers_every_request_received_then_exits(own_server, fake_tmdb):
    """Graceful shutdown: requests in flight and requests waiting for a thread are all answered."""
    server = own_server
    fake_tmdb.reset()
    fake_tmdb.set_mode("slow", delay=2.0)
    count = 16  # two workers of four threads: some requests wait in a worker's queue
    statuses = [None] * count

    def fetch(index):
        statuses[index] = get(f"{server.url}/api/movies/trending?page={index + 1}", timeout=30)

    clients = [threading.Thread(target=fetch, args=(index,)) for index in range(count)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 15
    while fake_tmdb.total_calls() < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_tmdb.total_calls() >= 6, "the requests never reached TMDb"
    time.sleep(1.0)  # the rest are received and queued by now (TMDb answers after 2 s)
    server.proc.send_signal(signal.SIGTERM)
    for client in clients:
        client.join(timeout=40)
    assert statuses == [200] * count
    assert server.proc.wait(timeout=30) == 0


def test_a_worker_restarts_after_max_requests_and_no_request_fails(tmp_path, database_url, redis_url, fake_tmdb):
    server = ProductionServer(tmp_path, database_url, redis_url, fake_tmdb, max_requests=5)
    try:
        statuses = [get(server.url + "/healthz") for _ in range(30)]
        assert statuses == [200] * 30
        log = server.log()
        assert "Autorestarting worker" in log
        assert log.count("Booting worker") > 2  # the arbiter replaced the workers that stopped
    finally:
        server.stop()
