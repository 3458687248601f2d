"""Fault bench: `pserve production.ini` under load while Redis, PostgreSQL or a worker fails.

    .venv/bin/python bench/faults.py                      # every fault, 8 s per phase (~2-3 min)
    .venv/bin/python bench/faults.py --only postgres-hang --seconds 15
    .venv/bin/python bench/faults.py --no-fail            # report only: always exit 0

What runs
  PostgreSQL (database nexus_faults, created and dropped here) and Redis (db 8, flushed) each
  behind a TCP proxy (tests/reliability/tcp_proxy.py) that can cut them (refuse and reset every
  connection) or black-hole them (accept, forward nothing: a hung server); the tests' fake
  TMDb; `pserve production.ini` with 2 gunicorn workers, pointed at the proxies. The proxies
  and the fake TMDb run in a child process, so they do not share an interpreter with the load.

Load (a keep-alive connection per thread, client timeout 10 s)
  movies  cached movie routes: GET /api/movies/trending and GET /api/movies/603 in turn
  read    authenticated read:  GET /api/user/profile
  write   authenticated write: POST /api/user/interactions, then DELETE it, in turn
  healthz GET /healthz, from 2 threads of its own (20 requests/s each)
  --clients threads (default 16) are split half movies, a quarter read, a quarter write; each
  sends --rate requests/s (default 10: a moderate load, so that latencies measure the fault
  rather than a queue the bench itself builds), the next one at once when a request is late;
  --rate 0 sends as fast as the server answers.

Per fault: baseline (no fault) --seconds, the fault --seconds, then the fault is undone and,
while the load goes on, the bench probes every route class (on new connections) until each
answers 2xx three times in a row (bounded by --recover-within). The worker kill is undone by
gunicorn alone, so its recovery counts from the kill and also waits for the replacement worker
to serve a request. A fault that does not recover within the bound is a FAIL. Each fault gets
a freshly started server (same database and Redis), so that what one fault leaves behind (a
wedged thread, say) is not counted against the next.

Figures per fault and route class, for the fault phase (a request in flight when the fault
begins counts in it): requests, % 2xx, failures by kind (HTTP status, client timeout, connection
error), 2xx/s in the baseline and in the fault and their ratio ("kept"), p99 and max latency,
seconds to recover. Targets (issue 11): no request waits more than 6 s; /healthz p99 under
100 ms in every fault; cached movie routes 100 % 2xx and at least half their baseline
throughput with Redis black-holed or PostgreSQL hung; every fault recovers by itself.

--env NAME=VALUE passes a setting to the server (e.g. to try a timeout); --log keeps its log.

Environment: NEXUS_FAULTS_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/nexus_faults),
NEXUS_FAULTS_REDIS_URL (default redis://127.0.0.1:6379/8). Exit status: 0 all targets met (or
--no-fail), 1 a target failed, 2 the bench could not run.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import multiprocessing
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIN = ROOT / ".venv" / "bin"
DB_URL = os.environ.get("NEXUS_FAULTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nexus_faults")
REDIS_URL = os.environ.get("NEXUS_FAULTS_REDIS_URL", "redis://127.0.0.1:6379/8")
PROTECTED_DATABASES = {"postgres", "root", "test", "template0", "template1", "nexus_ci"}
WORKERS = 2

# Targets of issue 11.
MAX_WAIT = 6.0              # no request waits longer (seconds)
HEALTHZ_P99 = 0.100         # /healthz p99 in every fault (seconds)
CACHED_KEPT = 0.5           # cached movie routes' throughput kept, Redis black-holed or PostgreSQL hung
CACHED_FAULTS = ("redis-blackhole", "postgres-hang")

# Route classes.
HEALTHZ, MOVIES, READ, WRITE = "healthz", "movies", "read", "write"
CLASSES = (HEALTHZ, MOVIES, READ, WRITE)
MOVIE_PATHS = ("/api/movies/trending", "/api/movies/603")
HEALTHZ_THREADS = 2
HEALTHZ_RATE = 20          # requests/s per /healthz thread
# Each write thread owns one (movie, interaction type), so no two threads write the same row.
# The movies are the fake TMDb's; the last slot is the recovery prober's.
WRITE_SLOTS = [(movie, kind) for kind in ("liked", "bookmarked", "watched")
               for movie in (603, 604, 605, 550, 680, 13)]
# An access line of the app names its worker process: "[nexus.access][<pid>]" (production.ini's format).
ACCESS_LINE = re.compile(rb"\[nexus\.access\]\[(\d+)\]")
STREAK = 3                  # 2xx in a row that make a route class "recovered"

TIMEOUT = "timeout"
CONNECTION = "conn"


@dataclass(frozen=True)
class Fault:
    name: str
    title: str
    dependency: str | None  # "postgres" / "redis" proxy, None for the worker kill
    inject: str             # proxy action that starts the fault
    heal: str               # proxy action that ends it


FAULTS = {f.name: f for f in (
    Fault("redis-cut", "Redis cut", "redis", "stop", "start"),
    Fault("redis-blackhole", "Redis black hole", "redis", "blackhole", "restore"),
    Fault("postgres-cut", "PostgreSQL cut", "postgres", "stop", "start"),
    Fault("postgres-hang", "PostgreSQL hang (black hole)", "postgres", "blackhole", "restore"),
    Fault("worker-kill", "Worker killed (SIGKILL)", None, "", ""),
)}


# -- dependencies: the two proxies and the fake TMDb, in a child process ------------------
def _dependencies_main(conn, postgres: tuple[str, int], redis: tuple[str, int]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells us to quit
    from tests.fake_tmdb import FakeTMDb
    from tests.reliability.tcp_proxy import TcpProxy

    fake = FakeTMDb()
    proxies = {"postgres": TcpProxy(*postgres).start(), "redis": TcpProxy(*redis).start()}
    conn.send({"tmdb": fake.base_url, **{name: proxy.port for name, proxy in proxies.items()}})
    try:
        while True:
            try:
                name, action = conn.recv()
            except EOFError:  # the parent is gone
                break
            if action == "quit":
                break
            getattr(proxies[name], action)()
            conn.send("done")
    finally:
        for proxy in proxies.values():
            proxy.stop()
        fake.close()


class Dependencies:
    """The proxies in front of PostgreSQL and Redis, and the fake TMDb, run by a child process."""

    def __init__(self, postgres: tuple[str, int], redis: tuple[str, int]):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_dependencies_main, args=(child, postgres, redis), daemon=True)
        self.process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the proxies and the fake TMDb did not start")
        ports = self._conn.recv()
        self.tmdb_url = ports.pop("tmdb")
        self.ports: dict[str, int] = ports

    def act(self, name: str, action: str) -> None:
        self._conn.send((name, action))
        if not self._conn.poll(15):
            raise RuntimeError(f"the {name} proxy did not {action}")
        self._conn.recv()

    def close(self) -> None:
        try:
            self._conn.send((None, "quit"))
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- the server --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`pserve production.ini` (gunicorn) in its own process group, its output in a log file."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        env = {**env, "BIND": f"127.0.0.1:{self.port}", "PORT": str(self.port)}
        self.proc = subprocess.Popen([str(BIN / "pserve"), "production.ini"], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_until_up()
        except BaseException:  # Ctrl-C included: leave no server behind
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start-up:\n{self.log_tail()}")
            if len(self.workers()) >= WORKERS and request_once(self.url + "/healthz") == 200:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the server did not answer /healthz within 60 s:\n{self.log_tail()}")
        time.sleep(1.5)  # let the other worker finish loading the app

    def workers(self) -> list[int]:
        """The gunicorn workers: the children of the master (pserve runs gunicorn in its own process)."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return sorted(int(pid) for pid in out.split())

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:  # workers left behind by a killed master
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


# -- HTTP clients ------------------------------------------------------------------------
def request_once(url: str, timeout: float = 1.0):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class Client:
    """One keep-alive HTTP/1.1 connection, opened again after any error, as a browser would.

    The timeout applies to each socket operation (connect, send, each read); the server sends
    small bodies in one go, so in practice it bounds the whole request.
    """

    def __init__(self, base_url: str, timeout: float):
        parts = urlsplit(base_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _stale(self) -> bool:
        """A kept-alive connection the server closed while idle (readable = EOF): not a failure."""
        sock = self.conn.sock
        return sock is None or bool(select.select([sock], [], [], 0)[0])

    def call(self, method: str, path: str, token: str | None = None, body=None):
        """(outcome, seconds, payload): outcome is the HTTP status, TIMEOUT or CONNECTION."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.conn is not None and self._stale():
            self.close()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        started = time.monotonic()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            payload = response.read()
            outcome = response.status
            if response.will_close:
                self.close()
        except TimeoutError:
            outcome, payload = TIMEOUT, b""
            self.close()
        except (OSError, http.client.HTTPException):
            outcome, payload = CONNECTION, b""
            self.close()
        return outcome, time.monotonic() - started, payload


def is_ok(outcome) -> bool:
    return isinstance(outcome, int) and 200 <= outcome < 300


class Writer:
    """Adds an interaction, then deletes it, in turn: every call is a write.

    A DELETE that failed is sent again; if the first had gone through all the same (its answer
    lost on the way, or an error after the commit), the second gets 404, which is then the
    expected answer and counts as a 200.
    """

    def __init__(self, slot: tuple[int, str]):
        self.movie, self.kind = slot
        self.pending: int | None = None  # the id of the interaction to delete next
        self.unsure = False              # the last DELETE of it failed, yet may have gone through

    def step(self, client: Client, token: str):
        if self.pending is None:
            outcome, seconds, payload = client.call("POST", "/api/user/interactions", token,
                                                    {"tmdb_id": self.movie, "interaction_type": self.kind})
            if is_ok(outcome):
                try:
                    self.pending = json.loads(payload)["data"]["id"]
                except (ValueError, KeyError, TypeError):
                    pass
        else:
            outcome, seconds, _ = client.call("DELETE", f"/api/user/interactions/{self.pending}", token)
            if outcome == 404 and self.unsure:
                outcome = 200
            self.unsure = not is_ok(outcome)
            if is_ok(outcome) or outcome == 404:
                self.pending = None
        return outcome, seconds


class Prober:
    """One request of each route class at a time, for the recovery checks."""

    def __init__(self, base_url: str, token: str, timeout: float):
        self.token = token
        self.clients = {cls: Client(base_url, timeout) for cls in CLASSES}
        self.writer = Writer(WRITE_SLOTS[-1])

    def probe(self, cls: str) -> bool:
        """One probe on a new connection, so that a restarted worker gets its share of them."""
        client = self.clients[cls]
        client.close()
        if cls == HEALTHZ:
            return is_ok(client.call("GET", "/healthz")[0])
        if cls == MOVIES:
            return all(is_ok(client.call("GET", path)[0]) for path in MOVIE_PATHS)
        if cls == READ:
            return is_ok(client.call("GET", "/api/user/profile", self.token)[0])
        return is_ok(self.writer.step(client, self.token)[0])

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


# -- the load ----------------------------------------------------------------------------
@dataclass
class Record:
    phase: str      # the phase the request started in, or "fault" if it started before and ended in it
    cls: str
    seconds: float
    outcome: object


def load_plan(clients: int) -> dict[str, int]:
    """Threads per route class: half movies, a quarter read, a quarter write, and the /healthz probes."""
    movies = max(1, clients // 2)
    reads = max(1, (clients - movies) // 2)
    writes = max(1, min(clients - movies - reads, len(WRITE_SLOTS) - 1))
    return {MOVIES: movies, READ: reads, WRITE: writes, HEALTHZ: HEALTHZ_THREADS}


class Load:
    """Paced client threads (see --rate); each request is tagged with its phase (see Record)."""

    def __init__(self, base_url: str, token: str, clients: int, rate: float, timeout: float):
        self.base_url, self.token, self.rate, self.timeout = base_url, token, rate, timeout
        self.phase = "warm-up"
        self.windows: dict[str, list[float]] = {}
        self.records: list[Record] = []
        self._stop = threading.Event()
        self.plan = load_plan(clients)
        self.threads = []
        for cls, count in self.plan.items():
            for index in range(count):
                self.threads.append(threading.Thread(target=self._run, args=(cls, index), daemon=True,
                                                     name=f"load-{cls}-{index}"))

    def start(self, phase: str) -> None:
        self.enter(phase)
        for thread in self.threads:
            thread.start()

    def enter(self, phase: str) -> None:
        now = time.monotonic()
        if self.phase in self.windows:
            self.windows[self.phase][1] = now
        self.phase = phase
        self.windows[phase] = [now, now]

    def halt(self) -> None:
        """Stop issuing requests, without waiting for those in flight."""
        self._stop.set()

    def stop(self) -> None:
        self.enter("stopped")
        self._stop.set()
        deadline = time.monotonic() + self.timeout + 5
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    def _run(self, cls: str, index: int) -> None:
        client = Client(self.base_url, self.timeout)
        writer = Writer(WRITE_SLOTS[index]) if cls == WRITE else None
        movie_paths = itertools.cycle(MOVIE_PATHS[index % 2:] + MOVIE_PATHS[:index % 2])
        rate = HEALTHZ_RATE if cls == HEALTHZ else self.rate
        interval = 1 / rate if rate > 0 else 0.0
        due = time.monotonic() + interval * index / max(1, self.plan[cls])  # spread the threads' starts
        while not self._stop.is_set():
            # Paced: one request every `interval`; a late request starts at once, without catching up.
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            due = max(due + interval, time.monotonic())
            phase = self.phase
            if cls == HEALTHZ:
                outcome, seconds, _ = client.call("GET", "/healthz")
            elif cls == MOVIES:
                outcome, seconds, _ = client.call("GET", next(movie_paths))
            elif cls == READ:
                outcome, seconds, _ = client.call("GET", "/api/user/profile", self.token)
            else:
                outcome, seconds = writer.step(client, self.token)
            if phase == "baseline" and self.phase != "baseline":
                phase = "fault"  # in flight when the fault began: it belongs to the fault, not the baseline
            self.records.append(Record(phase, cls, seconds, outcome))
            if not interval and not is_ok(outcome):
                time.sleep(0.01)  # unpaced: a fast failure must not turn the client into a busy loop
        client.close()

    def duration(self, phase: str) -> float:
        start, end = self.windows[phase]
        return max(end - start, 1e-9)


@dataclass
class Figures:
    requests: int = 0
    ok: int = 0
    failures: Counter = field(default_factory=Counter)
    rate: float = 0.0       # 2xx per second
    p99: float = 0.0
    max: float = 0.0
    ok_p99: float = 0.0     # over the 2xx answers only: a fast refusal must not make a good figure

    @property
    def ok_share(self) -> float:
        return self.ok / self.requests if self.requests else 0.0


def figures(load: Load, phase: str, cls: str) -> Figures:
    records = [r for r in load.records if r.phase == phase and r.cls == cls]
    result = Figures(requests=len(records))
    if not records:
        return result
    latencies = sorted(r.seconds for r in records)
    result.ok = sum(1 for r in records if is_ok(r.outcome))
    result.failures = Counter(str(r.outcome) for r in records if not is_ok(r.outcome))
    result.rate = result.ok / load.duration(phase)
    result.p99 = latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)]
    result.max = latencies[-1]
    answered = sorted(r.seconds for r in records if is_ok(r.outcome))
    result.ok_p99 = answered[max(0, math.ceil(0.99 * len(answered)) - 1)] if answered else math.inf
    return result


# -- one fault ---------------------------------------------------------------------------
@dataclass
class Outcome:
    fault: Fault
    base: dict[str, Figures]
    during: dict[str, Figures]
    recovery: dict[str, float | None]   # seconds per route class, None = not within the bound
    recovered_in: float | None
    longest_wait: tuple[float, str]     # over every phase of this fault
    notes: list[str]


class Bench:
    def __init__(self, args, deps: Dependencies, server_env: dict, log_path: Path):
        self.args, self.deps, self.server_env, self.log_path = args, deps, server_env, log_path
        self.server: Server | None = None
        self.load: Load | None = None  # the load running now, stopped on the way out
        self.email = f"faults-{secrets.token_hex(4)}@example.com"
        self.password = secrets.token_urlsafe(16)
        self.access = self.refresh = ""

    def start_server(self) -> None:
        self.server = Server(self.server_env, self.log_path)

    def new_load(self) -> Load:
        self.load = Load(self.server.url, self.access, self.args.clients, self.args.rate, self.args.timeout)
        return self.load

    def _session(self, path: str, body: dict) -> bool:
        client = Client(self.server.url, self.args.timeout)
        outcome, _, payload = client.call("POST", path, body=body)
        client.close()
        if not is_ok(outcome):
            return False
        try:
            data = json.loads(payload)["data"]
            self.access, self.refresh = data["access_token"], data["refresh_token"]
        except (ValueError, KeyError, TypeError):
            return False
        return True

    def sign_in(self) -> None:
        """Register once; later, a fresh access token (refresh, else log in) before each fault."""
        if not self.access:
            ok = self._session("/api/auth/register", {"name": "Fault Bench", "email": self.email,
                                                      "password": self.password})
        else:
            ok = (self._session("/api/auth/refresh", {"refresh_token": self.refresh})
                  or self._session("/api/auth/login", {"email": self.email, "password": self.password}))
        if not ok:
            raise RuntimeError(f"could not sign in to the server:\n{self.server.log_tail()}")

    def warm_up(self) -> None:
        """Sign in, fill the caches and the stored movies, and check that every route class answers."""
        self.sign_in()
        load = self.new_load()
        load.start("warm-up")
        time.sleep(3)
        load.stop()
        missing = [cls for cls in CLASSES if figures(load, "warm-up", cls).ok == 0]
        if missing:
            raise RuntimeError(f"no 2xx during the warm-up for {', '.join(missing)}:\n"
                               f"{self.server.log_tail()}")

    # fault ---------------------------------------------------------------------------
    def run(self, fault: Fault) -> Outcome:
        """Baseline, fault, recovery, on a server that has just been warmed up."""
        seconds, notes = self.args.seconds, []
        load = self.new_load()
        load.start("baseline")
        time.sleep(seconds)

        load.enter("fault")
        killed = None
        if fault.dependency:
            self.deps.act(fault.dependency, fault.inject)
        else:
            before = self.server.workers()
            if not before:
                raise RuntimeError("found no gunicorn worker to kill")
            killed = before[0]
            os.kill(killed, signal.SIGKILL)
            notes.append(f"killed worker {killed} of {before}")
            # Nobody undoes a worker kill: gunicorn must, so recovery counts from the kill.
            watch = RecoveryWatch(self.server, self.access, self.args, killed, len(before)).begin()
        time.sleep(seconds)

        load.enter("recovery")
        if fault.dependency:
            self.deps.act(fault.dependency, fault.heal)
            watch = RecoveryWatch(self.server, self.access, self.args).begin()
        watch.join()
        load.stop()

        if killed is not None:
            if watch.worker_back is None:
                notes.append("no replacement worker served a request within the bound")
            else:
                notes.append(f"replacement worker serving {watch.worker_back:.1f} s after the kill")
        times = list(watch.classes.values()) + [watch.worker_back]
        # A client timeout is a wait of at least the timeout, whatever --timeout is: count it as endless.
        waits = [(math.inf if r.outcome == TIMEOUT else r.seconds, r.cls)
                 for r in load.records if r.phase in ("baseline", "fault", "recovery")]
        return Outcome(
            fault=fault,
            base={cls: figures(load, "baseline", cls) for cls in CLASSES},
            during={cls: figures(load, "fault", cls) for cls in CLASSES},
            recovery=watch.classes, recovered_in=None if None in times else max(times),
            longest_wait=max(waits, default=(0.0, "-")), notes=notes,
        )


class RecoveryWatch(threading.Thread):
    """From its start: seconds until each route class answers 2xx STREAK times in a row.

    After a worker kill (``killed``), also the seconds until the master has ``workers`` workers
    again and the new one has served a request (known from the access log, when it has one).
    Bounded by --recover-within; a figure left at None means "not within the bound".
    """

    def __init__(self, server: Server, token: str, args, killed: int | None = None, workers: int = WORKERS):
        super().__init__(daemon=True, name="recovery-watch")
        self.server, self.killed, self.workers = server, killed, workers
        self.bound, self.timeout = args.recover_within, args.timeout
        self.prober = Prober(server.url, token, args.timeout)
        self.classes: dict[str, float | None] = {cls: None for cls in CLASSES}
        self.worker_back: float | None = None if killed is not None else 0.0
        # Which workers have written an access line since the kill (the log names the process).
        log = server.log_path.read_bytes() if killed is not None else b""
        self._access_log = ACCESS_LINE.search(log) is not None
        self._log_offset = len(log)
        self._served: set[int] = set()

    def begin(self) -> "RecoveryWatch":
        self.since = time.monotonic()
        self.start()
        return self

    def join(self, timeout=None) -> None:
        super().join(self.bound + self.timeout + 5 if timeout is None else timeout)

    def run(self) -> None:
        deadline = self.since + self.bound
        streak: dict[str, tuple[float, int]] = {}   # class -> (start of the streak, its length)
        try:
            while time.monotonic() < deadline:
                for cls in CLASSES:
                    if self.classes[cls] is not None:
                        continue
                    started = time.monotonic()
                    if self.prober.probe(cls):
                        first, length = streak.get(cls, (started, 0))
                        streak[cls] = (first, length + 1)
                        if length + 1 >= STREAK:
                            self.classes[cls] = max(0.0, first - self.since)
                    else:
                        streak.pop(cls, None)
                if self.worker_back is None and self._replacement_serving():
                    self.worker_back = time.monotonic() - self.since
                if self.worker_back is not None and None not in self.classes.values():
                    break
                time.sleep(0.1)
        finally:
            self.prober.close()

    def _replacement_serving(self) -> bool:
        workers = [pid for pid in self.server.workers() if pid != self.killed]
        if len(workers) < self.workers:
            return False
        if not self._access_log:  # no access lines to tell: a live new process has to do
            return True
        with open(self.server.log_path, "rb") as log:
            log.seek(self._log_offset)
            chunk = log.read()
        cut = chunk.rfind(b"\n") + 1  # a partial last line is read again next time
        self._log_offset += cut
        self._served.update(int(pid) for pid in ACCESS_LINE.findall(chunk[:cut]))
        return all(pid in self._served for pid in workers)


# -- report ------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"


def failures_text(counter: Counter) -> str:
    if not counter:
        return "-"
    names = {TIMEOUT: "timeout", CONNECTION: "conn"}
    return ", ".join(f"{names.get(kind, kind)}: {count}" for kind, count in counter.most_common())


def print_outcome(outcome: Outcome, seconds: float) -> None:
    fault = outcome.fault
    print(f"\n== {fault.title} ({fault.name}): {seconds:g} s baseline, {seconds:g} s fault ==")
    print(f"{'route':<8} {'requests':>8} {'2xx %':>6}  {'failures':<30} {'2xx/s base -> fault':>19} "
          f"{'kept':>5} {'p99 ms base -> fault':>20} {'max ms':>7} {'recovered':>9}")
    for cls in CLASSES:
        base, during, back = outcome.base[cls], outcome.during[cls], outcome.recovery[cls]
        kept = f"{during.rate / base.rate:.2f}" if base.rate else "-"
        rates = f"{base.rate:.0f} -> {during.rate:.0f}"
        p99 = f"{ms(base.p99) if base.requests else '-'} -> {ms(during.p99) if during.requests else '-'}"
        recovered = f"{back:.1f} s" if back is not None else "no"
        longest = ms(during.max) if during.requests else "-"
        print(f"{cls:<8} {during.requests:>8} {100 * during.ok_share:>6.1f}  "
              f"{failures_text(during.failures):<30} {rates:>19} {kept:>5} {p99:>20} {longest:>7} "
              f"{recovered:>9}")
    for note in outcome.notes:
        print(f"  {note}")
    sys.stdout.flush()


def targets(outcome: Outcome, bound: float) -> list[tuple[str, str, bool]]:
    """(target, figure, met) for one fault."""
    rows = []
    wait, cls = outcome.longest_wait
    rows.append((f"no request waits more than {MAX_WAIT:g} s", f"longest {wait:.2f} s ({cls})",
                 wait <= MAX_WAIT))
    health, calm = outcome.during[HEALTHZ], outcome.base[HEALTHZ]
    # Over the 2xx answers; any answer other than 2xx fails it, except connections reset by the
    # killed worker (they were on it when it died).
    refused = {k: v for k, v in health.failures.items() if not (outcome.fault.name == "worker-kill" and k == CONNECTION)}
    rows.append((f"/healthz answered, p99 under {HEALTHZ_P99 * 1000:.0f} ms",
                 f"p99 {ms(health.ok_p99)} ms of {100 * health.ok_share:.1f} % 2xx (baseline {ms(calm.ok_p99)} ms)",
                 health.requests > 0 and not refused and health.ok_p99 < HEALTHZ_P99))
    if outcome.fault.name in CACHED_FAULTS:
        base, during = outcome.base[MOVIES], outcome.during[MOVIES]
        rows.append(("cached movie routes 100 % 2xx", f"{100 * during.ok_share:.1f} %",
                     during.requests > 0 and during.ok == during.requests))
        kept = during.rate / base.rate if base.rate else 0.0
        rows.append((f"cached movie routes keep >= {CACHED_KEPT:g} of throughput", f"{kept:.2f}",
                     kept >= CACHED_KEPT))
    back = outcome.recovered_in
    rows.append((f"recovers by itself (within {bound:g} s)", f"{back:.1f} s" if back is not None else "no",
                 back is not None))
    return rows


def print_targets(outcomes: list[Outcome], bound: float) -> bool:
    print("\n== Targets (issue 11) ==")
    print(f"{'fault':<16} {'target':<46} {'figure':<30} result")
    all_met = bool(outcomes)
    for outcome in outcomes:
        for target, figure, met in targets(outcome, bound):
            all_met &= met
            print(f"{outcome.fault.name:<16} {target:<46} {figure:<30} {'PASS' if met else 'FAIL'}")
    print(f"\n{'all targets met' if all_met else 'some targets FAILED' if outcomes else 'no fault measured'}")
    return all_met


# -- set-up and tear-down ----------------------------------------------------------------
def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def through_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def database_name() -> str:
    name = urlsplit(DB_URL).path.lstrip("/")
    if not name or name in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to use the database {name!r}: set NEXUS_FAULTS_DATABASE_URL to one of "
                         "the bench's own")
    return name


def drop_database() -> None:
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(make_url(DB_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database_name()}" WITH (FORCE)'))
    finally:
        admin.dispose()


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def git_revision() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (out.stdout.strip() or "unknown") + (" (modified)" if dirty else "")


def print_header(args) -> None:
    plan = load_plan(args.clients)
    pace = f"{args.rate:g} requests/s each" if args.rate else "unpaced"
    print(f"Fault bench: pserve production.ini ({WORKERS} gunicorn workers), PostgreSQL + Redis behind TCP "
          f"proxies, fake TMDb; commit {git_revision()}")
    cores, busy = os.cpu_count() or 1, os.getloadavg()[0]
    print(f"machine: {cores} cores, load average {busy:.1f} at the start")
    if busy > cores:
        print("  the machine is busy: latencies include waiting for a CPU; compare them with the baselines")
    print(f"load: {plan[MOVIES]} movies + {plan[READ]} read + {plan[WRITE]} write threads ({pace}), "
          f"{plan[HEALTHZ]} /healthz threads ({HEALTHZ_RATE} requests/s each), "
          f"client timeout {args.timeout:g} s")
    print("  movies = GET /api/movies/trending and /api/movies/603 (cached), read = GET /api/user/profile,\n"
          "  write = POST then DELETE /api/user/interactions")
    print(f"recovered = {STREAK} x 2xx in a row for each route class, counted from the end of the fault\n"
          f"  (from the kill for worker-kill), within {args.recover_within:g} s")
    if args.env:
        print(f"server environment: {' '.join(args.env)}")
    sys.stdout.flush()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Fault bench for `pserve production.ini` (issue 11).",
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="faults: " + ", ".join(FAULTS))
    parser.add_argument("--seconds", type=float, default=8,
                        help="length of the baseline and of the fault (default 8)")
    parser.add_argument("--clients", type=int, default=16,
                        help="load threads besides the /healthz ones (default 16)")
    parser.add_argument("--only", action="append", choices=list(FAULTS), metavar="FAULT",
                        help="run only this fault (repeatable)")
    parser.add_argument("--rate", type=float, default=10,
                        help="requests/s each load thread aims at; 0 = as fast as it can (default 10)")
    parser.add_argument("--timeout", type=float, default=10,
                        help="client timeout per request, seconds (default 10)")
    parser.add_argument("--recover-within", type=float, default=30,
                        help="bound on the wait for recovery, seconds (default 30)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the server, e.g. a setting to try (repeatable)")
    parser.add_argument("--log", type=Path,
                        help="keep the server's log in this file (default: a temporary file, deleted)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even when a target fails")
    args = parser.parse_args(argv)
    if min(args.seconds, args.timeout, args.recover_within) <= 0 or args.clients < 3 or args.rate < 0:
        parser.error("--seconds, --timeout and --recover-within must be positive, --rate not negative, "
                     "--clients at least 3")
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    faults = [FAULTS[name] for name in (args.only or FAULTS)]
    database_name()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # cornice/pyramid, at import
    from tests.conftest import recreate_postgres_database
    from tests.fake_tmdb import API_KEY

    started = time.monotonic()
    print_header(args)
    workdir = Path(tempfile.mkdtemp(prefix="nexus-faults-"))
    log_path = args.log or workdir / "server.log"
    deps = bench = None
    outcomes: list[Outcome] = []
    try:
        recreate_postgres_database(DB_URL)
        flush_redis()
        deps = Dependencies(host_port(DB_URL, 5432), host_port(REDIS_URL, 6379))
        common = {"JWT_SECRET": secrets.token_urlsafe(40), "SESSION_SECRET": secrets.token_urlsafe(40),
                  "NEXUS_MOVIE_SOURCE": "tmdb", "TMDB_BASE_URL": deps.tmdb_url, "TMDB_API_KEY": API_KEY}
        # Migrate and seed directly, not through the proxies.
        init = subprocess.run([str(BIN / "nexus-initialize-db"), "production.ini"], cwd=ROOT, text=True,
                              capture_output=True,
                              env={**os.environ, **common, "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL})
        if init.returncode:
            raise RuntimeError(f"nexus-initialize-db failed:\n{init.stdout}{init.stderr}")
        server_env = {**os.environ, **common, "WEB_CONCURRENCY": str(WORKERS),
                      "DATABASE_URL": through_proxy(DB_URL, deps.ports["postgres"]),
                      "REDIS_URL": through_proxy(REDIS_URL, deps.ports["redis"]),
                      **dict(item.split("=", 1) for item in args.env)}
        bench = Bench(args, deps, server_env, log_path)

        aborted = None
        for fault in faults:
            try:
                # A server of its own for each fault: what one fault leaves behind (a wedged
                # thread, say) must not be counted against the next one.
                if bench.server is not None:
                    bench.server.stop()
                bench.start_server()
                bench.warm_up()
                outcome = bench.run(fault)
            except RuntimeError as exc:  # report what was measured, then why the rest was not
                aborted = f"stopped during {fault.name}: {exc}"
                break
            outcomes.append(outcome)
            print_outcome(outcome, args.seconds)
        all_met = print_targets(outcomes, args.recover_within)
        kept_log = f", server log {log_path}" if args.log else ""
        print(f"run time {time.monotonic() - started:.0f} s{kept_log}")
        if aborted:
            print(f"\nthe bench could not finish: {aborted}", file=sys.stderr)
            return 2
        return 0 if all_met or args.no_fail else 1
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up (server, proxies, database, Redis db)", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"\nthe bench could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave things behind
        if bench is not None and bench.load is not None:
            bench.load.halt()
        if bench is not None and bench.server is not None:
            bench.server.stop()
        if deps is not None:
            deps.close()
        for step in (drop_database, flush_redis):
            try:
                step()
            except Exception as exc:  # clean up what can be cleaned up, and say what could not
                print(f"clean-up: {step.__name__} failed: {exc}", file=sys.stderr)
        if not args.log:
            log_path.unlink(missing_ok=True)
        try:
            workdir.rmdir()
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
