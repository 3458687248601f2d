"""Production benchmarks: `pserve production.ini` (gunicorn workers) on PostgreSQL and Redis.

    .venv/bin/python bench/production.py          # needs wrk (apt-get install wrk)

TMDb is the fake TMDb of the tests, a real HTTP server on loopback. Everything is measured
in this one run and reported as ratios:
  (a) cached trending throughput / bare JSON endpoint (/healthz) throughput, same server (target >= 0.7)
  (b) throughput with 1 worker vs N workers
  (c) 200 concurrent clients on one cold key across 4 workers -> upstream calls (target 1)
  (d) TMDb down, breaker open: p99 of stale responses / p99 of healthy cache hits (target <= 1.5)
  (e) resident memory per worker
Environment: NEXUS_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/nexus_bench_prod),
NEXUS_BENCH_REDIS_URL (default redis://127.0.0.1:6379/12; flushed).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import recreate_postgres_database  # noqa: E402
from tests.fake_tmdb import API_KEY, FakeTMDb  # noqa: E402

DB_URL = os.environ.get("NEXUS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nexus_bench_prod")
REDIS_URL = os.environ.get("NEXUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
BIN = ROOT / ".venv" / "bin"
DURATION = os.environ.get("NEXUS_BENCH_DURATION", "6s")


class Server:
    def __init__(self, workers: int, port: int, fake: FakeTMDb, **env):
        self.env = {**os.environ, "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL,
                    "JWT_SECRET": secrets.token_urlsafe(40), "SESSION_SECRET": secrets.token_urlsafe(40),
                    "NEXUS_MOVIE_SOURCE": "tmdb", "TMDB_BASE_URL": fake.base_url, "TMDB_API_KEY": API_KEY,
                    "WEB_CONCURRENCY": str(workers), "PORT": str(port), **env}
        self.port = port
        self.proc = subprocess.Popen([str(BIN / "pserve"), "production.ini"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        time.sleep(1.0)  # let every worker boot

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        master = [int(p) for p in out.split()]  # pserve -> gunicorn master is the same process
        children = subprocess.run(["pgrep", "-P", ",".join(map(str, [self.proc.pid, *master]))],
                                  capture_output=True, text=True).stdout
        return sorted({int(p) for p in children.split()} | set(master))

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def wrk(url: str, connections: int = 32, duration: str = DURATION) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}", "--latency", url],
                         capture_output=True, text=True).stdout

    def ms(label):
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50"), "p99": ms("99"),
            "errors": int(non2xx.group(1)) if non2xx else 0}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    recreate_postgres_database(DB_URL)
    fake = FakeTMDb()
    # The server runs on the (fake) TMDb source: the database is initialized from the same
    # source, since a database records which movie id space filled it and refuses the other.
    env = {**os.environ, "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "JWT_SECRET": secrets.token_urlsafe(40),
           "SESSION_SECRET": secrets.token_urlsafe(40), "NEXUS_MOVIE_SOURCE": "tmdb",
           "TMDB_BASE_URL": fake.base_url, "TMDB_API_KEY": API_KEY}
    subprocess.run([str(BIN / "nexus-initialize-db"), "production.ini"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    rows = []
    try:
        # (a) and (e): 4 workers; cached trending vs /healthz.
        server = Server(4, 6601, fake)
        urllib.request.urlopen(server.url + "/api/movies/trending").read()  # warm the key
        bare = wrk(server.url + "/healthz")
        cached = wrk(server.url + "/api/movies/trending")
        rows.append(("(a) cached trending / bare JSON throughput", f"{cached['rps']:.0f} / {bare['rps']:.0f} req/s",
                     f"{cached['rps'] / bare['rps']:.2f}", ">= 0.7"))
        rss = [rss_mb(pid) for pid in server.workers()]
        # (c) 200 concurrent clients on one cold key.
        fake.reset()
        fake.set_mode("slow", delay=0.3)
        cold = "/api/movies/trending?window=week&page=7"
        burst = wrk(server.url + cold, connections=200, duration="3s")
        calls = fake.calls["/3/trending/movie/week"]
        rows.append(("(c) upstream calls, 200 clients on one cold key", f"{burst['rps']:.0f} req/s, "
                     f"{burst['errors']} errors", f"{calls}", "1"))
        fake.set_mode("ok")
        server.stop()

        # (b) 1 vs N workers on the cached endpoint.
        one = Server(1, 6602, fake)
        single = wrk(one.url + "/api/movies/trending")
        one.stop()
        n = os.cpu_count() or 2
        many = Server(n, 6603, fake)
        multi = wrk(many.url + "/api/movies/trending")
        many.stop()
        rows.append((f"(b) throughput, {n} workers / 1 worker", f"{multi['rps']:.0f} / {single['rps']:.0f} req/s",
                     f"{multi['rps'] / single['rps']:.2f}", f"~{n} on {n} cores"))

        # (d) TMDb down, breaker open: stale vs healthy hits, same key and server.
        server = Server(4, 6604, fake, CACHE_TTL_TRENDING="4")
        key = server.url + "/api/movies/trending?page=3"
        urllib.request.urlopen(key).read()
        healthy = wrk(key, duration="3s")  # within the 4 s TTL: cache hits
        fake.set_mode("error", status=503)
        time.sleep(4.5)  # the copy expires
        for _ in range(60):  # trip every worker's breaker
            urllib.request.urlopen(key).read()
        stale = wrk(key, duration="3s")
        state = urllib.request.urlopen(server.url + "/readyz").read().decode()
        breaker = re.search(r'"breaker": "(\w+)"', state).group(1)
        rows.append(("(d) p99 stale (breaker open) / p99 healthy hit", f"{stale['p99']:.2f} / {healthy['p99']:.2f} ms "
                     f"(breaker {breaker}, {stale['errors']} errors)", f"{stale['p99'] / healthy['p99']:.2f}",
                     "<= 1.5"))
        server.stop()
        rows.append(("(e) resident memory per worker (4 workers)", ", ".join(f"{r:.0f}" for r in rss) + " MB",
                     f"{sum(rss) / len(rss):.0f} MB avg", "-"))
    finally:
        fake.close()

    print(f"Production benchmarks (gunicorn via pserve production.ini, PostgreSQL + Redis, fake TMDb, "
          f"{os.cpu_count()} cores, wrk {DURATION})")
    print(f"{'measure':<50} {'figures':<44} {'ratio':>8}  target")
    for name, figures, ratio, target in rows:
        print(f"{name:<50} {figures:<44} {ratio:>8}  {target}")


if __name__ == "__main__":
    main()
