"""Production benchmark: `pserve production.ini` (gunicorn, 2 workers) on PostgreSQL and Redis.

    .venv/bin/python bench/production.py [--rounds 3] [--duration 4s]    # needs wrk

TMDb is the fake TMDb of the tests (a real HTTP server on loopback) with 20 movies on a
trending page, as TMDb has. Several servers run side by side, identical but for the
garbage collector's settings (``NEXUS_GC_THRESHOLDS``): the candidates of ``--gc`` and
automatic collection off. Each round measures every server in turn (A, B, C, A, B, C ...),
so that a change of machine load falls on all of them alike; medians and per-round ratios:

  trending / healthz      cached GET /api/movies/trending req/s / GET /healthz req/s (>= 0.85)
  profile / healthz CPU   server CPU ms per request (master + workers, /proc/<pid>/stat) (<= 2.5); the
                          profile read's split between the event loops (the processes' main threads)
                          and the request threads (/proc/<pid>/task); a 404 (a path that is no route:
                          the least a request served by a thread costs) on the same server; and the
                          same read on a server that differs only by its request threads per worker
                          (--few-threads, 4)
  p99 vs GC off           p99 of /healthz and of cached trending, each GC setting / GC off (<= 1.3)
  conditional requests    If-None-Match with the page's ETag: share of 304s, req/s
  PSS                     proportional set size of master + workers (/proc/<pid>/smaps_rollup) (<= 120 MB)
  connections opened      PostgreSQL connections opened per 1000 profile reads (pg_stat_database.sessions):
                          none once the pool holds a connection per thread
  round trips             SQL statements and other round trips of one profile read (<= 2, nothing else),
                          counted by engine events through the same app in this process
  in process              CPU ms of the profile read, of its two statements alone (a session on
                          the app's engine, and a plain Connection) and of /healthz, called as
                          WSGI in this process

Then, on the first server: 200 clients on one cold key (upstream calls, 1); and, on a server
of its own, TMDb down (every call answers 503): wrk runs alternate between a page whose stale
copy is served and a page still fresh (p99 stale / p99 fresh hit, <= 1.5, and the server's
CPU per request of each; the medians of the pairs of --stale-rounds rounds, see ``tmdb_down``).
Environment: NEXUS_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/nexus_bench_prod),
NEXUS_BENCH_REDIS_URL (default redis://127.0.0.1:6379/12; flushed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import fake_tmdb as fake_module  # noqa: E402
from tests.conftest import recreate_postgres_database  # noqa: E402
from tests.fake_tmdb import API_KEY, FakeTMDb  # noqa: E402

DB_URL = os.environ.get("NEXUS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nexus_bench_prod")
REDIS_URL = os.environ.get("NEXUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
BIN = ROOT / ".venv" / "bin"
JWT_SECRET, SESSION_SECRET = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

COUNT_304 = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n304 = 0; nall = 0 end
function response(status, headers, body) nall = nall + 1; if status == 304 then n304 = n304 + 1 end end
function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("n304"); b = b + t:get("nall") end
  io.write(string.format("N304 %d NALL %d\\n", a, b))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twenty_movie_pages() -> None:
    """TMDb's trending pages have 20 movies; the fake has 7 (one adult): add popular ones."""
    for i in range(20):
        tmdb_id = 9000 + i
        fake_module.MOVIES[tmdb_id] = fake_module._movie(tmdb_id, f"Bench Movie {i}", [28, 12, 878][: 1 + i % 3],
                                                         200.0 - i, f"20{10 + i % 10}-0{1 + i % 9}-1{i % 10}")


def base_env(fake: FakeTMDb) -> dict:
    return {**os.environ, "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "JWT_SECRET": JWT_SECRET,
            "SESSION_SECRET": SESSION_SECRET, "NEXUS_MOVIE_SOURCE": "tmdb", "TMDB_BASE_URL": fake.base_url,
            "TMDB_API_KEY": API_KEY}


class Server:
    def __init__(self, name: str, fake: FakeTMDb, workers: int = 2, threads: int | None = None, **env):
        self.name = name
        self.port = free_port()
        self.env = {**base_env(fake), "WEB_CONCURRENCY": str(workers), "PORT": str(self.port), **env}
        ini = ROOT / "production.ini"
        if threads is not None:  # a copy of production.ini with another thread count per worker
            self.ini_dir = tempfile.TemporaryDirectory()
            ini = Path(self.ini_dir.name) / "production.ini"
            text = (ROOT / "production.ini").read_text()
            ini.write_text(re.sub(r"(?m)^threads = \d+$", f"threads = {threads}", text))
        self.proc = subprocess.Popen([str(BIN / "pserve"), str(ini)], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"server {name} did not start")
        deadline = time.monotonic() + 20
        while len(self.pids()) < workers + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker boot

    def pids(self) -> list[int]:
        """The master (pserve runs gunicorn's arbiter in its own process) and its workers."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [self.proc.pid, *sorted(int(p) for p in out.split())]

    def cpu_ms(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total * 1000 / CLOCK_TICKS

    def thread_cpu_ms(self) -> tuple[float, float]:
        """CPU ms so far of the processes' main threads (the master's, and each worker's event
        loop) and of all their other threads (the workers' request threads), /proc/<pid>/task."""
        loop = others = 0
        for pid in self.pids():
            for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                ticks = int(fields[11]) + int(fields[12])
                if stat.parent.name == str(pid):
                    loop += ticks
                else:
                    others += ticks
        return loop * 1000 / CLOCK_TICKS, others * 1000 / CLOCK_TICKS

    def pss_mb(self) -> dict[int, float]:
        sizes = {}
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    sizes[pid] = int(line.split()[1]) / 1024
        return sizes

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def wrk(url: str, duration: str, connections: int = 32, headers=(), script: str | None = None) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    out = subprocess.run(command + [url], capture_output=True, text=True).stdout

    def ms(label):
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50"), "p99": ms("99"),
              "requests": int(re.search(r"(\d+) requests in", out).group(1)),
              "errors": int(non2xx.group(1)) if non2xx else 0}
    counted = re.search(r"N304 (\d+) NALL (\d+)", out)
    if counted:
        result["n304"], result["nall"] = int(counted.group(1)), int(counted.group(2))
    return result


def measured(server: Server, url: str, duration: str, **kw) -> dict:
    """A wrk run and the server's CPU time per request during it: in all, and split between
    the event loops (main threads) and the request threads."""
    before, threads_before = server.cpu_ms(), server.thread_cpu_ms()
    result = wrk(url, duration, **kw)
    requests = max(1, result["requests"])
    result["cpu_ms"] = (server.cpu_ms() - before) / requests
    threads_after = server.thread_cpu_ms()
    result["loop_ms"], result["threads_ms"] = ((after - was) / requests for after, was in zip(threads_after,
                                                                                               threads_before))
    return result


def request(url: str, method: str = "GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def in_process(fake: FakeTMDb, email: str, password: str, candidates: list[str], requests: int) -> tuple[dict, dict]:
    """Through the same app in this process: the round trips of one profile read, counted by
    engine events, and the collector's pauses under each threshold candidate.

    The pauses are timed by ``gc.callbacks`` around every collection while the app serves
    ``requests`` requests (trending, genres, profile in turn): CPU work, not queueing, so
    the figures hold under machine load better than p99s do.
    """
    import gc

    from webtest import TestApp

    from nexus_pyramid import make_app
    from nexus_pyramid.interfaces import IDatabaseEngine, find_service
    from nexus_pyramid.settings import gc_thresholds
    from tests.roundtrips import counting

    env = {k: v for k, v in base_env(fake).items() if k in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET",
                                                              "SESSION_SECRET", "NEXUS_MOVIE_SOURCE",
                                                              "TMDB_BASE_URL", "TMDB_API_KEY")}
    app = make_app({"nexus.env": "production", "session.secure": "true"}, environ=env)
    client = TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.99"})
    token = client.post_json("/api/auth/login", {"email": email, "password": password}).json["data"]["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    engine = find_service(app.registry, IDatabaseEngine)
    client.get("/api/user/profile", headers=auth)  # the pool's first connection
    with counting(engine) as trips:
        client.get("/api/user/profile", headers=auth)
    round_trips = {"statements": len(trips.statements), "begins": trips.begins, "commits": trips.commits,
                   "rollbacks": trips.rollbacks, "pings": trips.pings}
    round_trips["cpu"] = cpu_in_process(app, engine, auth, email)

    pauses: list[float] = []
    started = [0.0]

    def timer(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    paths = [("/api/movies/trending", {}), ("/api/genres", {}), ("/api/user/profile", auth)]
    figures = {}
    saved = gc.get_threshold()
    gc.callbacks.append(timer)
    try:
        for thresholds in candidates:
            gc.collect()
            gc.freeze()
            gc.set_threshold(*gc_thresholds(thresholds))
            pauses.clear()
            began = time.perf_counter()
            for number in range(requests):
                path, headers = paths[number % len(paths)]
                client.get(path, headers=headers)
            elapsed = (time.perf_counter() - began) * 1000
            figures[thresholds] = {"count": len(pauses), "max": max(pauses, default=0.0),
                                   "total": sum(pauses), "per_request": elapsed / requests}
    finally:
        gc.callbacks.remove(timer)
        gc.set_threshold(*saved)
    engine.dispose()
    return round_trips, figures


def postgres_sessions() -> int:
    """Connections ever opened to the bench's database (PostgreSQL's pg_stat_database.sessions)."""
    name = DB_URL.rsplit("/", 1)[1]
    out = subprocess.run(["psql", DB_URL, "-tAc", f"SELECT sessions FROM pg_stat_database WHERE datname = '{name}'"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def cpu_in_process(app, engine, auth: dict, email: str, requests: int = 2000) -> dict:
    """CPU ms of /healthz and of the profile read called as WSGI in this process (no server,
    no client library), and of the profile read's two statements alone: run on the app's
    engine through a session, as the read runs them, and nothing else; and on a plain
    Connection (what the statements would cost without the ORM Session and its transaction)."""
    import io
    import uuid

    import jwt
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from nexus_pyramid.security import caller_statement
    from nexus_pyramid.services.library import preferences_statement

    def wsgi(path, headers):
        def call():
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
                       "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "192.0.2.99",
                       "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
                       "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
                       "wsgi.run_once": False, **{"HTTP_" + k.upper(): v for k, v in headers.items()}}
            body = app(environ, lambda status, response_headers, exc_info=None: None)
            b"".join(body)
            getattr(body, "close", lambda: None)()
        return call

    with engine.connect() as connection:
        user_id = connection.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email}).scalar_one()
    token = auth["Authorization"].split()[1]
    session_id = uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sid"])  # as the read passes it

    def statements_alone():
        session = Session(engine)
        connection = session.connection()
        connection.execute(caller_statement(), {"user_id": user_id, "session_id": session_id}).all()
        connection.execute(preferences_statement(), {"user_id": user_id}).all()
        session.close()

    def on_a_connection():
        with engine.connect() as connection:
            connection.execute(caller_statement(), {"user_id": user_id, "session_id": session_id}).all()
            connection.execute(preferences_statement(), {"user_id": user_id}).all()

    figures = {}
    for name, run in (("healthz", wsgi("/healthz", {})), ("profile", wsgi("/api/user/profile", auth)),
                      ("statements", statements_alone), ("connection", on_a_connection)):
        for _ in range(200):
            run()
        began = time.process_time()
        for _ in range(requests):
            run()
        figures[name] = (time.process_time() - began) * 1000 / requests
    return figures


STALE_TTL, STALE_RUN = 20, "2s"


def tmdb_down(fake: FakeTMDb, rounds: int) -> list[dict]:
    """Stale hits against fresh hits of the same server, while TMDb answers every call with 503.

    A p99 of one short wrk run moves a lot between runs (on 2 cores wrk shares the machine), so
    the two are not measured minutes or servers apart: in each round, on one server whose
    trending pages keep for STALE_TTL seconds, one page is fetched, a second one STALE_TTL - 1.5
    s later, and TMDb goes down. Once the first page has expired (its stale copy is served) and
    while the second is still fresh, wrk runs alternate between them (fresh, stale, stale, fresh
    ...), STALE_RUN each; each pair gives a ratio, p99 stale / p99 fresh, and the server's CPU
    time per request of each, which is what the stale path costs without the machine's noise.
    """
    server = Server("stale", fake, CACHE_TTL_TRENDING=str(STALE_TTL))
    run = float(STALE_RUN.rstrip("s"))
    pairs = []
    try:
        for number in range(rounds):
            fake.set_mode("ok")
            stale_key = server.url + f"/api/movies/trending?page={3 + 2 * number}"
            fresh_key = server.url + f"/api/movies/trending?page={4 + 2 * number}"
            seed_deadline = time.monotonic() + 60
            while request(stale_key)[0] != 200:  # TMDb's breaker, opened by the last round, lets a probe through
                if time.monotonic() > seed_deadline:
                    raise RuntimeError("the server did not get back to TMDb")
                time.sleep(0.5)
            expires = time.monotonic() + STALE_TTL
            time.sleep(STALE_TTL - 1.5)
            assert request(fresh_key)[0] == 200
            fresh_until = time.monotonic() + STALE_TTL
            fake.set_mode("error", status=503)
            time.sleep(max(0.0, expires + 0.5 - time.monotonic()))
            for _ in range(60):  # the stale path's first requests (TMDb tried, the copy kept)
                request(stale_key)
                request(fresh_key)
            flip = False
            while time.monotonic() + 2 * (run + 0.5) < fresh_until:
                order = ("stale", "fresh") if flip else ("fresh", "stale")
                pair = {name: measured(server, stale_key if name == "stale" else fresh_key, STALE_RUN)
                        for name in order}
                for name, key in (("stale", stale_key), ("fresh", fresh_key)):
                    status, headers, body = request(key)
                    assert status == 200, (name, status, body)
                    pair[name].update(x_cache=headers.get("X-Cache"), source=json.loads(body)["meta"]["source"])
                pairs.append(pair)
                flip = not flip
    finally:
        server.stop()
    return pairs


def app_threads() -> int:
    return int(re.search(r"(?m)^threads = (\d+)$", (ROOT / "production.ini").read_text()).group(1))


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="4s")
    parser.add_argument("--gc", default="700,10,10;5000,10,10;50000,50,100",
                        help="GC threshold candidates besides the app's setting (';'-separated)")
    parser.add_argument("--gc-requests", type=int, default=3000, help="requests per candidate, in process")
    parser.add_argument("--stale-rounds", type=int, default=3,
                        help="rounds of the TMDb-down scenario (each some 40 s, 4 pairs of runs)")
    parser.add_argument("--few-threads", type=int, default=4,
                        help="request threads per worker of the server that measures the profile read only")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    recreate_postgres_database(DB_URL)
    twenty_movie_pages()
    fake = FakeTMDb()
    subprocess.run([str(BIN / "nexus-initialize-db"), "production.ini"], cwd=ROOT, env=base_env(fake), check=True,
                   capture_output=True)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    from nexus_pyramid.settings import DEFAULTS

    default = DEFAULTS["nexus.gc_thresholds"]
    candidates = [default] + [c.strip() for c in args.gc.split(";") if c.strip() and c.strip() != default]
    servers: list[Server] = []
    few = None
    try:
        for thresholds in candidates + ["off"]:
            label = f"gc {thresholds}" + (" (the app's)" if thresholds == default else "")
            servers.append(Server(label, fake, NEXUS_GC_THRESHOLDS=thresholds))
        app = servers[0]
        # The same server with fewer request threads per worker, for the profile read's CPU only.
        few = Server(f"{args.few_threads} threads", fake, threads=args.few_threads)
        # A signed-in user with saved preferences, for the profile read.
        email, password = "bench@example.com", "correct horse battery staple"
        status, _, body = request(app.url + "/api/auth/register", "POST",
                                  {"email": email, "name": "Bench", "password": password})
        assert status == 201, body
        token = json.loads(body)["data"]["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        status, _, body = request(app.url + "/api/user/preferences", "POST",
                                  {"genre_ids": [28, 878], "actors": [{"id": 6384, "name": "Keanu Reeves"}],
                                   "movie_ids": [603, 550]}, auth)
        assert status == 200, body
        trending = "/api/movies/trending"
        for server in servers:
            status, _, body = request(server.url + trending)
            assert status == 200
        shown = len(json.loads(body)["data"]["results"])
        _, headers, _ = request(app.url + trending)
        etag = headers["ETag"]
        script = Path(tempfile.mkstemp(suffix=".lua")[1])
        script.write_text(COUNT_304)

        per_round = {s.name: {"healthz": [], "trending": [], "healthz_p99": [], "trending_p99": []} for s in servers}
        profile, healthz_cpu, conditional, few_profile, floor = [], [], [], [], []
        # Each worker's pool fills to its kept size once: not counted as connections opened under load.
        for server in (app, few):
            wrk(server.url + "/api/user/profile", "2s", headers=[f"Authorization: Bearer {token}"])
        for number in range(args.rounds):
            for server in servers:
                h = measured(server, server.url + "/healthz", args.duration)
                t = measured(server, server.url + trending, args.duration)
                figures = per_round[server.name]
                figures["healthz"].append(h["rps"])
                figures["trending"].append(t["rps"])
                figures["healthz_p99"].append(h["p99"])
                figures["trending_p99"].append(t["p99"])
                if server is app:
                    healthz_cpu.append(h["cpu_ms"])
            sessions = postgres_sessions()
            profile.append(measured(app, app.url + "/api/user/profile", args.duration,
                                    headers=[f"Authorization: Bearer {token}"]))
            time.sleep(1.0)  # the statistics of connections that just ended reach pg_stat_database
            # Less the one psql opened to read the first figure.
            profile[-1]["new_sessions"] = postgres_sessions() - sessions - 1
            # The least any request served by a request thread costs: a path that is no route
            # (router, not-found view, error envelope; no database, no token).
            floor.append(measured(app, app.url + "/api/no-such-route", args.duration))
            few_profile.append(measured(few, few.url + "/api/user/profile", args.duration,
                                        headers=[f"Authorization: Bearer {token}"]))
            conditional.append(wrk(app.url + trending, args.duration, headers=[f"If-None-Match: {etag}"]))
            # The share of 304s, counted by a wrk script (which slows wrk itself: not for req/s).
            counted = wrk(app.url + trending, "1s", headers=[f"If-None-Match: {etag}"], script=str(script))
            conditional[-1].update(n304=counted["n304"], nall=counted["nall"])
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
        pss = app.pss_mb()
        trips, pauses = in_process(fake, email, password, candidates, args.gc_requests)

        # Reliability, on the app's server: one cold key under 200 clients; TMDb down.
        fake.reset()
        fake.set_mode("slow", delay=0.3)
        cold = "/api/movies/trending?window=week&page=7"
        burst = wrk(app.url + cold, "3s", connections=200)
        stampede_calls = fake.calls["/3/trending/movie/week"]
        fake.set_mode("ok")
    finally:
        for server in servers + ([few] if few else []):
            server.stop()
    try:
        stale_rounds = tmdb_down(fake, args.stale_rounds)
    finally:
        fake.close()
    load_after = os.getloadavg()

    # -- the report --------------------------------------------------------------------------
    app_rounds, off_rounds = per_round[servers[0].name], per_round["gc off"]
    ratios = [t / h for t, h in zip(app_rounds["trending"], app_rounds["healthz"])]
    cpu_ratios = [p["cpu_ms"] / h for p, h in zip(profile, healthz_cpu)]
    print(f"bench/production.py, {started}: pserve production.ini, 2 workers each, PostgreSQL + Redis, fake TMDb "
          f"({shown} movies on the trending page), wrk 2 threads / 32 connections / {args.duration}, "
          f"{args.rounds} interleaved rounds, {os.cpu_count()} cores, load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after")
    print()
    print(f"{'measure':<52} {'median':>22}   per round")

    def row(name, value, rounds):
        print(f"{name:<52} {value:>22}   {rounds}")

    def fmt(values, spec=".2f"):
        return ", ".join(format(v, spec) for v in values)

    row("trending / healthz req/s (target >= 0.85)",
        f"{median(app_rounds['trending']):.0f} / {median(app_rounds['healthz']):.0f} = {median(ratios):.2f}",
        fmt(ratios))
    row("profile / healthz CPU ms per request (<= 2.5)",
        f"{median(p['cpu_ms'] for p in profile):.2f} / {median(healthz_cpu):.2f} = {median(cpu_ratios):.2f}",
        fmt(cpu_ratios))
    row("  of which event loops / request threads, ms",
        f"{median(p['loop_ms'] for p in profile):.2f} / {median(p['threads_ms'] for p in profile):.2f}",
        "; ".join(f"{p['loop_ms']:.2f} / {p['threads_ms']:.2f}" for p in profile))
    floor_ratios = [f["cpu_ms"] / h for f, h in zip(floor, healthz_cpu)]
    row("  a 404 through a request thread / healthz CPU ms",
        f"{median(f['cpu_ms'] for f in floor):.2f} / {median(healthz_cpu):.2f} = {median(floor_ratios):.2f}",
        fmt(floor_ratios))
    few_ratios = [p["cpu_ms"] / h for p, h in zip(few_profile, healthz_cpu)]
    row(f"  with {args.few_threads} request threads per worker (production.ini: {app_threads()})",
        f"{median(p['cpu_ms'] for p in few_profile):.2f} / {median(healthz_cpu):.2f} = {median(few_ratios):.2f}",
        fmt(few_ratios))
    row("profile req/s", f"{median(p['rps'] for p in profile):.0f}", fmt([p["rps"] for p in profile], ".0f"))
    row("profile: PostgreSQL connections opened per 1000 requests",
        f"{median(1000 * p['new_sessions'] / max(1, p['requests']) for p in profile):.1f}",
        fmt([1000 * p["new_sessions"] / max(1, p["requests"]) for p in profile], ".1f"))
    row("profile read round trips (<= 2, nothing else)",
        f"{trips['statements']} statements", f"begin {trips['begins']}, commit {trips['commits']}, "
        f"rollback {trips['rollbacks']}, pre-ping {trips['pings']}")
    cpu = trips["cpu"]
    row("in process, CPU ms: profile read / its 2 statements alone / healthz",
        f"{cpu['profile']:.2f} / {cpu['statements']:.2f} / {cpu['healthz']:.2f}",
        f"statements alone = {cpu['statements'] / cpu['healthz']:.1f}x healthz; "
        f"{cpu['connection']:.2f} on a Connection, no Session")
    for server in servers:
        if server.name == "gc off":
            continue
        rounds = per_round[server.name]
        for path in ("healthz", "trending"):
            ratio = [a / b for a, b in zip(rounds[path + "_p99"], off_rounds[path + "_p99"])]
            row(f"p99 {path}, {server.name} / off (<= 1.3)",
                f"{median(rounds[path + '_p99']):.1f} / {median(off_rounds[path + '_p99']):.1f} ms = "
                f"{median(ratio):.2f}", fmt(ratio))
        row(f"  req/s trending, {server.name}", f"{median(rounds['trending']):.0f}",
            fmt(rounds["trending"], ".0f"))
    row("gc off: req/s trending", f"{median(off_rounds['trending']):.0f}", fmt(off_rounds["trending"], ".0f"))
    for thresholds, figures in pauses.items():
        row(f"GC pauses in process, {thresholds}",
            f"max {figures['max']:.2f} ms, {figures['total'] / args.gc_requests * 1000:.0f} ms/1000 req",
            f"{figures['count']} collections in {args.gc_requests} requests, "
            f"{figures['per_request']:.2f} ms per request")
    rates = [c["n304"] / max(1, c["nall"]) for c in conditional]
    row("If-None-Match: share of 304s", f"{median(rates):.3f}", fmt(rates, ".3f"))
    cond_ratio = [c["rps"] / t for c, t in zip(conditional, app_rounds["trending"])]
    row("If-None-Match req/s / trending req/s",
        f"{median(c['rps'] for c in conditional):.0f} / {median(app_rounds['trending']):.0f} = "
        f"{median(cond_ratio):.2f}", fmt(cond_ratio))
    row(f"PSS master + {len(pss) - 1} workers (<= 120 MB)", f"{sum(pss.values()):.0f} MB",
        ", ".join(f"{v:.0f}" for v in pss.values()) + " MB")
    row("200 clients on one cold key: upstream calls (1)", f"{stampede_calls}",
        f"{burst['rps']:.0f} req/s, {burst['errors']} errors")
    stale_ratios = [r["stale"]["p99"] / r["fresh"]["p99"] for r in stale_rounds]
    marks = sorted({f"{r[name]['x_cache']} {r[name]['source']}" for r in stale_rounds
                    for name in ("stale", "fresh")})
    row("TMDb down: p99 stale / p99 fresh hit, alternating runs (<= 1.5)",
        f"{median(r['stale']['p99'] for r in stale_rounds):.1f} / "
        f"{median(r['fresh']['p99'] for r in stale_rounds):.1f} ms = {median(stale_ratios):.2f}",
        f"{len(stale_ratios)} pairs: {fmt(stale_ratios)}; answers seen: {', '.join(marks)}; "
        f"{sum(r['stale']['errors'] + r['fresh']['errors'] for r in stale_rounds)} errors")
    stale_cpu = [r["stale"]["cpu_ms"] / r["fresh"]["cpu_ms"] for r in stale_rounds]
    row("TMDb down: server CPU ms per request, stale / fresh hit",
        f"{median(r['stale']['cpu_ms'] for r in stale_rounds):.2f} / "
        f"{median(r['fresh']['cpu_ms'] for r in stale_rounds):.2f} = {median(stale_cpu):.2f}",
        f"{fmt(stale_cpu)}; p50 {median(r['stale']['p50'] for r in stale_rounds):.1f} / "
        f"{median(r['fresh']['p50'] for r in stale_rounds):.1f} ms, req/s "
        f"{median(r['stale']['rps'] for r in stale_rounds):.0f} / "
        f"{median(r['fresh']['rps'] for r in stale_rounds):.0f}")


if __name__ == "__main__":
    main()
