"""Memory of one `pserve production.ini` (2 workers) after load, per process, from /proc.

    .venv/bin/python bench/pss.py [--rounds 3] [--duration 3s] [--mappings] [VAR=value ...]

Starts the server as bench/production.py's ``Server`` does (same environment, PostgreSQL and
Redis of NEXUS_BENCH_DATABASE_URL / NEXUS_BENCH_REDIS_URL, the fake TMDb), drives the bench's
routes at it (/healthz, cached /api/movies/trending, signed-in /api/user/profile) with wrk,
and prints Pss, Rss, Private_Dirty and Shared_* of master and workers (smaps_rollup). Each
VAR=value argument is one more variant: the servers start in turn, A B A B ..., for
``--rounds`` rounds, and the medians are printed. ``--mappings`` also prints, for the last
round, each worker's Private_Dirty by origin (in mappings inherited from the master, i.e.
pages copied or reused after the fork, or in mappings of its own) and the Pss of each process
grouped by mapping (heap, anonymous, each library). nexus_pyramid/memory.py has its figures.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import production as bench  # noqa: E402

FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def rollup(pid: int) -> dict[str, float]:
    sizes = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        if key in FIELDS:
            sizes[key] = int(value.split()[0]) / 1024
    return sizes


def by_mapping(pid: int) -> dict[str, float]:
    """Pss (MB) per mapping name: [heap], [anon], a library's path."""
    sizes: dict[str, float] = collections.Counter()
    name = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:
            name = head[5] if len(head) > 5 else "[anon]"
            name = name.rsplit("/site-packages/", 1)[-1]
        elif line.startswith("Pss:"):
            sizes[name] += int(line.split()[1]) / 1024
    return sizes


def private_dirty_by_origin(master: int, worker: int) -> dict[str, float]:
    """A worker's Private_Dirty (MB): in mappings the master has too (copied or reused after
    the fork) or in mappings the worker made after it (thread stacks, new malloc arenas)."""
    def mappings(pid):
        found, start = {}, None
        for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
            head = line.split()
            if head and "-" in head[0] and ":" not in head[0]:
                start = head[0].split("-")[0]
                found[start] = [head[5] if len(head) > 5 else "[anon]", 0]
            elif line.startswith("Private_Dirty:"):
                found[start][1] += int(line.split()[1]) / 1024
        return found
    inherited, sizes = mappings(master), collections.Counter()
    for start, (name, dirty) in mappings(worker).items():
        origin = "inherited" if start in inherited else "new"
        sizes[f"{origin} {name if name.startswith('[') else 'file'}"] += dirty
    return sizes


def load(server: bench.Server, token: str, duration: str) -> None:
    bench.wrk(server.url + "/healthz", duration)
    bench.wrk(server.url + "/api/movies/trending", duration)
    bench.wrk(server.url + "/api/user/profile", duration, headers=[f"Authorization: Bearer {token}"])


def sign_in(server: bench.Server, email: str, password: str) -> str:
    status, _, body = bench.request(server.url + "/api/auth/login", "POST", {"email": email, "password": password})
    if status == 200:
        return json.loads(body)["data"]["access_token"]
    status, _, body = bench.request(server.url + "/api/auth/register", "POST",
                                    {"email": email, "name": "Bench", "password": password})
    assert status == 201, body
    token = json.loads(body)["data"]["access_token"]
    status, _, body = bench.request(server.url + "/api/user/preferences", "POST",
                                    {"genre_ids": [28, 878], "actors": [{"id": 6384, "name": "Keanu Reeves"}],
                                     "movie_ids": [603, 550]}, {"Authorization": f"Bearer {token}"})
    assert status == 200, body
    return token


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--mappings", action="store_true")
    parser.add_argument("variants", nargs="*", help="VAR=value[,VAR=value] environment of one more server")
    args = parser.parse_args()
    variants = {"base": {}}
    for variant in args.variants:
        variants[variant] = dict(item.split("=", 1) for item in variant.split(","))
    bench.recreate_postgres_database(bench.DB_URL)
    bench.twenty_movie_pages()
    fake = bench.FakeTMDb()
    subprocess.run([str(bench.BIN / "nexus-initialize-db"), "production.ini"], cwd=bench.ROOT,
                   env=bench.base_env(fake), check=True, capture_output=True)
    import redis

    redis.Redis.from_url(bench.REDIS_URL).flushdb()
    figures = {name: collections.defaultdict(list) for name in variants}
    mappings = {}
    try:
        for number in range(args.rounds):
            for name, env in variants.items():
                server = bench.Server(name, fake, **env)
                try:
                    boot = {pid: rollup(pid) for pid in server.pids()}
                    token = sign_in(server, "bench@example.com", "correct horse battery staple")
                    start = {pid: rollup(pid) for pid in server.pids()}
                    load(server, token, args.duration)
                    time.sleep(0.5)
                    after = {pid: rollup(pid) for pid in server.pids()}
                    for index, pid in enumerate(server.pids()):
                        role = "master" if index == 0 else f"worker{index}"
                        for key, value in after[pid].items():
                            figures[name][(role, key)].append(value)
                        figures[name][(role, "Pss at boot")].append(boot[pid]["Pss"])
                        figures[name][(role, "Pss signed in")].append(start[pid]["Pss"])
                    figures[name][("total", "Pss")].append(sum(after[pid]["Pss"] for pid in after))
                    figures[name][("total", "Pss at boot")].append(sum(boot[pid]["Pss"] for pid in boot))
                    if args.mappings and number == args.rounds - 1:
                        pids = server.pids()
                        for worker in pids[1:]:
                            print(name, worker, {k: round(v, 1) for k, v in
                                                 private_dirty_by_origin(pids[0], worker).items()})
                        mappings[name] = {pid: by_mapping(pid) for pid in server.pids()}
                finally:
                    server.stop()
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        fake.close()
    for name, values in figures.items():
        print(f"== {name}")
        for role in ("master", "worker1", "worker2", "total"):
            cells = [f"{key} {statistics.median(values[(role, key)]):6.1f}"
                     for key in ("Pss at boot", "Pss signed in") + FIELDS if (role, key) in values]
            print(f"  {role:<8} " + "  ".join(cells))
        print("  total Pss per round: " + ", ".join(f"{v:.1f}" for v in values[("total", "Pss")]))
    for name, per_pid in mappings.items():
        print(f"== {name}: Pss by mapping (MB), master / workers")
        pids = list(per_pid)
        names = sorted(set().union(*per_pid.values()), key=lambda n: -sum(p.get(n, 0) for p in per_pid.values()))
        for mapping in names[:25]:
            print(f"  {' / '.join(f'{per_pid[pid].get(mapping, 0):5.1f}' for pid in pids)}  {mapping}")


if __name__ == "__main__":
    main()
